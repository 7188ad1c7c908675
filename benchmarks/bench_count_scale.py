"""Count-mode benchmark: ``polyrelu regions --count-only`` against nnenum's exact star-set
enumeration, both whole command-line runs in the same call.

    python benchmarks/bench_count_scale.py [--cases acas,deep6,wide12] [--jobs N]
        [--nnenum-python PY] [--checkout DIR] [--deep6-sizes 10,10,10] [--timeout S]

Cases (each an ONNX network and a VNN-LIB box, written to a temporary folder when they
are random):

- ``acas``: ACAS Xu network 1_1 over the prop_1 box (../shared/data/acasxu), one process
  each;
- ``deep6``: a seeded random 6-input net (hidden sizes ``--deep6-sizes``; issue 17 used
  four layers of 10, ~550,000 regions, which takes many minutes) over [-1, 1]^6,
  polyrelu ``--jobs N`` against nnenum with N processes;
- ``wide12``: a seeded random 12-12-12-2 net over the box of half-width 0.1 around 0,
  one process each.

For every run: regions (nnenum: stars), wall and CPU seconds of the whole process (its
workers included), the tool's own seconds (counting only, without start-up and loading),
regions per second (of the whole process), LPs per region (polyrelu), peak resident memory
of the largest process; then the ratio polyrelu / nnenum of wall seconds and whether the
counts agree. ``--checkout DIR`` also runs that checkout's polyrelu (e.g. /work/main) for
a before/after comparison in the same call. nnenum is set up as benchmarks/peer_nnenum.py
describes.
"""

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from nnenum_inputs import box_vnnlib, mlp_onnx

HERE = Path(__file__).resolve().parent
ACASXU = HERE.parents[1] / "shared" / "data" / "acasxu"
NNENUM_PYTHON = "/work/peer-nnenum/venv/bin/python"


def random_onnx(path, sizes, seed):
    """A seeded random ReLU net (He-scaled weights, biases N(0, 0.3^2)) saved as ONNX."""
    rng = np.random.default_rng(seed)
    weights, biases = [], []
    for fan_in, fan_out in itertools.pairwise(sizes):
        weights.append((rng.normal(size=(fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32).T)
        biases.append((0.3 * rng.normal(size=fan_out)).astype(np.float32))
    mlp_onnx(weights, biases, path)


def run(command, env=None, timeout=None):
    """(stdout, wall seconds, CPU seconds, peak MB) of a whole process: the OS's account
    of it and the children it waited for (its workers)."""
    with tempfile.TemporaryFile("w+") as out:
        start = time.monotonic()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.DEVNULL, env=env)
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        _, _, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - start
        timer.cancel()
        process.returncode = 0  # reaped by wait4
        out.seek(0)
        return out.read(), wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def run_polyrelu(root, net, prop, jobs, timeout):
    command = [sys.executable, "-m", "polyrelu", "regions", str(net), "--vnnlib", str(prop),
               "--count-only", "--json"] + (["--jobs", str(jobs)] if jobs > 1 else [])
    env = dict(os.environ, PYTHONPATH=str(root))
    out, wall, cpu, peak = run(command, env, timeout)
    try:
        result = json.loads(out)
    except ValueError:
        return {"regions": None, "wall": wall, "cpu": cpu, "peak_mb": peak}
    return {"regions": result.get("regions"), "wall": wall, "cpu": cpu, "peak_mb": peak,
            "lps_per_region": result.get("lps_per_region"), "own": result.get("seconds")}


def run_nnenum(python, net, prop, processes, timeout):
    command = [python, str(HERE / "peer_nnenum.py"), "enumerate", str(net), str(prop),
               "--processes", str(processes), "--timeout", str(timeout)]
    out, wall, cpu, peak = run(command, None, timeout + 60)
    try:
        result = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"regions": None, "wall": wall, "cpu": cpu, "peak_mb": peak}
    return {"regions": result["stars"] if result.get("complete") else None, "wall": wall,
            "cpu": cpu, "peak_mb": peak, "own": result.get("seconds")}


def cases(names, folder, deep6_sizes, jobs):
    """(name, net, prop, polyrelu jobs, nnenum processes) of each case asked for."""
    for name in names:
        if name == "acas":
            yield (name, ACASXU / "ACASXU_run2a_1_1_batch_2000.onnx", ACASXU / "prop_1.vnnlib",
                   1, 1)
        elif name == "deep6":
            sizes = (6, *deep6_sizes, 1)
            net, prop = folder / "deep6.onnx", folder / "deep6.vnnlib"
            random_onnx(net, sizes, seed=17)
            box_vnnlib(prop, -np.ones(6), np.ones(6), 1)
            yield f"deep6 {'-'.join(map(str, sizes))}", net, prop, jobs, jobs
        elif name == "wide12":
            net, prop = folder / "wide12.onnx", folder / "wide12.vnnlib"
            random_onnx(net, (12, 12, 12, 2), seed=12)
            box_vnnlib(prop, -0.1 * np.ones(12), 0.1 * np.ones(12), 2)
            yield name, net, prop, 1, 1
        else:
            raise SystemExit(f"unknown case {name!r}")


def line(case, tool, r):
    regions = r["regions"]
    rate = f"{regions / r['wall']:9.0f}" if regions else f"{'-':>9}"
    lps = r.get("lps_per_region")
    own = f"{r['own']:8.1f}" if r.get("own") is not None else f"{'-':>8}"
    return (f"{case:<22} {tool:<14} {regions if regions is not None else 'failed':>9} "
            f"{r['wall']:8.1f} {r['cpu']:8.1f} {own} {rate} {lps if lps is not None else '-':>8} "
            f"{r['peak_mb']:8.0f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="acas,deep6,wide12")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--deep6-sizes", default="10,10,10")
    parser.add_argument("--nnenum-python", default=NNENUM_PYTHON)
    parser.add_argument("--checkout", help="also time this checkout's polyrelu")
    parser.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.deep6_sizes.split(","))
    roots = [("polyrelu", HERE.parent)]
    if args.checkout:
        roots.append(("checkout", Path(args.checkout)))
    print(f"{'case':<22} {'tool':<14} {'regions':>9} {'wall s':>8} {'cpu s':>8} {'own s':>8} "
          f"{'regions/s':>9} {'LPs/reg':>8} {'peak MB':>8}")
    with tempfile.TemporaryDirectory(prefix="bench-count-scale-") as folder:
        for case, net, prop, jobs, processes in cases(args.cases.split(","), Path(folder),
                                                      sizes, args.jobs):
            results = {}
            for tool, root in roots:
                results[tool] = run_polyrelu(root, net, prop, jobs, args.timeout)
                print(line(case, f"{tool} j{jobs}", results[tool]), flush=True)
            peer = run_nnenum(args.nnenum_python, net, prop, processes, args.timeout)
            print(line(case, f"nnenum p{processes}", peer), flush=True)
            for tool, r in results.items():
                agree = "agree" if r["regions"] == peer["regions"] else "DIFFER"
                print(f"{case:<22} {tool}/nnenum wall {r['wall'] / peer['wall']:.2f}x, "
                      f"cpu {r['cpu'] / max(peer['cpu'], 1e-9):.2f}x, counts {agree}",
                      flush=True)


if __name__ == "__main__":
    main()
