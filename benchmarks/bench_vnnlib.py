"""Benchmark the VNN-LIB reader on generated files of a given size (time, peak memory).

Two layouts (``--shape``), each grown to the size asked for:

- ``inputs``: d inputs X_i, each with a lower and an upper bound in its own ``assert``
  (the layout of VNN-COMP's image benchmarks, at any size), and 5 outputs with an
  ``or`` of 4 unsafe conjunctions;
- ``short``: one bounded input and many short output assertions ``(assert (<= Y_0 c))``
  (the most comparisons per byte: this is where a reader that copies the conjunction
  at every assertion is quadratic).
Each reading runs in its own process, so the peak memory (max RSS) is its own; the
figure printed is the peak minus the RSS after the imports.

With ``--reader PATH`` the module file PATH is imported as the reader instead of
polyrelu's (e.g. an older vnnlib.py, for a before/after comparison; it must import
polyrelu's errors only), and ``--timeout S`` gives up on a reading after S seconds.

Usage:  python benchmarks/bench_vnnlib.py [--megabytes 1 2 100] [--shape inputs|short]
                                          [--reader PATH] [--timeout S]
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

PER_INPUT = ("(declare-const X_{i} Real)\n(assert (<= X_{i} 0.{i:09d}))\n"
             "(assert (>= X_{i} -0.{i:09d}))\n")
OUTPUTS = ("".join(f"(declare-const Y_{j} Real)\n" for j in range(5))
           + "(assert (or (and (<= Y_0 Y_1)) (and (<= Y_0 Y_2)) (and (<= Y_0 Y_3))"
             " (and (<= Y_0 Y_4) (>= Y_1 -1.5e-3))))\n")

CHILD = r"""
import importlib.util, json, resource, sys, time
path, reader = sys.argv[1], sys.argv[2]
if reader:
    spec = importlib.util.spec_from_file_location("polyrelu.verification._bench_reader", reader)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
else:
    from polyrelu.verification import vnnlib as module
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
prop = module.read_vnnlib(path)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mb": (peak - before) / 1024,
                  "inputs": prop.input_dim, "cases": len(prop.cases)}))
"""


SHORT_HEAD = ("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n"
              "(assert (>= X_0 -1))\n(assert (<= X_0 1))\n")


def write_file(path, megabytes, shape="inputs"):
    """Write a property of about ``megabytes`` MB to ``path``; return its size in bytes."""
    target = int(megabytes * 1e6)
    with open(path, "w") as handle:
        if shape == "short":
            handle.write(SHORT_HEAD)
            line = "(assert (<= Y_0 {:.6f}))\n"
            for i in range(max(1, target // len(line.format(0.5)))):
                handle.write(line.format(1 + i * 1e-7))
        else:
            per_input = len(PER_INPUT.format(i=500_000))
            for i in range(max(1, target // per_input)):
                handle.write(PER_INPUT.format(i=i))
            handle.write(OUTPUTS)
    return Path(path).stat().st_size


def read_in_child(path, reader, timeout):
    """The child's figures (dict), or None if it ran out of time."""
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, str(path), reader or ""],
                              capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None
    return json.loads(done.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, nargs="+", default=[1, 2, 100])
    parser.add_argument("--shape", choices=["inputs", "short"], default="inputs")
    parser.add_argument("--reader", default=None)
    parser.add_argument("--timeout", type=float, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for megabytes in args.megabytes:
            path = Path(folder) / f"prop_{megabytes}.vnnlib"
            size = write_file(path, megabytes, args.shape)
            result = read_in_child(path, args.reader, args.timeout)
            if result is None:
                print(f"{size / 1e6:8.1f} MB: no answer within {args.timeout} s")
                continue
            print(f"{size / 1e6:8.1f} MB: {result['seconds']:8.2f} s, peak memory "
                  f"{result['peak_mb']:8.1f} MB ({args.shape}: {result['inputs']} inputs, "
                  f"{result['cases']} case)")
            path.unlink()


if __name__ == "__main__":
    main()
