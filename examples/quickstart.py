"""Quick start: every linear region of a small classifier, checked, saved and drawn.

Run from the repository root:  python examples/quickstart.py
It enumerates the regions of the bundled 2-16-16-2 two-moons network over the
box [-2, 3] x [-1.5, 2], re-checks the result against two independent oracles
(areas add up to the box's area; sampled points fall in exactly one region whose
affine map reproduces the forward pass), saves the complex and draws it.
"""

from pathlib import Path

import numpy as np

import polyrelu

HERE = Path(__file__).parent


def main():
    network = polyrelu.load_network(HERE / "nets" / "moons_2_16_16_2.npz")
    domain = polyrelu.Domain.box([-2.0, -1.5], [3.0, 2.0])
    regions = polyrelu.enumerate_regions(network, domain)
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    regions.save(out / "moons_complex.npz")

    area = sum(region.volume() for region in regions)
    box_area = float(np.prod(domain.upper - domain.lower))
    points = domain.sample(10_000, rng=0)
    located = regions.locate(points)
    mapped = np.stack([regions[i].apply(p)[0] for i, p in zip(located, points)])
    print(f"network: {network}")
    print(f"regions: {len(regions)}")
    print(f"affine_pieces: {len(regions.affine_pieces())}")
    print(f"edges: {regions.graph.number_of_edges()}")
    print(f"lps: {regions.stats['lps']}")
    print(f"seconds: {regions.stats['seconds']:.3f}")
    print(f"check_area_relative_error: {abs(area - box_area) / box_area:.1e}")
    print(f"check_points_located: {int(np.sum(located >= 0))} of {len(points)}")
    print(f"check_max_map_error: {np.abs(mapped - network.forward(points)).max():.1e}")
    print(f"saved: {out / 'moons_complex.npz'}")
    print(f"picture: {draw(regions, out / 'moons_regions.png')}")


def draw(regions, path):
    """Regions coloured by the predicted class's margin, region edges in white."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    polygons, margins = [], []
    for region in regions:
        vertices = region.polytope.vertices(region.interior_point)
        centre = vertices.mean(axis=0)
        order = np.argsort(np.arctan2(*(vertices - centre).T[::-1]))
        polygons.append(vertices[order])
        logits = region.apply(region.interior_point)[0]
        margins.append(logits[1] - logits[0])
    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    limit = np.abs(margins).max()
    collection = PolyCollection(polygons, array=np.array(margins), cmap="coolwarm",
                                clim=(-limit, limit), edgecolors="white", linewidths=0.4)
    ax.add_collection(collection)
    ax.set_xlim(regions.domain.lower[0], regions.domain.upper[0])
    ax.set_ylim(regions.domain.lower[1], regions.domain.upper[1])
    ax.set_aspect("equal")
    ax.set_title(f"{len(regions)} linear regions of {regions.network}")
    fig.colorbar(collection, ax=ax, label="logit margin (class 1 - class 0) at region centre")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
