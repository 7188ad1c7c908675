"""Approximate Lipschitz bounds, to be validated against the exact value.

Upper bounds: the product of layer norms, the pattern-aware product (layer norms
taken only over the activation patterns that occur on the domain) and LipSDP
(Fazlyab et al. 2019, the "neuron" variant with diagonal multipliers, which is a
sound l2 bound). Lower bound: sampling of Jacobian norms at random domain points,
refined by a local search.
"""

from dataclasses import dataclass

import numpy as np

from ..errors import PolyreluError
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
    note: str = ""


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
        for layer, (w, mask) in enumerate(zip(layers, network.layer_masks(region.pattern))):
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

    Minimises ``rho`` subject to the LMI with diagonal multipliers ``T_l >= 0`` for
    the slope-restricted activations (slopes in [0, 1]) of every hidden layer;
    returns ``sqrt(rho)``, a global upper bound on the l2 Lipschitz constant of
    ``C f``. The LMI is block tridiagonal in (input, hidden layer 1, ...): block
    (l, l+1) is ``W_l^T T_{l+1}``, block (l+1, l+1) is ``-2 T_{l+1}``, block (0, 0)
    is ``-rho I`` and ``(C W_L)^T (C W_L)`` is added to the last block. The open
    solvers Clarabel or SCS (shipped with cvxpy) are used.
    """
    import cvxpy as cp

    sizes = (network.input_dim,) + network.hidden_sizes
    last = C @ network.weights[-1]
    if len(sizes) == 1:
        return float(np.linalg.norm(last, 2))
    rho = cp.Variable(nonneg=True)
    multipliers = [cp.Variable(n, nonneg=True) for n in sizes[1:]]
    k = len(sizes)
    blocks = [[np.zeros((sizes[i], sizes[j])) for j in range(k)] for i in range(k)]
    blocks[0][0] = -rho * np.eye(sizes[0])
    for layer, (w, t) in enumerate(zip(network.weights[:-1], multipliers)):
        coupling = cp.multiply(w.T, cp.reshape(t, (1, t.size), order="C"))
        blocks[layer][layer + 1] = coupling
        blocks[layer + 1][layer] = coupling.T
        blocks[layer + 1][layer + 1] = -2 * cp.diag(t)
    blocks[-1][-1] = blocks[-1][-1] + last.T @ last
    lmi = cp.bmat(blocks)
    problem = cp.Problem(cp.Minimize(rho), [(lmi + lmi.T) / 2 << 0])
    statuses = []
    for name in [solver] if solver else _sdp_solvers(cp):
        try:
            problem.solve(solver=name)
        except cp.error.SolverError as err:
            statuses.append(f"{name}: {err}")
            continue
        if problem.status == "optimal" and rho.value is not None:
            return float(np.sqrt(rho.value))
        statuses.append(f"{name}: {problem.status}")
    raise PolyreluError(f"LipSDP did not solve ({'; '.join(statuses)})")


def _sdp_solvers(cp):
    names = [name for name in ("CLARABEL", "SCS") if name in cp.installed_solvers()]
    if not names:
        raise PolyreluError("no SDP solver (Clarabel or SCS) is installed for cvxpy")
    return names


def compare_bounds(result: LipschitzResult, domain, *, sdp=True, samples=2000, deadline=None):
    """Every baseline next to the exact value: list of :class:`Bound`, exact first.

    ``sdp`` is True (LipSDP with Clarabel, then SCS), False (no LipSDP) or the
    name of one cvxpy solver. Once ``deadline`` (a :class:`polyrelu.deadline.Deadline`)
    has expired, the remaining baselines are skipped (a row with a note).
    """
    import time

    network, C, norm = result.complex.network, result.functional, result.norm
    rows = [Bound("exact (polyrelu)", result.value, "exact")]
    for method, compute in (
        ("norm product", lambda: norm_product(network, norm, C)),
        ("pattern-aware product", lambda: pattern_aware_product(result.complex, norm, C)),
        ("sampling + local search", lambda: sampled_lower_bound(network, domain, norm, C,
                                                                 samples=samples)[0]),
    ):
        if deadline is not None and deadline.expired():
            rows.append(Bound(method, float("nan"), "upper", note="skipped (time limit)"))
            continue
        start = time.perf_counter()
        value = compute()
        kind = "lower" if method.startswith("sampling") else "upper"
        rows.append(Bound(method, value, kind, time.perf_counter() - start))
    if sdp and norm == 2 and deadline is not None and deadline.expired():
        rows.append(Bound("LipSDP-neuron", float("nan"), "upper", note="skipped (time limit)"))
    elif sdp and norm == 2:
        start = time.perf_counter()
        try:
            solver = sdp if isinstance(sdp, str) else None
            rows.append(Bound("LipSDP-neuron", lipsdp(network, C, solver=solver), "upper",
                              time.perf_counter() - start))
        except PolyreluError as err:
            rows.append(Bound("LipSDP-neuron", float("nan"), "upper",
                              time.perf_counter() - start, note=str(err)))
    return rows
