"""The walk's time per region on a general network against a ReLU network, both 2 inputs.

    python benchmarks/bench_walk_general.py [--repeats R] [--seed S]

The general network has every kind of kink on a plane: dense, ReLU, max pooling over
windows of three, LeakyReLU, Clip and a residual addition of the input (as
tests.networks.residual_pool_network, wider). The ReLU network (2-32-24-1) is sized to a
region count of the same scale (~500-2000 each). Prints, per network, its regions, the
best of ``R`` walks' CPU seconds per region (process time: the machine may be shared) and
LPs per region, then the ratio general / ReLU. Run it from the repository root with
``PYTHONPATH=.`` to time this checkout rather than an installed polyrelu.
"""

import argparse
import time

import numpy as np

from polyrelu import Domain, Network, enumerate_regions
from polyrelu.network.lowering import GraphBuilder

BOX = Domain.box([-1.0, -1.0], [1.0, 1.0])


def general_network(seed, width=36):
    """Dense 2 -> width, ReLU, max windows of three, LeakyReLU, then dense to 4, Clip,
    dense to 2, plus the input (residual), then dense to one output."""
    rng = np.random.default_rng(seed)
    builder = GraphBuilder((2,))
    x = builder.input
    t = builder.linear(x, rng.normal(size=(width, 2)), rng.normal(size=width) * 0.5)
    pooled = builder.max_windows(builder.relu(t), np.arange(width).reshape(-1, 3),
                                 (width // 3,))
    mixed = builder.stack([pooled, builder.leaky_relu(builder.take(t, np.arange(width // 2)),
                                                      0.1)])
    s = builder.linear(mixed, rng.normal(size=(4, mixed.size)) / np.sqrt(mixed.size),
                       rng.normal(size=4) * 0.3)
    clipped = builder.clip(s, -0.5, 0.5)
    y = builder.add(x, builder.linear(clipped, rng.normal(size=(2, 4))))
    return builder.network(builder.linear(y, rng.normal(size=(1, 2))))


def relu_network(seed, sizes=(2, 32, 24, 1)):
    """A random ReLU network, weights N(0, 1/fan_in), biases N(0, 0.3^2)."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=(o, i)) / np.sqrt(i) for i, o in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(size=o) * 0.3 for o in sizes[1:]]
    return Network(weights, biases)


def measure(networks, repeats):
    """Per network: (regions, best CPU seconds per region, LPs per region) over ``repeats``
    walks, the networks taking turns (so a change in the machine's load hits both)."""
    best = {name: float("inf") for name in networks}
    found = {}
    for _ in range(repeats):
        for name, network in networks.items():
            start = time.process_time()
            complex_ = enumerate_regions(network, BOX)
            best[name] = min(best[name], time.process_time() - start)
            found[name] = complex_
    return {name: (len(c), best[name] / len(c), c.stats["lps"] / len(c))
            for name, c in found.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    networks = {"relu": relu_network(args.seed), "general": general_network(args.seed)}
    results = measure(networks, args.repeats)
    for name, (regions, per_region, lps) in results.items():
        print(f"{name:8s} {networks[name]!r}: {regions} regions, {1e3 * per_region:.3f} ms "
              f"CPU/region, {lps:.2f} LPs/region")
    print(f"ratio general / relu: {results['general'][1] / results['relu'][1]:.2f}")


if __name__ == "__main__":
    main()
