"""Count the linear regions of a ReLU MLP over a box with the peer tool ``relucent``.

Usage (in relucent's own venv, see below):

    /work/peer-relucent/bin/python benchmarks/peer_relucent.py NET.npz --lo -1 --hi 1

NET.npz holds W0, b0, W1, b1, ... (W of shape out x in); every layer but the last
is followed by a ReLU.  The script runs relucent's full breadth-first enumeration
(``Complex.bfs`` with ``cube_mode="intersect"``: every region whose interior meets
the box, then relucent's own certification and dual graph) and prints

    regions: N      number of regions meeting [lo, hi]^d
    seconds: S      wall time of the bfs call only (search + certify + dual graph)
    edges: E        edges of relucent's dual graph on those regions

Caveat: relucent's dual graph joins two kept regions that differ in one neuron's
sign; the shared facet of such a pair may lie outside the box.

relucent only accepts boxes centred on the origin, [-r, r]^d, so the input is
shifted to the box centre c (b0 += W0 @ c), which leaves the region count unchanged.

Set-up: python3 -m venv /work/peer-relucent
        /work/peer-relucent/bin/pip install torch==2.13.0   # optional for relucent 1.0.0
        /work/peer-relucent/bin/pip install relucent
"""

import argparse
import os
import sys
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("net", help="npz file with W0,b0,W1,b1,...")
    ap.add_argument("--lo", type=float, default=-1.0)
    ap.add_argument("--hi", type=float, default=1.0)
    ap.add_argument("--workers", type=int, default=None,
                    help="relucent worker processes (default: all CPUs)")
    ap.add_argument("--no-verify", action="store_true", help="skip relucent's certification pass")
    args = ap.parse_args()

    z = np.load(args.net)
    n_layers = sum(1 for k in z.files if k.startswith("W"))
    layers = [(np.asarray(z[f"W{i}"], np.float64), np.asarray(z[f"b{i}"], np.float64).ravel())
              for i in range(n_layers)]
    d = layers[0][0].shape[1]
    centre, radius = (args.lo + args.hi) / 2.0, (args.hi - args.lo) / 2.0
    W0, b0 = layers[0]
    layers[0] = (W0, b0 + W0 @ np.full(d, centre))  # x = centre + u, u in [-radius, radius]^d

    # Keep stdout clean for the three result lines: anything relucent, Gurobi or
    # the worker processes print goes to stderr.
    sys.stdout.flush()
    saved_stdout = os.dup(1)
    os.dup2(2, 1)
    try:
        import relucent

        cx = relucent.Complex(relucent.convert(layers))
        start = np.zeros(d)  # the box centre; nudge it off any hyperplane
        rng = np.random.default_rng(0)
        while (cx.point2ss(start[None]) == 0).any():
            start = rng.uniform(-radius, radius, size=d) * 1e-3
        t0 = time.perf_counter()
        res = cx.bfs(start[None], cube_radius=radius, cube_mode="intersect",
                     nworkers=args.workers, verify=not args.no_verify, verbose=0)
        seconds = time.perf_counter() - t0
        edges = cx.G.number_of_edges()
        print(f"relucent {relucent.__version__}: complete={res.complete} verified={res.verified} "
              f"failed_neighbours={len(res.bad_shi_computations)}",
              file=sys.stderr)
    finally:
        sys.stdout.flush()
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)

    print(f"regions: {len(cx)}")
    print(f"seconds: {seconds:.3f}")
    print(f"edges: {edges}")


if __name__ == "__main__":
    main()
