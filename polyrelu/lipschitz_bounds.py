"""Approximate Lipschitz bounds, to be validated against the exact value.

Upper bounds: the product of layer norms, the pattern-aware product (layer norms
taken only over the activation patterns that occur on the domain) and LipSDP
(Fazlyab et al. 2019, the "neuron" variant with diagonal multipliers, which is a
sound l2 bound). Lower bound: sampling of Jacobian norms at random domain points,
refined by a local search.
"""

from dataclasses import dataclass

import numpy as np

from .atoms import _masks
from .errors import PolyreluError
from .lipschitz import LipschitzResult, operator_norms

__all__ = ["Bound", "norm_product", "pattern_aware_product", "sampled_lower_bound", "lipsdp",
           "compare_bounds"]


@dataclass(frozen=True)
class Bound:
    """One approximate Lipschitz value: ``kind`` is "upper" or "lower"."""

    method: str
    value: float
    kind: str
    seconds: float = 0.0


def _matrix_norm(M, norm):
    return float(operator_norms(M[None], norm)[0])


def norm_product(network, norm, C):
    """``||C W_L||  ||W_{L-1}|| ... ||W_0||``: the classic upper bound."""
    weights = list(network.weights[:-1]) + [C @ network.weights[-1]]
    return float(np.prod([_matrix_norm(w, norm) for w in weights]))


def pattern_aware_product(complex_, norm, C):
    """Product over layers of ``max ||D_l W_l||`` over the patterns that occur (upper bound).

    Each region's Jacobian is ``C W_L D_{L-1} W_{L-1} ... D_0 W_0``, so its norm is at most
    the product of its own layer norms, hence at most this product.
    """
    network = complex_.network
    layers = list(network.weights[:-1]) + [C @ network.weights[-1]]
    worst = np.zeros(len(layers))
    seen = set()
    for region in complex_:
        for layer, (w, mask) in enumerate(zip(layers, _masks(network, region.pattern))):
            key = (layer, mask.tobytes())
            if key not in seen:
                seen.add(key)
                masked = w if layer == len(layers) - 1 else mask[:, None] * w
                worst[layer] = max(worst[layer], _matrix_norm(masked, norm))
    return float(np.prod(worst))


def sampled_lower_bound(network, domain, norm, C, *, samples=2000, steps=200, rng=0):
    """Largest Jacobian norm found at random points, then improved by local search.

    Every value is the norm of the Jacobian at an actual domain point (on its
    region), hence a valid lower bound. Returns ``(value, point)``.
    """
    rng = np.random.default_rng(rng)
    points = domain.sample(samples, rng)
    values = _jacobian_norms(network, points, norm, C)
    best = int(np.argmax(values))
    point, value = points[best], values[best]
    scale = 0.25 * (domain.upper - domain.lower)
    for _ in range(steps):
        trial = point + rng.normal(size=(16, point.size)) * scale
        trial = trial[domain.contains(trial)]
        if len(trial):
            trial_values = _jacobian_norms(network, trial, norm, C)
            if trial_values.max() > value:
                point, value = trial[int(np.argmax(trial_values))], trial_values.max()
                continue
        scale *= 0.9
    return float(value), point


def _jacobian_norms(network, points, norm, C):
    patterns = network.activation_pattern(points)
    J = np.array([C @ network.affine_maps(p).W_eff for p in patterns])
    return operator_norms(J, norm)


def lipsdp(network, C, *, solver=None):
    """LipSDP-neuron l2 upper bound (Fazlyab et al. 2019), solved with cvxpy.

    Minimises ``rho`` subject to the LMI with diagonal multipliers ``T >= 0`` for
    slope-restricted activations in [0, 1]; returns ``sqrt(rho)``, a global upper
    bound on the l2 Lipschitz constant of ``C f``. The open solvers SCS or Clarabel
    (shipped with cvxpy) are used.
    """
    import cvxpy as cp

    hidden = network.hidden_sizes
    if not hidden:
        return float(np.linalg.norm(C @ network.weights[-1], 2))
    d, n = network.input_dim, sum(hidden)
    A = np.zeros((n, d + n))
    row, col = 0, 0
    for w in network.weights[:-1]:
        A[row:row + w.shape[0], col:col + w.shape[1]] = w
        row, col = row + w.shape[0], col + w.shape[1]
    B = np.hstack([np.zeros((n, d)), np.eye(n)])
    last = C @ network.weights[-1]
    rho = cp.Variable(nonneg=True)
    t = cp.Variable(n, nonneg=True)
    T = cp.diag(t)
    tail = np.zeros((d + n, d + n))
    tail[d + n - hidden[-1]:, d + n - hidden[-1]:] = last.T @ last
    head = np.zeros((d + n, d + n))
    head[:d, :d] = np.eye(d)
    lmi = A.T @ T @ B + B.T @ T @ A - 2 * B.T @ T @ B - rho * head + tail
    problem = cp.Problem(cp.Minimize(rho), [(lmi + lmi.T) / 2 << 0])
    problem.solve(solver=solver or _sdp_solver(cp))
    if problem.status not in ("optimal", "optimal_inaccurate") or rho.value is None:
        raise PolyreluError(f"LipSDP did not solve: status {problem.status}")
    return float(np.sqrt(rho.value))


def _sdp_solver(cp):
    installed = cp.installed_solvers()
    for name in ("CLARABEL", "SCS"):
        if name in installed:
            return name
    raise PolyreluError("no SDP solver (Clarabel or SCS) is installed for cvxpy")


def compare_bounds(result: LipschitzResult, domain, *, sdp=True, samples=2000):
    """Every baseline next to the exact value: list of :class:`Bound`, exact first."""
    import time

    network, C, norm = result.complex.network, result.functional, result.norm
    rows = [Bound("exact (polyrelu)", result.value, "exact")]
    for method, compute in (
        ("norm product", lambda: norm_product(network, norm, C)),
        ("pattern-aware product", lambda: pattern_aware_product(result.complex, norm, C)),
        ("sampling + local search", lambda: sampled_lower_bound(network, domain, norm, C,
                                                                 samples=samples)[0]),
    ):
        start = time.perf_counter()
        value = compute()
        kind = "lower" if method.startswith("sampling") else "upper"
        rows.append(Bound(method, value, kind, time.perf_counter() - start))
    if sdp and norm == 2:
        start = time.perf_counter()
        rows.append(Bound("LipSDP-neuron", lipsdp(network, C), "upper",
                          time.perf_counter() - start))
    return rows
