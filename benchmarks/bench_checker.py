"""Certificate checker benchmark: the checker's time against the search's on ACAS Xu.

    python benchmarks/bench_checker.py [--cap S] [--every K] [--out results.csv]

For the instances that results/acasxu_verify_cap30.csv records as "holds" (every K-th one
with --every), runs the search (``polyrelu.verification.search.verify``, at most ``cap``
seconds) and then the independent checker on its certificate, in this process, and writes
one row per instance: search and check seconds, their ratio and the checker's verdict.
Prints the ratios' median and maximum and the instances above 0.2.

What is timed, the same scope for both: the network and the property are loaded first
(not timed); ``search_*`` is the call ``verify(net, prop)`` (the search and the making of
its certificate, fingerprint included), ``check_*`` the call
``check_certificate(net, prop, certificate)`` (header and fingerprint, shapes, trees,
bounds, LPs) on the certificate in memory (no file written or read). Both run with one
BLAS thread (as the command line does, ``polyrelu.threads``). ``*_cpu`` is the process's
CPU time (``time.process_time``), ``*_seconds`` the wall time; on a shared machine the
CPU times are the steadier measure and ``ratio`` is ``check_cpu / search_cpu``.
"""

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's polyrelu

from polyrelu import PolyreluError  # noqa: E402
from polyrelu.network.loaders import load_network  # noqa: E402
from polyrelu.threads import blas_threads  # noqa: E402
from polyrelu.verification.checker import check_certificate  # noqa: E402
from polyrelu.verification.search import verify  # noqa: E402
from polyrelu.verification.vnnlib import read_vnnlib  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ACASXU = ROOT.parent / "shared" / "data" / "acasxu"
REFERENCE = ROOT / "benchmarks" / "results" / "acasxu_verify_cap30.csv"


def holds_instances(every):
    rows = [row for row in csv.reader(open(REFERENCE)) if len(row) > 4 and row[3] == "holds"]
    return [(row[0], row[1]) for row in rows[::every]]


def measure(net_name, prop_name, cap):
    net, prop = load_network(ACASXU / net_name), read_vnnlib(ACASXU / prop_name)
    start, cpu = time.perf_counter(), time.process_time()
    result = verify(net, prop, timeout=cap)
    search, search_cpu = time.perf_counter() - start, time.process_time() - cpu
    row = {"network": net_name, "property": prop_name, "search_seconds": f"{search:.4f}",
           "check_seconds": "", "search_cpu": f"{search_cpu:.4f}", "check_cpu": "",
           "ratio": "", "verdict": result.status}
    if result.status == "holds":
        start, cpu = time.perf_counter(), time.process_time()
        try:
            check_certificate(net, prop, result.certificate)
            verdict = "valid"
        except PolyreluError as err:
            verdict = f"rejected ({err})"
        check, check_cpu = time.perf_counter() - start, time.process_time() - cpu
        row.update(check_seconds=f"{check:.4f}", check_cpu=f"{check_cpu:.4f}",
                   ratio=f"{check_cpu / search_cpu:.3f}", verdict=verdict)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cap", type=float, default=30.0, help="seconds per search at most")
    parser.add_argument("--every", type=int, default=1, help="run every K-th instance")
    parser.add_argument("--out", default="bench_checker.csv")
    parser.add_argument("--only", nargs="*", help="network:property pairs (short names, e.g. "
                        "4_6:prop_1) instead of every holds instance")
    args = parser.parse_args()
    rows = []
    with open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["network", "property", "search_seconds",
                                         "check_seconds", "search_cpu", "check_cpu", "ratio",
                                         "verdict"])
        writer.writeheader()
        instances = holds_instances(args.every)
        if args.only:
            wanted = {(f"ACASXU_run2a_{n}_batch_2000.onnx", f"{p}.vnnlib")
                      for n, p in (item.split(":") for item in args.only)}
            instances = [item for item in instances if item in wanted]
        for net_name, prop_name in instances:
            with blas_threads(1):
                rows.append(measure(net_name, prop_name, args.cap))
            writer.writerow(rows[-1])
            handle.flush()
    ratios = [float(row["ratio"]) for row in rows if row["ratio"]]
    if ratios:
        above = [r for r in rows if r["ratio"] and float(r["ratio"]) > 0.2]
        print(f"checked {len(ratios)} of {len(rows)}: median ratio {statistics.median(ratios):.3f},"
              f" max {max(ratios):.3f}, above 0.2: {len(above)}")
        print(f"rejected: {sum(r['verdict'].startswith('rejected') for r in rows)}")


if __name__ == "__main__":
    main()
