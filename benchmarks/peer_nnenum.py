"""Peer runner: drive nnenum (github.com/stanleybak/nnenum, GPL-3.0, not vendored) for
polyrelu's benchmarks. Run it with the Python of nnenum's own venv; stdout gets one
JSON line; nnenum's own output is off unless --verbose (then it goes to stderr).

Set-up (Python 3.11; nnenum is not on PyPI): check out stanleybak/nnenum (tested at
b18238f1) into $NNENUM_SRC (default /work/peer-nnenum/src), then

    python3 -m venv /work/peer-nnenum/venv
    /work/peer-nnenum/venv/bin/pip install "numpy>=1.26.0" "scipy>=1.11.0" \
        "threadpoolctl>=3.1.0" "onnx>=1.15.0,<1.17.0" "onnxruntime==1.19.0" \
        "skl2onnx>=1.16.0" swiglpk termcolor

(nnenum's own pins; no changes to its code are needed).

  peer_nnenum.py enumerate NET.onnx PROP.vnnlib [--processes N] [--timeout S] [--verbose]
      Exact star-set enumeration of NET over the input box of PROP with no spec
      (so nothing is pruned or stopped early): every ReLU whose LP bounds
      straddle 0 is split; each finished star = one activation region meeting
      the box.  -> {"stars", "seconds", "peak_rss_mb", ...}
  peer_nnenum.py verify NET.onnx PROP.vnnlib [--timeout S] [--processes N] [--verbose]
      nnenum's VNN-COMP path (same as `python -m nnenum.nnenum`, "auto" settings).
      -> {"result": "holds"|"violated"|"timeout"|"error"|..., "seconds"}

"seconds" is wall time of nnenum's enumerate_network call(s) only (ONNX/VNN-LIB
loading is reported separately as "load_seconds"; "cpu_seconds" is the whole
process's CPU incl. workers, steadier on a shared machine). peak_rss_mb is the max
resident set of this process or of any worker child (not their sum).
"""
import argparse
import json
import os
import resource
import sys
import time

# nnenum asserts single-threaded BLAS; must be set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.join(os.environ.get("NNENUM_SRC", "/work/peer-nnenum/src"), "src"))

import numpy as np  # noqa: E402
from nnenum import nnenum as front  # noqa: E402  (nnenum's vnnlib front end)
from nnenum.enumerate import enumerate_network  # noqa: E402
from nnenum.settings import Settings  # noqa: E402


def load(net, prop):
    spec_list, dtype = front.make_spec(prop, net)
    try:
        network = front.load_onnx_network_optimized(net)
    except Exception:  # unsupported layers: fall back like nnenum's main()
        network = front.load_onnx_network(net)
    return network, spec_list, dtype


def peak_rss_mb():
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(self_kb, child_kb) / 1024, 1)


def cpu_seconds():
    'user+sys CPU of this process and its (joined) workers: less noisy than wall time'
    t = os.times()
    return round(t.user + t.system + t.children_user + t.children_system, 3)


def cmd_enumerate(a, network, spec_list, dtype):
    front.set_exact_settings()          # BRANCH_EXACT, no quick overapprox
    Settings.TIMING_STATS = False
    Settings.TIMEOUT = np.inf if a.timeout is None else a.timeout
    stars, secs, status = 0, 0.0, "none"
    for box, _spec in spec_list:       # ACAS props have one box
        t = time.perf_counter()
        res = enumerate_network(np.array(box, dtype=dtype), network, None)
        secs += time.perf_counter() - t
        stars += res.total_stars
        status = res.result_str        # "none" = enumeration completed
    return {"stars": stars, "seconds": round(secs, 3), "peak_rss_mb": peak_rss_mb(),
            "cpu_seconds": cpu_seconds(), "complete": status == "none", "status": status}


def cmd_verify(a, network, spec_list, dtype):
    front.set_control_settings()        # what nnenum's "auto" picks for < 700 inputs
    result, secs, left = "none", 0.0, a.timeout
    for box, spec in spec_list:
        if left is not None and left <= 0:
            result = "timeout"
            break
        Settings.TIMEOUT = np.inf if left is None else left
        t = time.perf_counter()
        res = enumerate_network(np.array(box, dtype=dtype), network, spec)
        dt = time.perf_counter() - t
        secs += dt
        left = None if left is None else left - dt
        result = res.result_str
        if result != "safe":
            break
    result = {"safe": "holds"}.get(result, "violated" if "unsafe" in result else result)
    return {"result": result, "seconds": round(secs, 3), "peak_rss_mb": peak_rss_mb(),
            "cpu_seconds": cpu_seconds()}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["enumerate", "verify"])
    p.add_argument("net")
    p.add_argument("prop")
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--timeout", type=float, default=None, help="seconds (default: none)")
    p.add_argument("--verbose", action="store_true", help="show nnenum's own output (stderr)")
    a = p.parse_args()

    saved = os.dup(1)
    os.dup2(2, 1)  # nnenum (and its forked workers) print to fd 1: send to stderr
    try:
        t = time.perf_counter()
        network, spec_list, dtype = load(a.net, a.prop)
        load_secs = time.perf_counter() - t
        Settings.NUM_PROCESSES = a.processes
        Settings.PRINT_OUTPUT = a.verbose
        fn = cmd_enumerate if a.mode == "enumerate" else cmd_verify
        out = fn(a, network, spec_list, dtype)
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
    out.update(processes=a.processes, load_seconds=round(load_secs, 3))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
