"""Peak memory and speed of a large walk written to a file, before and after a change.

The case: a seeded random ReLU network (weights N(0, 1/fan_in), biases N(0, 0.1^2), seed 0;
layer sizes ``--sizes``, default 6-10-10-10-1) over [-1, 1]^6, enumerated and saved to an
``.npz`` file. Each run is its own process (its peak memory, max RSS, is its own); the
"before" code is a ``git archive`` of ``--before`` (default: the merge base with main)
extracted to a temporary folder, the "after" code this working tree. Modes:

  cli     ``polyrelu regions NET --box -1 1 -o FILE`` (after the change the regions stream to
          a spill file and only the frontier is held)
  memory  ``enumerate_regions(...)`` returning the RegionComplex, then ``save`` (the
          in-memory API)

Runs alternate before/after so that load from other processes hits both alike. Printed per
run: regions, edges, seconds, CPU seconds (user + system: the fairer speed on a shared
machine) and regions per CPU second, peak RSS (MB), file size.

Usage:  python benchmarks/bench_walk_memory.py [--sizes 6 10 10 10 1] [--modes cli memory]
                                               [--before REF] [--repeats 1]
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
from bench_walk import random_net_file

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def run_case(mode, net_path, out_path):
    """One run in this process (the child): its figures as a dict."""
    import contextlib
    import io

    import polyrelu

    network = polyrelu.load_network(net_path)
    d = network.input_dim
    start, cpu_start = time.perf_counter(), time.process_time()
    if mode == "cli":
        from polyrelu.cli.main import main

        with contextlib.redirect_stdout(io.StringIO()):
            status = main(["regions", str(net_path), "--box", "-1", "1", "-o", str(out_path)])
        assert status == 0, status
    else:
        complex_ = polyrelu.enumerate_regions(network, polyrelu.Domain.box(-np.ones(d),
                                                                           np.ones(d)))
        complex_.save(out_path)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = time.process_time() - cpu_start
    with np.load(out_path) as data:
        regions, edges = len(data["ids"]), len(data["edges"])
    return {"code": str(Path(polyrelu.__file__).parents[1]), "mode": mode, "regions": regions,
            "edges": edges, "seconds": round(seconds, 1),
            "cpu_seconds": round(cpu, 1), "regions_per_cpu_second": round(regions / cpu, 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "file_mb": round(os.path.getsize(out_path) / 2**20, 1)}


def extract(ref, folder):
    """The source tree of git ``ref`` of this repository, extracted to ``folder``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[6, 10, 10, 10, 1])
    parser.add_argument("--modes", nargs="+", default=["cli", "memory"],
                        choices=["cli", "memory"])
    parser.add_argument("--before", help="git ref of the code before (default: the merge "
                                         "base of HEAD and main)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(*args.child)))
        return
    before = args.before or subprocess.run(
        ["git", "-C", str(ROOT), "merge-base", "HEAD", "main"], check=True,
        capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bench-walk-memory-") as tmp:
        tmp = Path(tmp)
        net = random_net_file(tmp / "net.npz", args.sizes)
        trees = {"before": extract(before, Path(tempfile.mkdtemp(dir=tmp))), "after": ROOT}
        print(f"network {'-'.join(map(str, args.sizes))} over [-1, 1]^{args.sizes[0]}; "
              f"before = {before[:12]}")
        for _ in range(args.repeats):
            for mode in args.modes:
                for label, tree in trees.items():
                    out = tmp / f"{label}-{mode}.npz"
                    env = {**os.environ, "PYTHONPATH": str(tree)}
                    line = subprocess.run(
                        [sys.executable, __file__, "--child", mode, str(net), str(out)],
                        env=env, check=True, capture_output=True, text=True,
                    ).stdout.strip().splitlines()[-1]
                    figures = json.loads(line)
                    print(label, " ".join(f"{k}={v}" for k, v in figures.items()), flush=True)
                    out.unlink()


if __name__ == "__main__":
    main()
