"""Time one user of the splitting engine on one case, and print its figures.

Modes: ``count`` (:func:`polyrelu.count_regions`), ``enumerate``
(:func:`polyrelu.enumerate_by_splitting`, leaves with facets) and ``verify``
(:func:`polyrelu.verify` with its default settings, on instances where the exact
phase's layer-wise splitting takes much of the time).

Cases: ``moons`` (the bundled 2-16-16-2 net over [-2, 3] x [-1.5, 2]), ``random`` (a
3-12-12-1 net, seed 0, over [-1, 1]^3), ``acas`` (ACAS Xu 1_1 over a quarter of the
prop_1 box; needs ../shared/data/acasxu) and, for ``verify``, ``acas-NET-PROP`` (e.g.
``acas-3_6-prop_1``: an instance whose search sends many deep sub-boxes to the exact
phase).

Prints one line: ``mode case regions_or_status lps seconds``. To compare two checkouts
in paired runs, run this script from each with farm-bench::

    farm-bench --vs 'sh -c "cd OLD && python benchmarks/bench_splitting.py count acas"' \\
        -- sh -c 'cd NEW && python benchmarks/bench_splitting.py count acas'

Usage: python benchmarks/bench_splitting.py MODE CASE
"""

import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the checkout this script belongs to

import polyrelu  # noqa: E402

ACASXU = HERE.parents[1] / "shared" / "data" / "acasxu"


def network_and_domain(case):
    """The network and input box of a case."""
    if case == "moons":
        network = polyrelu.load_network(HERE.parent / "examples" / "nets" /
                                        "moons_2_16_16_2.npz")
        return network, polyrelu.Domain.box([-2.0, -1.5], [3.0, 2.0])
    if case == "random":
        rng = np.random.default_rng(0)
        sizes = [3, 12, 12, 1]
        weights = [rng.normal(size=(o, i)) / np.sqrt(i) for i, o in zip(sizes, sizes[1:])]
        biases = [rng.normal(size=o) * 0.1 for o in sizes[1:]]
        return polyrelu.Network(weights, biases), polyrelu.Domain.box(-np.ones(3), np.ones(3))
    if case == "acas":
        network = polyrelu.load_network(ACASXU / "ACASXU_run2a_1_1_batch_2000.onnx")
        case_box = polyrelu.read_vnnlib(ACASXU / "prop_1.vnnlib").cases[0]
        lower, upper = case_box.lower, case_box.upper
        upper = lower + (upper - lower) * np.array([0.5, 0.5, 1.0, 1.0, 1.0])
        return network, polyrelu.Domain.box(lower, upper)
    raise SystemExit(f"unknown case {case!r}")


def verify_case(case):
    """An ACAS Xu instance (``acas-3_6-prop_1``: network 3_6, prop_1.vnnlib) whose search
    sends many deep sub-boxes to the exact phase."""
    _, net, prop = case.split("-")
    network = polyrelu.load_network(ACASXU / f"ACASXU_run2a_{net}_batch_2000.onnx")
    return network, polyrelu.read_vnnlib(ACASXU / f"{prop}.vnnlib")


def main(mode, case):
    start = time.perf_counter()
    if mode == "verify":
        network, prop = verify_case(case)
        result = polyrelu.verify(network, prop)
        figures = (result.status, result.stats["lps"])
    else:
        network, domain = network_and_domain(case)
        if mode == "count":
            figures = polyrelu.count_regions(network, domain)
            figures = (figures[0], figures[1]["lps"])
        else:
            complex_ = polyrelu.enumerate_by_splitting(network, domain)
            figures = (len(complex_), complex_.stats["lps"])
    print(mode, case, *figures, f"{time.perf_counter() - start:.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
