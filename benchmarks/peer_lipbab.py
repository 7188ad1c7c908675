"""LipBaB (branch and bound, interval Jacobians) against polyrelu's search, same run.

LipBaB (https://github.com/pyrobits/LipBaB) is a script: its network, norm, input box
and time limit are set in its text. This benchmark runs a copy of it per case with those
lines replaced (and its bounds printed at the end), with its own interpreter, next to
``polyrelu.lipschitz_search`` on the same network, box and norm. Its example networks
are the ones it ships (saved_networks/, scikit-learn MLPs); the box is its default,
[0, 0.1]^d, and its default approximation factor 1 (exact).

Setup (once, outside the repository; never vendored):
    git clone <LipBaB> /work/peer-lipbab/LipBaB
    python3 -m venv /work/peer-lipbab/venv
    /work/peer-lipbab/venv/bin/pip install numpy cvxopt

Usage:  python benchmarks/peer_lipbab.py [--peer /work/peer-lipbab] [--timeout S]
                                         [--norms 1 2 inf] [--nets NAME ...]
"""

import argparse
import re
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

NETS = ["iris_net_(4,5,5,3)", "SDnet_(10,15,10,3)", "SDnet_(10,20,15,10,3)",
        "SDnet_(10,30,30,30,3)"]
NORM_CODE = {"1": "1", "2": "2", "inf": "np.inf"}


def run_peer(peer, net, norm, timeout):
    """LipBaB on ``net``: (upper, lower, seconds, finished) from its printed bounds."""
    source = (peer / "LipBaB" / "LipBaB.py").read_text()
    stem = str(peer / "LipBaB" / "saved_networks" / net)
    source = source.replace("saved_networks/SDnet_(10,20,15,10,3)", stem)
    source = source.replace("pnorm=2 #", f"pnorm={NORM_CODE[norm]} #")
    source = source.replace("    #if (time.time() - start_time)>=300:",
                            f"    if (time.time() - start_time)>={timeout}:")
    source = source.replace("        #break", "        break")
    source = source.replace("    print(tp.Lub)\n", "")
    source += '\nprint("Lower bound:", glb)\n'
    with tempfile.TemporaryDirectory(prefix="peer_lipbab") as folder:
        script = Path(folder) / "lipbab_case.py"
        script.write_text(source)
        start = time.perf_counter()
        done = subprocess.run([str(peer / "venv" / "bin" / "python"), str(script)],
                              capture_output=True, text=True, timeout=timeout + 120)
        seconds = time.perf_counter() - start
    upper = re.search(r"Final Lipschitz estimation: (\S+)", done.stdout)
    lower = re.search(r"Lower bound: (\S+)", done.stdout)
    if upper is None or lower is None:
        raise RuntimeError(f"LipBaB failed on {net}: {done.stderr[-500:]}")
    return float(upper.group(1)), float(lower.group(1)), seconds, seconds < timeout


def run_polyrelu(peer, net, norm, timeout):
    """polyrelu's search on the same network and box: (value, seconds, stats)."""
    import polyrelu
    from polyrelu.deadline import Deadline

    stem = peer / "LipBaB" / "saved_networks" / net
    weights = np.load(f"{stem}_weights.npy", allow_pickle=True)  # the peer's own files
    biases = np.load(f"{stem}_biases.npy", allow_pickle=True)
    network = polyrelu.Network([np.asarray(w, float).T for w in weights],
                               [np.asarray(b, float) for b in biases])
    d = network.input_dim
    domain = polyrelu.Domain.box(np.zeros(d), np.full(d, 0.1))
    start = time.perf_counter()
    result = polyrelu.lipschitz_search(network, domain, norm, deadline=Deadline(timeout))
    return result.value, time.perf_counter() - start, result.stats


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", type=Path, default=Path("/work/peer-lipbab"))
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--norms", nargs="+", default=["1", "2", "inf"])
    parser.add_argument("--nets", nargs="+", default=NETS)
    args = parser.parse_args()
    print("net, norm: polyrelu value (s) | LipBaB [lower, upper] (s) | inside | speed-up")
    for net in args.nets:
        for norm in args.norms:
            value, seconds, stats = run_polyrelu(args.peer, net, norm, args.timeout)
            upper, lower, peer_seconds, finished = run_peer(args.peer, net, norm, args.timeout)
            inside = lower * (1 - 1e-9) <= value <= upper * (1 + 1e-9)
            label = "" if finished else " (time limit)"
            print(f"{net}, l{norm}: {value:.10g} ({seconds:.2f} s, {stats['regions']} regions) "
                  f"| [{lower:.10g}, {upper:.10g}] ({peer_seconds:.1f} s{label}) | {inside} "
                  f"| {peer_seconds / seconds:.1f}x", flush=True)


if __name__ == "__main__":
    main()
