"""Exact analyses of the digits CNN (Conv, BatchNorm, ReLU, MaxPool, Linear), loaded from ONNX.

Run from the repository root:  python examples/digits_cnn/analyse.py
Needs only what polyrelu installs (and matplotlib for the picture). Reads
digits_cnn.onnx and test_images.npy next to this file (see train.py) and prints:

1. the exact 2-D slice through the test images of a 0, a 1 and a 7: its regions,
   the decision boundary, regions per second; the picture goes to
   examples/out/digits_cnn_slice.png;
2. the number of linear regions in small l_inf balls around every test image (count
   mode; a ball whose count does not finish in the time limit prints ">= n");
3. the exact local Lipschitz constant (l2) of the margin "true class minus runner-up"
   over a ball around the 3, with the maximising region's exact rational bracket;
4. verification: is the 3 still classified as a 3 everywhere in an l_inf ball (pixels
   kept in [0, 1])? Written as VNN-LIB (examples/out/digits_cnn_robust_*.vnnlib),
   decided exactly, the certificate of "holds" re-checked by the independent checker;
   a large radius is violated, with a counterexample re-checked in rational arithmetic.

Each figure is checked against forward passes: sampled points of every slice piece and
of the Lipschitz witness region are mapped by the piece's own affine map.
"""

import time
from pathlib import Path

import numpy as np

from polyrelu import Domain
from polyrelu.analysis.lipschitz import lipschitz
from polyrelu.deadline import Deadline
from polyrelu.errors import TimeLimitError
from polyrelu.network.loaders import load_network
from polyrelu.planar import decision_boundary, slice_through
from polyrelu.regions.splitting import count_regions, enumerate_by_splitting
from polyrelu.verification import check_certificate, verify
from polyrelu.verification.vnnlib import read_vnnlib

HERE = Path(__file__).parent
RADII = (1e-4, 1e-3)
COUNT_SECONDS = 20.0
ROBUST_RADII = (0.01, 0.5)  # the 3 is robust in the first ball, not in the second
VERIFY_SECONDS = 60.0


def main():
    network = load_network(HERE / "digits_cnn.onnx")
    data = np.load(HERE / "test_images.npy", allow_pickle=False)
    images, labels = data["image"].reshape(len(data), -1), data["label"]
    print(f"network: {network}, {network.num_hidden} pattern slots")
    accuracy = np.mean(network.forward(images).argmax(axis=1) == labels)
    print(f"test images classified correctly: {accuracy:.0%}")
    slice_section(network, images[[0, 1, 7]])
    counts_section(network, images, labels)
    lipschitz_section(network, images[3], int(labels[3]))
    for radius in ROBUST_RADII:
        verification_section(network, images[3], int(labels[3]), radius)


def slice_section(network, images):
    """The plane through three images: regions, boundary, speed, picture."""
    start = time.perf_counter()
    plane = slice_through(network, images, margin=0.3)
    seconds = time.perf_counter() - start
    boundary = decision_boundary(plane)
    print(f"slice_regions: {len(plane)}")
    print(f"slice_seconds: {seconds:.2f} ({len(plane) / seconds:,.0f} regions/s)")
    print(f"slice_boundary_segments: {len(boundary)}")
    print(f"slice_largest_map_error: {_largest_map_error(network, plane):.1e}")
    try:
        from polyrelu.planar.pictures import slice_picture
    except ImportError:
        print("picture: skipped (pip install 'polyrelu[plots]')")
        return
    out = HERE.parent / "out"
    out.mkdir(exist_ok=True)
    path = slice_picture(plane, out / "digits_cnn_slice.png", boundary=True,
                         points=plane.coordinates(images), labels=["0", "1", "7"],
                         title="digits CNN on the plane through three test images")
    print(f"picture: {path}")


def _largest_map_error(network, plane, per_piece=3, seed=0):
    """Largest gap between a slice piece's affine map and the network's forward pass at
    random points of the piece (an independent check of the whole slice)."""
    rng = np.random.default_rng(seed)
    worst = 0.0
    for piece in plane:
        vertices = np.asarray(piece.vertices)
        weights = rng.dirichlet(np.ones(len(vertices)), size=per_piece)
        uv = weights @ vertices
        x = plane.to_input(uv)
        worst = max(worst, float(np.abs(piece.apply(uv) - network.forward(x)).max()))
    return worst


def counts_section(network, images, labels):
    """Regions in the l_inf balls of each radius around every test image."""
    print("regions in l_inf balls (pixels in [0, 1]):")
    print("  image  " + "".join(f"  r={radius:<8g}" for radius in RADII))
    for image, label in zip(images, labels):
        cells = []
        for radius in RADII:
            try:
                count, _ = count_regions(network, Domain.ball(image, radius),
                                         deadline=Deadline(COUNT_SECONDS))
                cells.append(f"{count:>10}")
            except (TimeLimitError, MemoryError):
                cells.append(f"{'> limit':>10}")
        print(f"  {label:>5}  " + "".join(f"  {cell:<10}" for cell in cells))


def lipschitz_section(network, image, label, radius=1e-3):
    """The exact l2 Lipschitz constant of the margin over a ball around ``image``."""
    logits = network.forward(image)[0]
    runner_up = int(np.argsort(logits)[-2])
    margin = np.zeros(network.output_dim)
    margin[label], margin[runner_up] = 1.0, -1.0
    domain = Domain.ball(image, radius)
    complex_ = enumerate_by_splitting(network, domain)
    result = lipschitz(network, domain, 2, functional=margin, complex_=complex_)
    print(f"lipschitz_margin_{label}_vs_{runner_up}: {result.value:.6f} "
          f"(l2, ball of radius {radius:g}, {len(complex_)} regions)")
    print(f"lipschitz_exact_bracket: [{result.exact_lower:.12g}, {result.exact_upper:.12g}]")
    print(f"lipschitz_witness_pattern_exact: {result.witness_pattern_exact}")


def robustness_vnnlib(image, label, radius, classes=10):
    """VNN-LIB text: inputs in the l_inf ball of ``radius`` around ``image`` (within
    [0, 1]); unsafe: some other class scores at least as high as ``label``."""
    lines = [f"(declare-const X_{i} Real)" for i in range(len(image))]
    lines += [f"(declare-const Y_{j} Real)" for j in range(classes)]
    for i, value in enumerate(image):
        lines.append(f"(assert (>= X_{i} {float(max(0.0, value - radius))!r}))")
        lines.append(f"(assert (<= X_{i} {float(min(1.0, value + radius))!r}))")
    others = " ".join(f"(and (>= Y_{j} Y_{label}))" for j in range(classes) if j != label)
    return "\n".join(lines + [f"(assert (or {others}))"]) + "\n"


def verification_section(network, image, label, radius):
    """Robustness of ``label`` in the l_inf ball of ``radius``: verified, the certificate
    re-checked (holds) or the counterexample's class shown (violated)."""
    out = HERE.parent / "out"
    out.mkdir(exist_ok=True)
    path = out / f"digits_cnn_robust_r{radius:g}.vnnlib"
    path.write_text(robustness_vnnlib(image, label, radius))
    prop = read_vnnlib(path)
    result = verify(network, prop, timeout=VERIFY_SECONDS)
    line = f"verify_robust_{label}_r{radius:g}: {result.status} ({result.stats['seconds']:.1f} s"
    if result.status == "holds":
        summary = check_certificate(network, prop, result.certificate)
        line += f", certificate checked: {summary}"
    elif result.status == "violated":
        cex = result.counterexample
        line += (f", counterexample classified {int(network.forward(cex.x)[0].argmax())}, "
                 f"exact re-check passed")
    print(line + ")")


if __name__ == "__main__":
    main()
