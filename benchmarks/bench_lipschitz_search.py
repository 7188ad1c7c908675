"""Benchmark the exact Lipschitz constant by branch and bound (whole CLI runs).

Cases:
  acas   ACAS Xu net 1_1 over the input box of prop_1.vnnlib (needs ../shared/data/acasxu):
         ``polyrelu lipschitz --norm N`` for each of the three norms, against
         ``polyrelu regions --count-only`` on the same box in the same run (the fastest
         full enumeration; the target is a ratio <= 0.5).
  digits The digits MLP (64-24-24-10, trained as examples/digits_slice.py does, on the
         first 1500 images): the local l_inf-to-l_inf constant in the l_inf ball of radius
         0.05 around 5 images it was not trained on (target: each under 60 s).

Every run is a separate ``python -m polyrelu`` process, timed from outside (wall clock);
the search's own counts (regions reached, pieces bounded and pruned, LPs) come from its
JSON report.

Usage:  python benchmarks/bench_lipschitz_search.py [--cases acas digits] [--timeout S]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ACASXU = HERE.parents[1] / "shared" / "data" / "acasxu"
ROOT = HERE.parent


def polyrelu(*arguments, timeout):
    """Run ``python -m polyrelu ARGUMENTS --json``: (exit status, report or None, seconds)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "polyrelu", *arguments, "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout + 60)
    seconds = time.perf_counter() - start
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        report = None
    return done.returncode, report, seconds


def acas(timeout):
    """The three norms on ACAS Xu 1_1 prop_1 and the count-only enumeration."""
    net = str(ACASXU / "ACASXU_run2a_1_1_batch_2000.onnx")
    box = ["--vnnlib", str(ACASXU / "prop_1.vnnlib")]
    status, count, count_seconds = polyrelu("regions", net, *box, "--count-only",
                                            "--timeout", str(timeout), timeout=timeout)
    print(f"acas count-only: {count and count.get('regions')} regions, "
          f"{count_seconds:.1f} s (exit {status})")
    for norm in ("1", "2", "inf"):
        status, report, seconds = polyrelu("lipschitz", net, *box, "--norm", norm,
                                           "--timeout", str(timeout), timeout=timeout)
        print(f"acas lipschitz l{norm}: {_summary(status, report)}, {seconds:.1f} s, "
              f"ratio to count-only {seconds / count_seconds:.2f}")


def digits(timeout, images=5, radius=0.05):
    """The local l_inf constant of the digits MLP around images it was not trained on."""
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    from polyrelu.network.loaders import from_sklearn, save_npz

    data = load_digits()
    X, y = data.data / 16.0, data.target
    model = MLPClassifier(hidden_layer_sizes=(24, 24), max_iter=400, random_state=0)
    model.fit(X[:1500], y[:1500])
    network = from_sklearn(model, allow_extreme_numerics=True)
    with tempfile.TemporaryDirectory(prefix="bench_lipschitz_search") as folder:
        path = str(Path(folder) / "digits.npz")
        save_npz(network, path)
        for index in range(1500, 1500 + images):
            centre = ",".join(repr(float(v)) for v in X[index])
            status, report, seconds = polyrelu(
                "lipschitz", path, "--center", centre, "--radius", str(radius), "--norm",
                "inf", "--allow-extreme-numerics", "--timeout", str(timeout), timeout=timeout)
            print(f"digits image {index}: {_summary(status, report)}, {seconds:.1f} s")


def _summary(status, report):
    if report is None:
        return f"no report (exit {status})"
    if status == 3:
        return f"partial, bracket {report.get('lipschitz_bracket')}"
    return (f"{report['lipschitz']:.10g} (regions reached {report['regions_reached']}, "
            f"bounded {report['pieces_bounded']}, pruned {report['pieces_pruned']}, "
            f"LPs {report['lps']})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["acas", "digits"],
                        choices=["acas", "digits"])
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    np.set_printoptions(precision=6)
    for case in args.cases:
        {"acas": acas, "digits": digits}[case](args.timeout)


if __name__ == "__main__":
    main()
