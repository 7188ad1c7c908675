"""The full region map of a 2-D toy classifier (two moons), as pictures.

Run from the repository root:  python examples/moons_regions.py
The bundled 2-16-16-2 network (examples/make_moons_net.py) has 2 inputs, so the
slice is the input plane itself, over [-2, 3] x [-1.5, 2]. Writes into
examples/out/:

- moons_pattern.png: regions coloured by activation pattern, the exact decision
  boundary in black, the training data on top;
- moons_output.png: the logit margin (output 1; output 0 is the constant 0),
  drawn exactly (affine on each region) with the decision boundary;
- moons_gradient.png: the gradient norm of the margin, constant on each region;
- moons_graph.png: the adjacency graph of the regions over the slice.
"""

from pathlib import Path

import numpy as np
from sklearn.datasets import make_moons

import polyrelu
from polyrelu.planar import decision_boundary, slice_regions
from polyrelu.planar.pictures import slice_picture

HERE = Path(__file__).parent


def main():
    network = polyrelu.load_network(HERE / "nets" / "moons_2_16_16_2.npz")
    plane = slice_regions(network, [0.0, 0.0], np.eye(2), ([-2.0, -1.5], [3.0, 2.0]))
    boundary = decision_boundary(plane)
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    print(f"network: {network}")
    print(f"regions: {len(plane)}")
    print(f"edges: {plane.graph.number_of_edges()}")
    print(f"seconds: {plane.stats['seconds']:.3f}")
    print(f"boundary_segments: {len(boundary)}")
    length = np.linalg.norm(np.diff(boundary.segments, axis=1), axis=2).sum()
    print(f"boundary_length: {length:.4f}")
    data, _ = make_moons(n_samples=400, noise=0.15, random_state=0)
    pictures = [
        _pattern_with_data(plane, boundary, data, out / "moons_pattern.png"),
        slice_picture(plane, out / "moons_output.png", color="output", output=1, boundary=True,
                      title="logit margin (exact, affine on each region)"),
        slice_picture(plane, out / "moons_gradient.png", color="gradient", output=1,
                      title="gradient norm of the logit margin"),
        slice_picture(plane, out / "moons_graph.png", graph=True,
                      title=f"adjacency graph: {plane.graph.number_of_edges()} edges"),
    ]
    for path in pictures:
        print(f"picture: {path}")


def _pattern_with_data(plane, boundary, data, path):
    """Regions by pattern, the decision boundary and the training points (composed by hand)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from polyrelu.planar.pictures import draw_decision_boundary, draw_pieces

    fig, ax = plt.subplots(figsize=(7, 5.2), dpi=120)
    draw_pieces(plane, ax)
    draw_decision_boundary(plane, ax, boundary)
    ax.scatter(data[:, 0], data[:, 1], s=4, c="black", alpha=0.5)
    ax.set_title(f"{len(plane)} regions of the two-moons classifier, decision boundary in black")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
