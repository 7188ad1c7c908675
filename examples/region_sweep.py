"""Region counts at initialisation over widths and depths, against Hanin & Rolnick's bound.

Hanin & Rolnick (2019, "Complexity of linear regions in deep networks") show that at
initialisation the expected number of regions in a cube K grows like
``vol(K) (C N)^d / d!`` in the total number N of neurons, whatever the depth (not
exponentially in it); C collects constants of the weight and bias distributions. This
sweep counts the regions exactly (the layer-wise splitting count) for 2-input nets with
He-initialised weights and N(0, 0.1^2) biases over [-1, 1]^2, three seeds each, and draws
the counts against ``vol(K) N^2 / 2`` (C = 1).

    python examples/region_sweep.py [PICTURE.png]      # about 20 s
"""

import sys
from itertools import pairwise

import numpy as np

from polyrelu import Domain, Network, count_regions

WIDTHS = (4, 8, 16, 32)
DEPTHS = (1, 2, 3)
SEEDS = 3
BOX = Domain.box([-1.0, -1.0], [1.0, 1.0])


def initialised(widths, rng):
    """A 2-input, 1-output ReLU net with He-normal weights and small normal biases."""
    sizes = (2, *widths, 1)
    weights = [rng.normal(size=(o, i)) * np.sqrt(2.0 / i) for i, o in pairwise(sizes)]
    return Network(weights, [rng.normal(size=o) * 0.1 for o in sizes[1:]])


def sweep():
    """Rows (depth, width, neurons, mean count over the seeds)."""
    rows = []
    for depth in DEPTHS:
        for width in WIDTHS:
            counts = [count_regions(initialised((width,) * depth, np.random.default_rng(s)),
                                    BOX)[0] for s in range(SEEDS)]
            rows.append((depth, width, depth * width, float(np.mean(counts))))
    return rows


def draw(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for depth in DEPTHS:
        mine = [(n, c) for d, _, n, c in rows if d == depth]
        axes.plot(*zip(*mine), marker="o", label=f"depth {depth}")
    neurons = np.array(sorted({n for _, _, n, _ in rows}))
    axes.plot(neurons, 4.0 * neurons**2 / 2, "k--", label="vol(K) N^2 / 2 (Hanin & Rolnick, C = 1)")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("neurons N")
    axes.set_ylabel("regions in [-1, 1]^2 (exact)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)


if __name__ == "__main__":
    rows = sweep()
    print(f"{'depth':>5} {'width':>5} {'neurons':>7} {'regions':>9}")
    for depth, width, neurons, count in rows:
        print(f"{depth:>5} {width:>5} {neurons:>7} {count:>9.1f}")
    if len(sys.argv) > 1:
        draw(rows, sys.argv[1])
