"""Benchmark the graph walk, and the peer relucent in the same run.

Cases:
  (a) ACAS Xu net 1_1 over the input box of prop_1.vnnlib (needs ../shared/data/acasxu),
  (b) a random 4-16-16-1 network (seed 0, weights N(0, 1/fan_in), biases N(0, 0.1^2))
      over [-1, 1]^4.

Each case runs in its own process so that its peak memory (max RSS) is its own. The
script prints, per case: regions, seconds, regions/s, LPs per region, peak memory.
With ``--relucent-python PYTHON`` (or the RELUCENT_PYTHON environment variable) it also
runs benchmarks/peer_relucent.py with that interpreter (a venv where
``pip install relucent`` was run) on case (b) and prints the ratio of regions/s.

With ``--nnenum-python PYTHON`` (or NNENUM_PYTHON; a venv set up as peer_nnenum.py says) it
runs nnenum's exact star-set enumeration on case (a) with 1 and 2 processes in the same run
and prints its star count (= regions meeting the box) and the time ratio.
With ``--count`` it also times polyrelu's splitting count mode (slow on case a).

Usage:  python benchmarks/bench_walk.py [--cases a b] [--jobs 1 2] [--relucent-python PATH]
                                        [--nnenum-python PATH] [--count]

The peak memory of a --jobs run is the main process's (workers are separate).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ACASXU = HERE.parents[1] / "shared" / "data" / "acasxu"


def random_net_file(path, sizes=(4, 16, 16, 1)):
    """A seeded random ReLU network (seed 0; weights N(0, 1/fan_in), biases N(0, 0.1^2))
    of layer sizes ``sizes``, saved as an ``.npz`` of W0, b0, ...; returns ``path``."""
    rng = np.random.default_rng(0)
    arrays = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        arrays[f"W{i}"] = rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)
        arrays[f"b{i}"] = rng.normal(size=n_out) * 0.1
    np.savez(path, **arrays)
    return path


def run_case(case, net_path, jobs=1):
    """Run one case in this process and return its figures (called in a child).

    ``jobs = 0`` times the splitting enumerator's count mode instead of the walk."""
    import polyrelu
    from polyrelu.verification.vnnlib import input_box

    if case == "a":
        network = polyrelu.load_network(ACASXU / "ACASXU_run2a_1_1_batch_2000.onnx")
        domain = polyrelu.Domain.box(*input_box(ACASXU / "prop_1.vnnlib"))
    else:
        network = polyrelu.load_network(net_path)
        domain = polyrelu.Domain.box(-np.ones(4), np.ones(4))
    start = time.perf_counter()
    if jobs == 0:
        from polyrelu.regions.splitting import count_regions

        count, stats = count_regions(network, domain)
        seconds = time.perf_counter() - start
        return {"case": case, "mode": "count", "regions": count, "seconds": round(seconds, 3),
                "regions_per_second": round(count / seconds, 1),
                "lps_per_region": round(stats["lps"] / count, 3),
                "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                        / 1024, 1)}
    if jobs > 1:
        from polyrelu.regions.parallel import enumerate_parallel

        complex_ = enumerate_parallel(network, domain, jobs=jobs)
    else:
        complex_ = polyrelu.enumerate_regions(network, domain)
    seconds = time.perf_counter() - start
    return {
        "case": case, "jobs": jobs, "network": repr(network), "regions": len(complex_),
        "edges": complex_.graph.number_of_edges(), "seconds": round(seconds, 3),
        "regions_per_second": round(len(complex_) / seconds, 1),
        "lps_per_region": round(complex_.stats["lps"] / len(complex_), 3),
        "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def run_child(args):
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    return out.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["a", "b"], choices=["a", "b"])
    parser.add_argument("--relucent-python", default=os.environ.get("RELUCENT_PYTHON"))
    parser.add_argument("--jobs", nargs="+", type=int, default=[1],
                        help="worker-process counts to time (e.g. 1 2)")
    parser.add_argument("--nnenum-python", default=os.environ.get("NNENUM_PYTHON"))
    parser.add_argument("--count", action="store_true",
                        help="also time the splitting enumerator's count mode")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        case, path, jobs = args.child
        print(json.dumps(run_case(case, path, int(jobs))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        net_path = random_net_file(Path(tmp) / "random_4_16_16_1.npz")
        results = {}
        for case in args.cases:
            if case == "a" and not ACASXU.is_dir():
                print(f"case a skipped: {ACASXU} not found")
                continue
            for jobs in args.jobs + ([0] if args.count else []):
                line = run_child([sys.executable, __file__, "--child", case, str(net_path),
                                  str(jobs)])
                figures = json.loads(line)
                results.setdefault(case if jobs else (case, "count"), figures)
                print(" ".join(f"{k}={v}" for k, v in figures.items()))
        if "b" in results and args.relucent_python:
            for workers in (1, os.cpu_count()):
                peer = _relucent(args.relucent_python, net_path, workers)
                ratio = results["b"]["regions_per_second"] / peer["regions_per_second"]
                print(f"relucent (workers={workers}): regions={peer['regions']} "
                      f"seconds={peer['seconds']} regions_per_second={peer['regions_per_second']}"
                      f" | polyrelu/relucent regions/s ratio: {ratio:.1f}x")
        elif "b" in results:
            print("relucent not run: pass --relucent-python PATH (a python with relucent "
                  "installed)")
        if "a" in results and args.nnenum_python:
            for processes in (1, 2):
                peer = _nnenum(args.nnenum_python, processes)
                print(f"nnenum (processes={processes}): stars={peer['stars']} "
                      f"seconds={peer['seconds']} peak_memory_mb={peer['peak_rss_mb']} | "
                      f"polyrelu walk (jobs=1) / nnenum time ratio: "
                      f"{results['a']['seconds'] / peer['seconds']:.2f}")
                if ("a", "count") in results:
                    print(f"  polyrelu splitting count (1 process) / nnenum (processes="
                          f"{processes}) time ratio: "
                          f"{results[('a', 'count')]['seconds'] / peer['seconds']:.2f}")


def _nnenum(python, processes):
    text = run_child([python, str(HERE / "peer_nnenum.py"), "enumerate",
                      str(ACASXU / "ACASXU_run2a_1_1_batch_2000.onnx"),
                      str(ACASXU / "prop_1.vnnlib"), "--processes", str(processes)])
    return json.loads(text.strip().splitlines()[-1])


def _relucent(python, net_path, workers):
    text = run_child([python, str(HERE / "peer_relucent.py"), str(net_path),
                      "--lo", "-1", "--hi", "1", "--workers", str(workers)])
    values = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    regions, seconds = int(values["regions"]), float(values["seconds"])
    return {"regions": regions, "seconds": seconds,
            "regions_per_second": round(regions / seconds, 1)}


if __name__ == "__main__":
    main()
