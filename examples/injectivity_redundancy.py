"""The redundancy experiment of Haider, Ehler and Balazs, with exact answers.

For random Gaussian weights W (m x n, m/n = 1..10, n in {2, 3, 5}), the fraction
of ReLU layers that are injective on the unit ball

- with zero bias, decided *exactly* by polyrelu.is_injective on the box [-1, 1]^n
  (relu(W x) is positively homogeneous, so it is injective on the ball iff on
  any neighbourhood of 0, e.g. that box);
- with the maximal (certified) ball bias of polyrelu.ball_bias, which exists iff
  the normalised rows surround 0; that probability has a closed form (Wendel,
  1962), drawn as a line for comparison.

Run: python examples/injectivity_redundancy.py [--trials T]; writes
examples/out/injectivity_redundancy.png (about 30 s of CPU with the default trials).
"""

import argparse
import time
from math import comb
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import polyrelu  # noqa: E402
from polyrelu.analysis.bias import frame_facets  # noqa: E402

OUT = Path(__file__).parent / "out"
RATIOS = range(1, 11)


def surrounds_origin(W):
    try:
        frame_facets(W)
        return True
    except polyrelu.PolyreluError:
        return False


def wendel(m, n):
    """P(m symmetric random directions in R^n surround 0) = 1 - 2^(1-m) sum_{k<n} C(m-1, k)."""
    return 1.0 - sum(comb(m - 1, k) for k in range(n)) / 2 ** (m - 1)


def zero_bias_injective(W):
    n = W.shape[1]
    if not surrounds_origin(W):   # then some direction is inactive on every row: not injective
        return False
    box = polyrelu.Domain.box(-np.ones(n), np.ones(n))
    return polyrelu.is_injective(W, np.zeros(len(W)), box, frame_condition=False).injective


def experiment(n, trials, bias_trials, rng):
    zero, maximal = [], []
    for ratio in RATIOS:
        m = ratio * n
        zero.append(np.mean([zero_bias_injective(rng.normal(size=(m, n)))
                             for _ in range(trials)]))
        maximal.append(np.mean([surrounds_origin(rng.normal(size=(m, n)))
                                for _ in range(bias_trials)]))
    return np.array(zero), np.array(maximal)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5,
                        help="random layers per point for the exact zero-bias decision")
    parser.add_argument("--bias-trials", type=int, default=200,
                        help="random layers per point for the maximal-bias curve")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    OUT.mkdir(exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    start = time.perf_counter()
    for ax, n in zip(axes, (2, 3, 5)):
        zero, maximal = experiment(n, args.trials, args.bias_trials, rng)
        ratios = np.array(RATIOS)
        ax.plot(ratios, maximal, "o", color="tab:blue", label="maximal ball bias (certified)")
        ax.plot(ratios, [wendel(r * n, n) for r in ratios], "-", color="tab:blue", alpha=0.5,
                label="Wendel: P(rows surround 0)")
        ax.plot(ratios, zero, "s-", color="tab:red", label="zero bias (exact decision)")
        ax.set_title(f"n = {n}")
        ax.set_xlabel("redundancy m / n")
        ax.set_xticks(ratios)
        ax.grid(alpha=0.3)
        print(f"n={n}: zero bias {np.round(zero, 2).tolist()}")
        print(f"n={n}: maximal bias {np.round(maximal, 2).tolist()}")
    axes[0].set_ylabel("fraction injective on the unit ball")
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"Random Gaussian ReLU layers ({args.trials} exact decisions, "
                 f"{args.bias_trials} bias trials per point)")
    fig.tight_layout()
    path = OUT / "injectivity_redundancy.png"
    fig.savefig(path, dpi=110)
    print(f"wrote {path} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
