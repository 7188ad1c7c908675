"""Time the exact Lipschitz constant against LipSDP and sampling, and compare values.

Cases: ACAS Xu net 1_1 over the prop_1.vnnlib box (l2, all five outputs), and random
d-w-w-1 networks of growing width w over [-1, 1]^d (the cost curve). For each case it
prints the exact value with its time (region enumeration included), and every baseline
with its value, ratio to exact and time.

Usage:  python benchmarks/bench_lipschitz.py [--widths 8 16 32 64] [--dim 3] [--no-acas]
"""

import argparse
import time
from pathlib import Path

import numpy as np

import polyrelu
from polyrelu.analysis.lipschitz import lipschitz
from polyrelu.analysis.lipschitz_bounds import compare_bounds
from polyrelu.verification.vnnlib import input_box

ACASXU = Path(__file__).resolve().parents[2] / "shared" / "data" / "acasxu"


def report(name, network, domain, norm=2, sdp=True):
    start = time.perf_counter()
    result = lipschitz(network, domain, norm)
    exact_seconds = time.perf_counter() - start
    rows = compare_bounds(result, domain, sdp=sdp if norm == 2 else False)
    print(f"{name}: {network}, {len(result.complex)} regions, norm {norm}")
    print(f"  {'exact (polyrelu)':<26} value={result.value:<12.6g} seconds={exact_seconds:.2f}")
    for row in rows[1:]:
        print(f"  {row.method:<26} value={row.value:<12.6g} ratio={row.value / result.value:<8.4f}"
              f" seconds={row.seconds:.2f} {row.note}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", nargs="+", type=int, default=[8, 16, 32, 64])
    parser.add_argument("--dim", type=int, default=3)
    parser.add_argument("--no-acas", action="store_true")
    args = parser.parse_args()
    if not args.no_acas and ACASXU.is_dir():
        network = polyrelu.load_network(ACASXU / "ACASXU_run2a_1_1_batch_2000.onnx")
        # SCS did not finish this 305 x 305 LMI in 15 minutes here: Clarabel only
        report("acas 1_1 prop_1", network,
               polyrelu.Domain.box(*input_box(ACASXU / "prop_1.vnnlib")), sdp="CLARABEL")
    rng = np.random.default_rng(0)
    d = args.dim
    for width in args.widths:
        sizes = [d, width, width, 1]
        weights = [rng.normal(size=(o, i)) / np.sqrt(i) for i, o in zip(sizes[:-1], sizes[1:])]
        biases = [rng.normal(size=o) * 0.1 for o in sizes[1:]]
        report(f"random width {width}", polyrelu.Network(weights, biases),
               polyrelu.Domain.box(-np.ones(d), np.ones(d)))


if __name__ == "__main__":
    main()
