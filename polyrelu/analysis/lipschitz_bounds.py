"""Approximate Lipschitz bounds, to be validated against the exact value.

Upper bounds: the product of layer norms, the pattern-aware product (layer norms
taken only over the activation patterns that occur on the domain) and LipSDP
(Fazlyab et al. 2019, the "neuron" variant with diagonal multipliers, which is a
sound l2 bound; Linear + ReLU networks only). Lower bound: sampling of Jacobian norms
at random domain points, refined by a local search.

General networks (:mod:`polyrelu.network.layers`). A hidden layer maps ``h`` to
``o = S(u(W h + b))``: ``u`` applies ReLU or the identity entry by entry, and output
``j`` of ``S`` is one entry of ``u`` or the maximum over a window ``K_j`` of entries.
Both are 1-Lipschitz entry by entry: ``|u_i(z) - u_i(z')| <= |z_i - z'_i|`` and
``|max_K a - max_K a'| <= max_{i in K} |a_i - a'_i|``. So with ``dz = W dh`` and
``mult_i`` the number of outputs that read entry ``i`` (kept once, or in how many
windows):

- l_inf: ``|do_j| <= max_{i in K_j} |dz_i| <= ||dz||_inf``, so the layer is
  ``||W'||_inf``-Lipschitz, ``W'`` the rows of ``W`` some output reads;
- l1: ``sum_j |do_j| <= sum_j sum_{i in K_j} |dz_i| = sum_i mult_i |dz_i|``: the bound
  ``||diag(mult) W||_1``;
- l2: ``sum_j |do_j|^2 <= sum_j max_{i in K_j} |dz_i|^2 <= sum_i mult_i |dz_i|^2``: the
  bound ``||diag(sqrt(mult)) W||_2``. A window is not 1-Lipschitz in l2 by itself when
  windows overlap (a shared entry moves several outputs), hence the ``sqrt(mult)``;
  disjoint windows (pooling with stride = kernel) and plain ReLU layers have
  ``mult <= 1``, the usual ``||W||``.

Hence the product of these layer bounds (times ``||C W_L||``) is a sound upper bound:
:func:`norm_product`, equal to the classic one on ReLU networks. On a region the
Jacobian is ``C W_L S_{L-1} W_{L-1} ... S_0 W_0`` with ``S_l`` the 0/1 selection of
layer ``l``'s outputs from its pre-activations (:meth:`Network.layer_sources`), so
the pattern-aware product takes ``max ||S_l W_l||`` over the patterns that occur.
"""

from dataclasses import dataclass

import numpy as np

from ..errors import PolyreluError
from .atoms import select_rows
from .lipschitz import LipschitzResult, operator_norms

__all__ = ["Bound", "norm_product", "read_multiplicity", "pattern_aware_product",
           "sampled_lower_bound", "lipsdp", "compare_bounds"]


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
    """``||C W_L|| prod_l ||M_l W_l||``: the classic upper bound, ``M_l`` the identity on
    ReLU layers and the read multiplicities of a general layer (see the module notes)."""
    layers = network.layers[:-1]
    norms = [_matrix_norm(_read_weight(layer, norm), norm) for layer in layers]
    return float(np.prod(norms + [_matrix_norm(C @ network.weights[-1], norm)]))


def read_multiplicity(layer):
    """How many outputs of ``layer`` read each of its pre-activations, array (n_z,)."""
    reads = np.bincount(layer.keep, minlength=layer.n_z)
    windows = layer.windows[layer.windows >= 0]
    return reads + np.bincount(windows, minlength=layer.n_z)


def _read_weight(layer, norm):
    """A layer's weight with row ``i`` scaled by ``mult_i ** (1 / norm)`` (unread rows 0)."""
    mult = read_multiplicity(layer).astype(np.float64)
    scale = (mult > 0).astype(np.float64) if norm == np.inf else mult ** (1.0 / norm)
    return layer.weight * scale[:, None]


def pattern_aware_product(complex_, norm, C):
    """Product over layers of ``max ||S_l W_l||`` over the patterns that occur (upper bound).

    Each region's Jacobian is ``C W_L S_{L-1} W_{L-1} ... S_0 W_0`` (``S_l``: the selection
    of layer ``l``'s outputs, a ReLU mask ``D_l`` for a ReLU network), so its norm is at
    most the product of its own layer norms, hence at most this product.
    """
    network = complex_.network
    worst = np.zeros(len(network.weights))
    seen = set()
    for region in complex_:
        for layer, source in enumerate(network.layer_sources(region.pattern)):
            key = (layer, source.tobytes())
            if key not in seen:
                seen.add(key)
                selected = select_rows(network.weights[layer], source)
                worst[layer] = max(worst[layer], _matrix_norm(selected, norm))
    worst[-1] = _matrix_norm(C @ network.weights[-1], norm) if len(complex_) else 0.0
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
    network.require_relu_mlp("LipSDP (slope-restricted elementwise activations)")
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
