"""Time the exact injectivity decision and the bias LPs against baselines.

- exact decision (pruned strictly-active-set search) vs the frame condition
  search (sufficient only) on the same layers;
- certified polytope bias (one LP per facet and member) vs the sampled
  most-correlated-bases estimate (not certified), with how often the estimate
  fails the exact decision.

Run: python benchmarks/bench_injectivity.py
"""

import resource
import time

import numpy as np

from polyrelu import Domain, PolyreluError
from polyrelu.analysis.bias import frame_facets, polytope_bias, sampled_bias
from polyrelu.analysis.injectivity import _Layer, _Piece, _Search, is_injective
from polyrelu.geometry.lp import LPSolver


def frames(n, m, count, rng):
    found = []
    while len(found) < count:
        W = rng.normal(size=(m, n))
        try:
            frame_facets(W)
        except PolyreluError:
            continue
        found.append(W)
    return found


def timed(function, items):
    start = time.perf_counter()
    results = [function(item) for item in items]
    return results, time.perf_counter() - start


def main():
    rng = np.random.default_rng(0)
    print(f"{'n':>2} {'m':>3} {'exact/s':>9} {'frame/s':>9} {'ratio':>6} "
          f"{'bias/s':>8} {'sampled/s':>10} {'ratio':>6} {'sampled fails':>14}")
    for n, m in ((2, 8), (3, 12), (4, 12), (5, 15)):
        box = Domain.box(-np.ones(n), np.ones(n))
        layers = [(W, rng.normal(scale=0.3, size=m) - 0.5) for W in frames(n, m, 10, rng)]
        piece = _Piece(box.A, box.b, np.eye(n), np.zeros(n))

        def exact(layer):
            return is_injective(*layer, box, frame_condition=False).injective

        def frame(layer):
            search = _Search(_Layer(*layer), LPSolver(), 1e-9 * box.diameter, box.diameter)
            return search.frame_failure(piece) is None

        _, t_exact = timed(exact, layers)
        _, t_frame = timed(frame, layers)
        Ws = [W for W, _ in layers]
        _, t_bias = timed(lambda W: polytope_bias(W, box), Ws)
        estimates, t_sampled = timed(lambda W: sampled_bias(W, box.sample(20 * n, rng)).bias, Ws)
        fails = sum(not is_injective(W, a, box, frame_condition=False).injective
                    for W, a in zip(Ws, estimates))
        k = len(layers)
        print(f"{n:>2} {m:>3} {k / t_exact:>9.1f} {k / t_frame:>9.1f} {t_frame / t_exact:>6.2f} "
              f"{k / t_bias:>8.1f} {k / t_sampled:>10.1f} {t_bias / t_sampled:>6.1f} "
              f"{fails:>8}/{k}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory: {peak:.0f} MB")


if __name__ == "__main__":
    main()
