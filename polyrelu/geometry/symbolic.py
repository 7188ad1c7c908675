"""Sound linear bounds on a network over a box (back-substitution, CROWN style).

Every hidden pre-activation and any linear functional ``C f(x)`` of the outputs is
bounded over a box by substituting the layers backwards down to the input:
a ReLU unit with bounds ``l < 0 < u`` is replaced by the linear relaxation
``alpha z <= relu(z) <= u (z - l) / (u - l)`` (``alpha`` = 1 when ``u >= -l``, else
0), stable ReLU units by ``z`` or ``0``, linear units by ``z``. A max window is bounded
below by its entry of largest lower bound (itself relaxed) and above by that entry when
the window's winner is fixed by the bounds, else by the largest upper bound of its
entries (a constant). The bound of each layer uses the bounds of the layers before it.
The result is never tighter than the truth and, on boxes where few neurons are unstable,
much tighter than interval arithmetic.

Rounding. The float64 computation carries its own error bound: the same
back-substitution in absolute values gives a magnitude ``M`` of every result and
the result is widened by ``(depth + 2) (width + 2) eps M`` (a first-order
bound on the rounding of each dot product, ``gamma_n <= n eps``, summed over the
layers), times a safety factor 4. Widened intermediate bounds keep every
relaxation valid, so the bounds returned are sound for the real-number network
with the given float64 weights.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["LinearBounds", "linear_bounds", "linear_bounds_batch", "optimized_bounds_batch"]

_EPS = np.finfo(np.float64).eps


@dataclass(frozen=True)
class LinearBounds:
    """Bounds of a network over a box.

    Attributes
    ----------
    pre_lower, pre_upper : list of ndarray
        Bounds of each hidden layer's pre-activations.
    lower : ndarray, shape (k,)
        Sound lower bounds of ``C f(x)`` over the box, row by row.
    coefficients : ndarray, shape (k, d)
        Row i of ``C f(x)`` is at least ``coefficients[i] @ x + offsets[i]`` on the
        box (rounding error already subtracted); ``lower`` is its minimum over the box.
    offsets : ndarray, shape (k,)
    """

    pre_lower: list
    pre_upper: list
    lower: np.ndarray
    coefficients: np.ndarray
    offsets: np.ndarray

    def unstable_count(self):
        """Number of hidden neurons whose sign the bounds do not fix."""
        return int(sum(np.sum((lo < 0) & (hi > 0))
                       for lo, hi in zip(self.pre_lower, self.pre_upper)))


def linear_bounds(network, lower, upper, C=None, slopes=None):
    """Sound bounds of every hidden pre-activation and of ``C f(x)`` over a box.

    Parameters
    ----------
    network : Network
    lower, upper : array_like, shape (d,)
    C : array_like, shape (k, m), optional
        Linear functionals of the outputs to bound from below (default: none).
    slopes : list of array_like, optional
        The lower relaxation slopes of the back-substitution of ``C``: ``slopes[j]`` of
        shape (k, n_j) for hidden layer j (a ReLU layer), each in [0, 1]; used at the
        unstable units only (see :func:`linear_bounds_batch`).

    Returns
    -------
    LinearBounds

    Examples
    --------
    ``|x| = relu(x) + relu(-x)`` on [-1, 2]: the lower bound of ``|x|`` is sound
    (<= 0) and that of ``-|x|`` is -2 (the true minimum of ``-|x|``).

    >>> from polyrelu import Network
    >>> net = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> b = linear_bounds(net, [-1.0], [2.0], C=[[1.0], [-1.0]])
    >>> bool(b.lower[0] <= 0.0), round(float(b.lower[1]), 9)
    (True, -2.0)
    """
    lower = np.asarray(lower, dtype=np.float64)[None]
    upper = np.asarray(upper, dtype=np.float64)[None]
    if slopes is not None:
        slopes = [np.asarray(a, dtype=np.float64)[None] for a in slopes]
    return linear_bounds_batch(network, lower, upper, C, slopes=slopes)[0]


def linear_bounds_batch(network, lower, upper, C=None, first=None, slopes=None):
    """:func:`linear_bounds` for a batch of boxes ``lower[i] <= x <= upper[i]`` at once.

    ``lower`` and ``upper`` have shape (B, d); returns a list of B :class:`LinearBounds`.
    ``first``, if given, is ``(weight, bias)`` of shapes (B, n, d) and (B, n): box i's own
    affine map in place of the first layer's (its units are the network's), e.g. a
    network's later layers on the pieces where its earlier layers are affine.

    ``slopes``, if given, are the lower relaxation slopes ``alpha`` (``alpha z <= relu(z)``,
    sound for any ``alpha`` in [0, 1]) of every unstable ReLU unit in the back-substitution
    of ``C``: one array of shape (B, k, n_j) per hidden layer j (one slope per row of ``C``
    and unit, NaN for the default slope; the intermediate bounds keep the default slopes).
    Every hidden layer must be a ReLU layer; a slope outside [0, 1] raises ValueError.
    """
    C = np.zeros((0, network.output_dim)) if C is None else np.asarray(C, dtype=np.float64)
    if slopes is not None:
        slopes = [np.asarray(a, dtype=np.float64) for a in slopes]
        if not all(layer.is_relu for layer in network.layers[:-1]):
            raise ValueError("relaxation slopes need a network of ReLU hidden layers")
        if any(np.any((a < 0.0) | (a > 1.0)) for a in slopes):
            raise ValueError("relaxation slopes must lie in [0, 1]")
    return _Relaxed.of(network, lower, upper, first).bounds(C, slopes)


def optimized_bounds_batch(network, lower, upper, C, *, steps=20, slopes=None, first=None):
    """:func:`linear_bounds_batch` with the lower relaxation slopes of the back-substitution
    of ``C`` optimised (alpha-CROWN style): ``steps`` projected gradient steps (Adam) on
    the slopes of the unstable units, one set per box and row, each row's best bound kept.

    ``slopes`` warm-starts the search (e.g. the parent box's slopes; the default slopes
    otherwise). Returns ``(bounds, slopes)``: the B :class:`LinearBounds` and the slopes
    (list over hidden layers of (B, k, n_j) arrays) that give them, to be passed back to
    :func:`linear_bounds_batch` (whose result they reproduce). Networks with non-ReLU
    hidden layers get the default bounds and ``slopes`` None.

    >>> from polyrelu import Network
    >>> net = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])  # |x|
    >>> plain = linear_bounds(net, [-1.0], [2.0], C=[[1.0]]).lower[0]
    >>> (best,), _ = optimized_bounds_batch(net, [[-1.0]], [[2.0]], [[1.0]])
    >>> bool(plain < best.lower[0] <= 0.0)
    True
    """
    relaxed = _Relaxed.of(network, lower, upper, first)
    C = np.asarray(C, dtype=np.float64)
    if not all(layer.is_relu for layer in network.layers[:-1]) or not len(C):
        return relaxed.bounds(C, None), None
    defaults = [np.broadcast_to(r[0][:, None, :], (len(relaxed.center), len(C), r[0].shape[1]))
                for r in relaxed.relaxations]
    alpha = [np.array(a if a is not None else b, dtype=np.float64)
             for a, b in zip(slopes or [None] * len(defaults), defaults)]
    best_alpha = [a.copy() for a in alpha]
    best = np.full((len(relaxed.center), len(C)), -np.inf)
    moments = [(np.zeros_like(a), np.zeros_like(a)) for a in alpha]
    for step in range(steps + 1):
        value, gradient = relaxed.value_and_gradient(C, alpha)
        better = value > best
        best = np.where(better, value, best)
        for kept, a in zip(best_alpha, alpha):
            kept[better] = a[better]
        if step == steps:
            break
        for a, g, (m, v) in zip(alpha, gradient, moments):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            a += _STEP * (m / (1 - 0.9 ** (step + 1))) / (
                np.sqrt(v / (1 - 0.999 ** (step + 1))) + 1e-12)
            np.clip(a, 0.0, 1.0, out=a)
    return relaxed.bounds(C, best_alpha), best_alpha


_STEP = 0.1  # Adam's step on the slopes (alpha-CROWN's default learning rate)


@dataclass
class _Relaxed:
    """A batch of boxes with the network's intermediate bounds and relaxations computed;
    the back-substitution of any output rows over it (:meth:`bounds`)."""

    weights: list
    biases: list
    center: np.ndarray
    radius: np.ndarray
    slack: float
    relaxations: list
    pre_lower: list
    pre_upper: list

    @classmethod
    def of(cls, network, lower, upper, first=None):
        lower = np.asarray(lower, dtype=np.float64)
        upper = np.asarray(upper, dtype=np.float64)
        center, radius = (upper + lower) / 2, (upper - lower) / 2
        weights, biases = list(network.weights), list(network.biases)
        width = _width(network)
        if first is not None:
            weights[0], biases[0] = (np.asarray(array, dtype=np.float64) for array in first)
            width = max(width, weights[0].shape[-1])
        slack = 4.0 * (len(weights) + 2) * (width + 2) * _EPS
        relaxations, pre_lower, pre_upper = [], [], []
        for k in range(len(weights) - 1):
            both = np.concatenate([weights[k], -weights[k]], axis=-2)
            low, _, _ = _back_substitute(both, np.concatenate([biases[k], -biases[k]], axis=-1),
                                         relaxations, weights, biases, center, radius, slack)
            n = biases[k].shape[-1]
            lo, hi = low[:, :n], -low[:, n:]
            pre_lower.append(lo)
            pre_upper.append(hi)
            layer = network.layers[k]
            relaxations.append(_relaxation(lo, hi) if layer.is_relu
                               else _layer_relaxation(layer, lo, hi))
        return cls(weights, biases, center, radius, slack, relaxations, pre_lower, pre_upper)

    def bounds(self, C, slopes):
        """The LinearBounds of rows ``C`` (with the lower ``slopes``, or the default ones)."""
        low, coefficients, offsets = self._substitute(C, slopes)
        return [LinearBounds([lo[i] for lo in self.pre_lower], [hi[i] for hi in self.pre_upper],
                             low[i], coefficients[i], offsets[i]) for i in range(len(low))]

    def value_and_gradient(self, C, slopes):
        """The sound lower bounds (B, k) of rows ``C`` with ``slopes`` and their gradient
        with respect to the slopes (one array per layer, as ``slopes``): the bound is
        piecewise linear in the slopes; the unit's slope multiplies its coefficient
        (when positive) times the unit's pre-activation in the relaxed network at the
        box corner that minimises the bound."""
        recorded = []
        low, coefficients, _ = self._substitute(C, slopes, recorded)
        point = self.center[:, None, :] - np.sign(coefficients) * self.radius[:, None, :]
        gradient = []
        for k, (relaxation, coef, alpha) in enumerate(zip(self.relaxations, recorded, slopes)):
            z = _forward(point, self.weights[k], self.biases[k])
            _, upper_slope, intercept = relaxation
            unstable = ((self.pre_lower[k] < 0) & (self.pre_upper[k] > 0))[:, None, :]
            gradient.append(np.where(unstable & (coef > 0), coef * z, 0.0))
            relaxed = np.where(coef >= 0, alpha * z,
                               upper_slope[:, None, :] * z + intercept[:, None, :])
            point = np.where(unstable, relaxed, upper_slope[:, None, :] * z)
        return low, gradient

    def _substitute(self, C, slopes, recorded=None):
        relaxations = self.relaxations
        if slopes is not None:
            relaxations = [(np.where(((lo < 0) & (hi > 0))[:, None, :] & ~np.isnan(a), a,
                                     r[0][:, None, :]),
                            r[1], r[2]) for r, a, lo, hi in
                           zip(relaxations, slopes, self.pre_lower, self.pre_upper)]
        return _back_substitute(C @ self.weights[-1], C @ self.biases[-1], relaxations,
                                self.weights, self.biases, self.center, self.radius,
                                self.slack, recorded)


def _forward(point, weight, bias):
    """``weight @ point + bias`` for points (B, k, n_in): a shared weight (n, n_in) or one
    per box (B, n, n_in), a shared bias (n,) or one per box (B, n)."""
    if weight.ndim == 2:
        z = point @ weight.T
    else:
        z = np.einsum("bkd,bnd->bkn", point, weight)
    return z + (bias if bias.ndim == 1 else bias[:, None, :])


def _width(network):
    """The longest dot product of the back-substitution: the widest layer input (of a ReLU
    network; a general network's relaxations also sum over layer outputs)."""
    if network.is_relu_mlp:
        return max(w.shape[1] for w in network.weights)
    return max(max(w.shape) for w in network.weights)


def _layer_relaxation(layer, lo, hi):
    """``(L, l, U, v)`` with ``L z + l <= h <= U z + v`` for a general layer's outputs
    ``h`` over pre-activation bounds ``[lo, hi]`` (batched: L and U of shape
    (B, n_out, n_z)). Kept units: their relaxation; windows: see the module docstring."""
    lower_slope, upper_slope, intercept = _relaxation(lo, hi)
    linear = layer.linear_mask
    lower_slope = np.where(linear, 1.0, lower_slope)
    upper_slope = np.where(linear, 1.0, upper_slope)
    intercept = np.where(linear, 0.0, intercept)
    u_lo = np.where(linear, lo, np.maximum(lo, 0.0))
    u_hi = np.where(linear, hi, np.maximum(hi, 0.0))
    batch, n_z = lo.shape
    L, U = np.zeros((2, batch, layer.n_out, n_z))
    l_, v = np.zeros((2, batch, layer.n_out))
    kept = np.arange(layer.keep.size)
    L[:, kept, layer.keep] = lower_slope[:, layer.keep]
    U[:, kept, layer.keep] = upper_slope[:, layer.keep]
    v[:, kept] = intercept[:, layer.keep]
    n, k = layer.windows.shape
    if n:
        valid, index = layer.windows >= 0, np.maximum(layer.windows, 0)
        w_lo = np.where(valid, u_lo[:, index], -np.inf)
        w_hi = np.where(valid, u_hi[:, index], -np.inf)
        best = np.argmax(w_lo, axis=2)  # (B, n): the entry of largest lower bound
        entry = index[np.arange(n), best]
        others = np.where(best[..., None] == np.arange(k), -np.inf, w_hi).max(axis=2)
        fixed = w_lo.max(axis=2) >= others
        rows, b = layer.keep.size + np.arange(n), np.arange(batch)[:, None]
        L[b, rows, entry] = lower_slope[b, entry]
        U[b, rows, entry] = np.where(fixed, upper_slope[b, entry], 0.0)
        v[:, rows] = np.where(fixed, intercept[b, entry], w_hi.max(axis=2))
    return L, l_, U, v


def _relaxation(lo, hi):
    """Per neuron: lower slope, upper slope and upper intercept of relu on [lo, hi]."""
    active, unstable = lo >= 0, (lo < 0) & (hi > 0)
    lower_slope = np.where(active | (unstable & (hi >= -lo)), 1.0, 0.0)
    upper_slope = np.where(active, 1.0, 0.0)
    intercept = np.zeros_like(lo)
    width = np.where(unstable, hi - lo, 1.0)
    upper_slope = np.where(unstable, hi / width, upper_slope)
    intercept = np.where(unstable, -hi * lo / width, intercept)
    return lower_slope, upper_slope, intercept


def _back_substitute(coef, const, relaxations, weights, biases, center, radius, slack,
                     recorded=None):
    """Lower bounds over each box of ``coef @ relu(z_K) + const`` (K = len(relaxations)),
    substituting layers K, ..., 1 down to the input. Returns (bounds, input coefficients,
    offsets) with a leading batch axis. A ReLU layer's lower slopes are (B, n) or, one per
    row, (B, k, n). ``recorded``, a list, receives the coefficients of each layer's outputs
    (layer 1 first)."""
    batch = len(center)
    if coef.ndim == 2:
        coef = np.broadcast_to(coef, (batch,) + coef.shape)
        const = np.broadcast_to(const, (batch,) + const.shape)
    magnitude, const_magnitude = np.abs(coef), np.abs(const)
    for k in range(len(relaxations) - 1, -1, -1):
        if len(relaxations[k]) == 4:
            coef, const, magnitude, const_magnitude = _through_layer(
                relaxations[k], coef, const, magnitude, const_magnitude)
        else:
            lower_slope, upper_slope, intercept = relaxations[k]
            if lower_slope.ndim == 2:
                lower_slope = lower_slope[:, None, :]
            if recorded is not None:
                recorded.insert(0, coef)
            negative = np.minimum(coef, 0.0)
            shift = np.einsum("bkn,bn->bk", negative, intercept)
            const = const + shift
            const_magnitude = const_magnitude - shift
            coef = coef * np.where(coef < 0, upper_slope[:, None, :], lower_slope)
            magnitude = magnitude * np.maximum(lower_slope, upper_slope[:, None, :])
        const = const + _times_bias(coef, biases[k])
        const_magnitude = const_magnitude + _times_bias(magnitude, np.abs(biases[k]))
        coef, magnitude = coef @ weights[k], magnitude @ np.abs(weights[k])
    bound = const + np.einsum("bkd,bd->bk", coef, center) \
        - np.einsum("bkd,bd->bk", np.abs(coef), radius)
    error = slack * (const_magnitude
                     + np.einsum("bkd,bd->bk", magnitude, np.abs(center) + radius))
    return bound - error, coef, const - error


def _times_bias(coef, bias):
    """``coef @ bias`` for one bias (n,) or one per box (B, n)."""
    return coef @ bias if bias.ndim == 1 else np.einsum("bkn,bn->bk", coef, bias)


def _through_layer(relaxation, coef, const, magnitude, const_magnitude):
    """A lower bound ``coef @ h + const`` rewritten over the layer's pre-activations by the
    relaxation ``(L, l, U, v)`` of :func:`_layer_relaxation`, with the magnitudes."""
    L, l_, U, v = relaxation
    positive, negative = np.maximum(coef, 0.0), np.minimum(coef, 0.0)
    const = const + np.einsum("bkn,bn->bk", positive, l_) + np.einsum("bkn,bn->bk", negative, v)
    const_magnitude = const_magnitude + np.einsum("bkn,bn->bk", magnitude,
                                                  np.maximum(np.abs(l_), np.abs(v)))
    coef = positive @ L + negative @ U
    magnitude = magnitude @ np.maximum(np.abs(L), np.abs(U))
    return coef, const, magnitude, const_magnitude
