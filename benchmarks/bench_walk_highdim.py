"""Benchmark the graph walk beyond qhull's dimensions (8 to 64 inputs) against the count.

Cases (each run in its own process, so its peak memory is its own):
  digits  the scikit-learn digits MLP of examples/digits_slice.py (64-24-24-10, trained on
          all 1797 images, random_state=0) in l_inf balls of radius 0.01 ... 0.05 around
          the first ``--images`` images (not clipped to [0, 1]);
  net8    a random 8-24-24-4 network (seed 0, weights N(0, 1/fan_in), biases N(0, 0.1^2))
          over [-0.05, 0.05]^8;
  net12   a random 12-12-12-2 network (seed 1, same law) over [-0.1, 0.1]^12.

Per run it prints the walk's regions, seconds, regions/s, LPs per region and peak memory,
and the same for the splitting count, each with one BLAS thread (as the command line
runs; a multi-threaded BLAS on these small matrices was measured 3-4x slower on a loaded
machine). ``--repo PATH`` runs polyrelu from another checkout
(e.g. main) in the same run, for a before/after table. ``--timeout S`` stops a walk after
S seconds and reports its partial figures (marked ``partial=True``).

With ``--nnenum-python PYTHON`` (a venv set up as peer_nnenum.py says) net8 is also run
through nnenum's exact enumeration (the network written as ONNX, the box as VNN-LIB).

Usage:  python benchmarks/bench_walk_highdim.py [--cases digits net8 net12]
            [--radii 0.01 0.03 0.05] [--images 10] [--repo PATH] [--timeout S]
            [--nnenum-python PATH]
"""

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from nnenum_inputs import box_vnnlib, mlp_onnx

HERE = Path(__file__).resolve().parent


def digits_network():
    """The network and images of examples/digits_slice.py."""
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    from polyrelu.network.loaders import from_sklearn

    digits = load_digits()
    X, y = digits.data / 16.0, digits.target
    model = MLPClassifier(hidden_layer_sizes=(24, 24), max_iter=400, random_state=0).fit(X, y)
    return from_sklearn(model), X


def random_weights(sizes, seed):
    """Weights and biases rounded to float32, so that the ONNX file given to nnenum holds
    the very network polyrelu enumerates."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)
               for n_in, n_out in itertools.pairwise(sizes)]
    biases = [rng.normal(size=n_out) * 0.1 for n_out in sizes[1:]]
    return ([w.astype(np.float32).astype(np.float64) for w in weights],
            [c.astype(np.float32).astype(np.float64) for c in biases])


CASES = {"net8": ((8, 24, 24, 4), 0, 0.05), "net12": ((12, 12, 12, 2), 1, 0.1)}


def problem(case, image, radius):
    """(network, domain) of one run."""
    import polyrelu

    if case == "digits":
        network, X = digits_network()
        return network, polyrelu.Domain.box(X[image] - radius, X[image] + radius)
    sizes, seed, half = CASES[case]
    network = polyrelu.Network(*random_weights(sizes, seed))
    return network, polyrelu.Domain.box(-half * np.ones(sizes[0]), half * np.ones(sizes[0]))


def run(case, image, radius, mode, timeout):
    """Figures of one walk (``mode == "walk"``) or splitting count, in this process."""
    import polyrelu
    from polyrelu.deadline import Deadline
    from polyrelu.errors import TimeLimitError
    from polyrelu.regions.splitting import count_regions

    network, domain = problem(case, image, radius)
    start = time.perf_counter()
    partial = False
    if mode == "count":
        regions, stats = count_regions(network, domain)
    else:
        try:
            complex_ = polyrelu.enumerate_regions(network, domain,
                                                  deadline=Deadline(timeout or None))
        except TimeLimitError as error:
            complex_, partial = error.partial, True
        regions, stats = len(complex_), complex_.stats
    seconds = time.perf_counter() - start
    return {"case": case, "image": image, "radius": radius, "mode": mode, "regions": regions,
            "seconds": round(seconds, 3),
            "regions_per_second": round(regions / seconds, 2),
            "lps_per_region": round(stats["lps"] / max(regions, 1), 2),
            "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                                    1),
            "partial": partial}


def child(repo, *arguments):
    """Run this script's --child in a fresh process on the polyrelu of ``repo``."""
    env = dict(os.environ, PYTHONPATH=str(repo), OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OMP_NUM_THREADS="1")  # one BLAS thread, as the command line runs
    out = subprocess.run([sys.executable, __file__, "--child", *map(str, arguments)],
                         capture_output=True, text=True, check=True, env=env, cwd=repo)
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_nnenum_inputs(directory):
    """net8 as ONNX (Gemm and Relu nodes) and its box as a VNN-LIB property."""
    sizes, seed, half = CASES["net8"]
    weights, biases = random_weights(sizes, seed)
    net, prop = Path(directory) / "net8.onnx", Path(directory) / "net8.vnnlib"
    mlp_onnx(weights, biases, net)
    box_vnnlib(prop, [-half] * sizes[0], [half] * sizes[0], sizes[-1])
    return net, prop


def nnenum(python, processes, timeout):
    with tempfile.TemporaryDirectory(prefix="bench-highdim-nnenum-") as tmp:
        net, prop = write_nnenum_inputs(tmp)
        out = subprocess.run([python, str(HERE / "peer_nnenum.py"), "enumerate", str(net),
                              str(prop), "--processes", str(processes)]
                             + (["--timeout", str(timeout)] if timeout else []),
                             capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def print_figures(label, figures):
    print(label, " ".join(f"{k}={v}" for k, v in figures.items()), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["digits", "net8", "net12"],
                        choices=["digits", "net8", "net12"])
    parser.add_argument("--radii", nargs="+", type=float,
                        default=[0.01, 0.02, 0.03, 0.04, 0.05])
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--repo", type=Path, help="also run the polyrelu checkout at PATH")
    parser.add_argument("--timeout", type=float, default=0.0,
                        help="seconds per walk (0: none)")
    parser.add_argument("--nnenum-python", default=os.environ.get("NNENUM_PYTHON"))
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        case, image, radius, mode, timeout = args.child
        print(json.dumps(run(case, int(image), float(radius), mode, float(timeout))))
        return
    repos = [("this", HERE.parent)] + ([("other", args.repo.resolve())] if args.repo else [])
    totals = {}
    for case in args.cases:
        runs = ([(image, radius) for radius in args.radii for image in range(args.images)]
                if case == "digits" else [(0, 0.0)])
        for image, radius in runs:
            count = child(HERE.parent, case, image, radius, "count", 0)
            print_figures("count", count)
            for name, repo in repos:
                walk = child(repo, case, image, radius, "walk", args.timeout)
                print_figures(f"walk[{name}]", walk)
                if walk["regions"] != count["regions"] and not walk["partial"]:
                    print(f"  MISMATCH: walk {walk['regions']} regions, count "
                          f"{count['regions']}")
                total = totals.setdefault((case, name), [0, 0.0, 0, 0.0])
                total[0] += walk["regions"]
                total[1] += walk["seconds"]
                total[2] += count["regions"]
                total[3] += count["seconds"]
        if case == "net8" and args.nnenum_python:
            for processes in (1, 2):
                print_figures(f"nnenum[processes={processes}]",
                              nnenum(args.nnenum_python, processes, args.timeout))
    for (case, name), (walked, walk_s, counted, count_s) in totals.items():
        print(f"total {case} [{name}]: walk {walked} regions in {walk_s:.1f} s "
              f"({walked / walk_s:.1f}/s), count {counted} in {count_s:.1f} s "
              f"({counted / count_s:.1f}/s): walk/count regions/s = "
              f"{(walked / walk_s) / (counted / count_s):.2f}")


if __name__ == "__main__":
    main()
