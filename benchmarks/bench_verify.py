"""Verification benchmark: ACAS Xu instances, polyrelu against nnenum in the same run.

    python benchmarks/bench_verify.py [--cap S] [--every K] [--nnenum-python PY]
                                      [--out results.csv]

Runs ``polyrelu.verification.search`` on the instances of ../shared/data/acasxu/acasxu_instances.csv
(every K-th one with --every) with ``min(instance limit, cap)`` seconds each, and, if
``--nnenum-python`` names the Python of an nnenum install (see peer_nnenum.py), nnenum
on the same instance right after, as a subprocess with the same limit. Every polyrelu
answer is re-checked (certificate checker / exact and onnxruntime counterexample
checks). Writes one csv row per instance and prints the summary: decided instances,
total and maximum seconds per tool, agreement, polyrelu's peak memory.
"""

import argparse
import csv
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from polyrelu.network.loaders import MAX_PARAMETERS
from polyrelu.verification.instances import read_instances, run_instance

ROOT = Path(__file__).resolve().parents[1]
ACASXU = ROOT.parent / "shared" / "data" / "acasxu"
DECIDED = ("holds", "violated")


def run_polyrelu(net_path, prop_path, limit, cache, max_parameters=MAX_PARAMETERS):
    row = run_instance(net_path, prop_path, limit, cache=cache, max_parameters=max_parameters)
    assert row["check"] in ("passed", ""), f"{row['network']} {row['property']}: {row['check']}"
    return row["result"], float(row["seconds"])


def run_nnenum(python, net_path, prop_path, limit):
    script = Path(__file__).with_name("peer_nnenum.py")
    start = time.monotonic()
    try:
        done = subprocess.run([python, str(script), "verify", str(net_path), str(prop_path),
                               "--timeout", str(limit)], capture_output=True, text=True,
                              timeout=limit + 60)
    except subprocess.TimeoutExpired:  # nnenum overran its limit by a minute: stopped
        wall = time.monotonic() - start
        return "timeout", wall, wall
    wall = time.monotonic() - start
    try:
        out = json.loads(done.stdout.strip().splitlines()[-1])
        return out["result"], out["seconds"], wall
    except (IndexError, ValueError, KeyError):
        return "error", wall, wall


def nnenum_columns(python, net_path, prop_path, limit):
    """nnenum's columns of a row (its answer, seconds and wall seconds; retried once on
    an error: nnenum's LP layer fails now and then)."""
    answer, peer_seconds, wall = run_nnenum(python, net_path, prop_path, limit)
    if answer == "error":
        answer, peer_seconds, wall = run_nnenum(python, net_path, prop_path, limit)
    return {"nnenum_result": answer, "nnenum_seconds": f"{peer_seconds:.3f}",
            "nnenum_wall_seconds": f"{wall:.3f}"}


def record(row, writer, handle, rows):
    """Write ``row`` at once (flushed), keep it in ``rows`` and print it."""
    writer.writerow(row)
    handle.flush()
    rows.append(row)
    print(" ".join(str(v) for v in row.values()), flush=True)


def summary(rows, tool):
    answers = [r[f"{tool}_result"] for r in rows]
    seconds = [float(r[f"{tool}_seconds"]) for r in rows]
    return (f"{tool}: decided {sum(a in DECIDED for a in answers)}/{len(rows)} "
            f"(holds {answers.count('holds')}, violated {answers.count('violated')}), "
            f"total {sum(seconds):.1f} s, max {max(seconds):.2f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", default=str(ACASXU / "acasxu_instances.csv"))
    parser.add_argument("--cap", type=float, default=None, help="seconds per instance at most")
    parser.add_argument("--every", type=int, default=1, help="run every K-th instance")
    parser.add_argument("--nnenum-python", help="python of an nnenum venv (peer_nnenum.py)")
    parser.add_argument("--out", default="bench_verify.csv")
    args = parser.parse_args()
    instances = read_instances(args.instances)[::args.every]
    rows, cache = [], {}
    fields = ["network", "property", "limit", "polyrelu_result", "polyrelu_seconds"]
    if args.nnenum_python:
        fields += ["nnenum_result", "nnenum_seconds", "nnenum_wall_seconds"]
    with open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fields)
        writer.writeheader()
        for net_path, prop_path, limit in instances:
            limit = limit if args.cap is None else min(limit, args.cap)
            status, seconds = run_polyrelu(net_path, prop_path, limit, cache)
            row = {"network": net_path.name, "property": prop_path.name, "limit": limit,
                   "polyrelu_result": status, "polyrelu_seconds": f"{seconds:.3f}"}
            if args.nnenum_python:
                row.update(nnenum_columns(args.nnenum_python, net_path, prop_path, limit))
            record(row, writer, handle, rows)
    print(summary(rows, "polyrelu"))
    if args.nnenum_python:
        print(summary(rows, "nnenum"))
        clash = [r for r in rows if {r["polyrelu_result"], r["nnenum_result"]} ==
                 set(DECIDED)]
        print(f"disagreements (one says holds, the other violated): {len(clash)}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"polyrelu peak memory: {peak:.0f} MB")
    sys.exit(0)


if __name__ == "__main__":
    main()
