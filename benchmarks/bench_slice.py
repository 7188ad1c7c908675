"""Benchmark the planar slice against the general engine on the same 2-D problem.

Network: 2-64-64-10 with PyTorch's default initialisation (weights and biases
uniform in +-1/sqrt(fan_in)), seed 0, over [-1, 1]^2. Three methods, each in its
own process so that its peak memory (max RSS) is its own:

- slice: ``polyrelu.planar.slices.slice_regions`` (planar half-plane clipping, no LP),
- walk: ``polyrelu.enumerate_regions`` (graph walk, LPs and qhull),
- splitting: ``polyrelu.regions.splitting.count_regions`` (layer-wise LP splitting, count only).

Prints regions, seconds, regions/s and peak memory per method, checks that all
found the same number of regions (and the slice and walk the same patterns), and
prints the speed ratios.

Usage:  python benchmarks/bench_slice.py [--seed 0] [--methods slice walk splitting]
"""

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time

import numpy as np

SIZES = (2, 64, 64, 10)


def network(seed):
    import polyrelu

    rng = np.random.default_rng(seed)
    weights, biases = [], []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        bound = 1 / np.sqrt(fan_in)
        weights.append(rng.uniform(-bound, bound, size=(fan_out, fan_in)))
        biases.append(rng.uniform(-bound, bound, size=fan_out))
    return polyrelu.Network(weights, biases)


def run(method, seed):
    """Time one method in this process (called in a child); returns its figures."""
    import polyrelu
    from polyrelu.regions.region import pattern_key

    net = network(seed)
    box = ([-1.0, -1.0], [1.0, 1.0])
    start = time.perf_counter()
    if method == "slice":
        from polyrelu.planar.slices import slice_regions

        result = slice_regions(net, [0.0, 0.0], np.eye(2), box)
        keys = sorted(pattern_key(piece.pattern) for piece in result)
    elif method == "walk":
        result = polyrelu.enumerate_regions(net, polyrelu.Domain.box(*box))
        keys = sorted(region.key for region in result)
    else:
        from polyrelu.regions.splitting import count_regions

        count, _ = count_regions(net, polyrelu.Domain.box(*box))
        keys = None  # counted, not listed
    seconds = time.perf_counter() - start
    regions = count if keys is None else len(keys)
    return {"method": method, "network": repr(net), "regions": regions,
            "seconds": round(seconds, 3), "regions_per_second": round(regions / seconds, 1),
            "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "patterns_sha1": keys and hashlib.sha1(b"".join(keys)).hexdigest()[:12]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", default=["slice", "walk", "splitting"],
                        choices=["slice", "walk", "splitting"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run(args.child, args.seed)))
        return
    results = {}
    for method in args.methods:
        out = subprocess.run([sys.executable, __file__, "--child", method, "--seed",
                              str(args.seed)], capture_output=True, text=True, check=True)
        results[method] = json.loads(out.stdout)
        print(" ".join(f"{k}={v}" for k, v in results[method].items()))
    counts = {r["regions"] for r in results.values()}
    print(f"same_region_count: {len(counts) == 1}")
    if "slice" in results and "walk" in results:
        same = results["slice"]["patterns_sha1"] == results["walk"]["patterns_sha1"]
        print(f"same_patterns_slice_walk: {same}")
    for other in ("walk", "splitting"):
        if "slice" in results and other in results:
            ratio = results["slice"]["regions_per_second"] / results[other]["regions_per_second"]
            print(f"slice/{other} regions/s ratio: {ratio:.1f}x")


if __name__ == "__main__":
    main()
