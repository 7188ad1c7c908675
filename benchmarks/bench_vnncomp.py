"""Public VNN-COMP benchmark families: polyrelu against nnenum in the same run, answers
against the official results.

    python benchmarks/bench_vnncomp.py BENCHMARKS FAMILY [--sample K] [--cap S]
        [--official RESULTS] [--nnenum-python PY] [--out rows.csv]

BENCHMARKS is the ``benchmarks`` folder of a VNN-COMP benchmark repository (for example
github.com/ChristopherBrix/vnncomp2022_benchmarks, whose csvs name ``x.onnx`` where the
repository holds ``x.onnx.gz``: polyrelu reads the gzip; nnenum gets decompressed copies
in a scratch folder). FAMILY is a folder there with an ``instances.csv`` (``mnist_fc``,
``rl_benchmarks``, ``tllverifybench``, ...). ``--sample K`` runs K instances spread
evenly over the csv. Each instance runs with ``min(its limit, cap)`` seconds, polyrelu
then nnenum (see bench_verify.py), every polyrelu answer re-checked. With ``--official``
(a folder of the competition's ``TOOL/FAMILY/results.csv``, for example
github.com/ChristopherBrix/vnncomp2022_results) each instance's majority answer among
the tools that decided it is shown, and the summary counts the answers that contradict
it (instances the tools disputed, sat against unsat, are listed apart).
"""

import argparse
import csv
import gzip
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench_verify import DECIDED, nnenum_columns, record, run_polyrelu, summary

from polyrelu.errors import PolyreluError
from polyrelu.network.loaders import MAX_PARAMETERS
from polyrelu.verification.instances import read_instances

_ANSWER = {"sat": "violated", "unsat": "holds"}


def official_answers(root, family):
    """``{(network name, property name): Counter of answers}`` over every tool's results
    csv for ``family`` (names without ``.gz``; answers "holds" / "violated")."""
    answers = {}
    for path in Path(root).glob(f"*/{family}/results.csv"):
        for line in csv.reader(open(path)):
            if len(line) >= 5 and line[4] in _ANSWER:
                key = (_plain_name(line[1]), _plain_name(line[2]))
                answers.setdefault(key, Counter())[_ANSWER[line[4]]] += 1
    return answers


def _plain_name(path):
    name = Path(path).name
    return name[:-3] if name.endswith(".gz") else name


def majority(counts):
    """``(answer, disputed)``: the most common answer ("" if none) and whether both
    answers were given."""
    if not counts:
        return "", False
    return counts.most_common(1)[0][0], len(counts) > 1


def plain_copy(path, scratch):
    """``path`` itself, or its decompressed copy in ``scratch`` for a ``.gz`` file."""
    if not path.name.endswith(".gz"):
        return path
    target = scratch / path.name[:-3]
    if not target.exists():
        with gzip.open(path, "rb") as source, open(target, "wb") as handle:
            shutil.copyfileobj(source, handle)
    return target


def spread(items, count):
    """``count`` items spread evenly over ``items`` (all of them if fewer)."""
    if count is None or count >= len(items):
        return list(items)
    return [items[round(i * (len(items) - 1) / max(count - 1, 1))] for i in range(count)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("benchmarks", type=Path)
    parser.add_argument("family")
    parser.add_argument("--sample", type=int, default=None)
    parser.add_argument("--cap", type=float, default=30.0)
    parser.add_argument("--official", type=Path)
    parser.add_argument("--nnenum-python")
    parser.add_argument("--out", default="bench_vnncomp.csv")
    parser.add_argument("--max-parameters", type=int, default=MAX_PARAMETERS,
                        help="polyrelu's loader size limit (tllverifybench's largest "
                             "networks hold 40M entries)")
    args = parser.parse_args()
    instances = spread(read_instances(args.benchmarks / args.family / "instances.csv"),
                       args.sample)
    official = official_answers(args.official, args.family) if args.official else {}
    fields = ["network", "property", "limit", "official", "disputed", "polyrelu_result",
              "polyrelu_seconds"]
    if args.nnenum_python:
        fields += ["nnenum_result", "nnenum_seconds", "nnenum_wall_seconds"]
    rows, cache = [], {}
    with tempfile.TemporaryDirectory(prefix="bench_vnncomp_") as scratch, \
            open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fields)
        writer.writeheader()
        for net_path, prop_path, limit in instances:
            limit = min(limit, args.cap)
            answer, disputed = majority(official.get((_plain_name(net_path),
                                                      _plain_name(prop_path))))
            try:
                status, seconds = run_polyrelu(net_path, prop_path, limit, cache,
                                               args.max_parameters)
            except PolyreluError as err:  # a network polyrelu refuses (e.g. too large)
                status, seconds = "refused", 0.0
                print(f"polyrelu refused {net_path.name}: {err}", file=sys.stderr)
            row = {"network": _plain_name(net_path), "property": _plain_name(prop_path),
                   "limit": limit, "official": answer, "disputed": disputed,
                   "polyrelu_result": status, "polyrelu_seconds": f"{seconds:.3f}"}
            if args.nnenum_python:
                net, prop = (plain_copy(p, Path(scratch)) for p in (net_path, prop_path))
                row.update(nnenum_columns(args.nnenum_python, net, prop, limit))
            record(row, writer, handle, rows)
    report(rows, ["polyrelu"] + (["nnenum"] if args.nnenum_python else []))
    sys.exit(0)


def report(rows, tools):
    """Per tool: decided counts and totals; answers that contradict the majority
    (undisputed instances) and the disputed instances apart."""
    for tool in tools:
        print(summary(rows, tool))
        wrong = [r for r in rows if r["official"] and not r["disputed"]
                 and r[f"{tool}_result"] in DECIDED and r[f"{tool}_result"] != r["official"]]
        print(f"  {tool}: {len(wrong)} answers contradict the official majority"
              + "".join(f"\n    {r['network']} {r['property']}" for r in wrong))
    disputed = [r for r in rows if r["disputed"]]
    for r in disputed:
        print(f"  disputed officially: {r['network']} {r['property']} (majority "
              f"{r['official']}): " + ", ".join(f"{t} {r[f'{t}_result']}" for t in tools))


if __name__ == "__main__":
    main()
