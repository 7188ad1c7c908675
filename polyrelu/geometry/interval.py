"""Sound bounds on hidden pre-activations over a box (interval arithmetic)."""

from dataclasses import dataclass

import numpy as np

__all__ = ["interval_bounds", "output_bounds", "NeuronStatus", "neuron_status"]


def interval_bounds(network, lower, upper):
    """Lower and upper bounds of every hidden pre-activation over a box.

    Parameters
    ----------
    network : Network
    lower, upper : array_like, shape (d,)

    Returns
    -------
    (ndarray, ndarray), each of shape (Z,)
        ``lo[j] <= z_j(x) <= hi[j]`` for every x in the box (interval arithmetic:
        exact for the first layer, an over-approximation after it).

    Examples
    --------
    >>> from polyrelu import Network
    >>> net = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.5], [0.0]])
    >>> lo, hi = interval_bounds(net, [-1.0], [2.0])
    >>> lo.tolist(), hi.tolist()
    ([-1.0, -1.5], [2.0, 1.5])
    """
    lows, highs, _ = _propagate(network, lower, upper)
    if not lows:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(lows), np.concatenate(highs)


def output_bounds(network, lower, upper):
    """Interval bounds ``(lo, hi)`` of the network's outputs over a box.

    >>> from polyrelu import Network
    >>> net = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> [b.tolist() for b in output_bounds(net, [-1.0], [2.0])]
    [[0.0], [3.0]]
    """
    return _propagate(network, lower, upper)[2]


def _propagate(network, lower, upper):
    """Per hidden layer the bounds of z, and the output bounds."""
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    lows, highs = [], []
    for layer in network.layers:
        center, radius = (hi + lo) / 2, (hi - lo) / 2
        with np.errstate(all="ignore"):
            mid, spread = layer.weight @ center + layer.bias, np.abs(layer.weight) @ radius
        if layer is network.layers[-1]:
            return lows, highs, (mid - spread, mid + spread)
        lows.append(mid - spread)
        highs.append(mid + spread)
        lo, hi = _layer_outputs(layer, mid - spread, mid + spread)
    raise AssertionError("a network ends with an affine layer")


def _layer_outputs(layer, z_lo, z_hi):
    """Bounds of a layer's outputs from bounds of its pre-activations (monotone units and
    maxima: the bounds of the ends)."""
    return layer.output(z_lo[None])[0], layer.output(z_hi[None])[0]


@dataclass(frozen=True)
class NeuronStatus:
    """What interval bounds over a domain's box say about every hidden neuron.

    Attributes
    ----------
    zero_tol : ndarray, shape (N,)
        Magnitude below which neuron j's pre-activation counts as zero:
        ``Options.zero_rel`` times its interval range (floored).
    unstable : ndarray of int
        Neurons whose sign is not fixed over the domain (they can make facets).
    always_active : ndarray of bool, shape (N,)
        Neurons positive on the whole domain.
    """

    zero_tol: np.ndarray
    unstable: np.ndarray
    always_active: np.ndarray


def neuron_status(network, domain, options):
    """The :class:`NeuronStatus` of every pattern slot of ``network`` over ``domain``.

    A ReLU slot is decided by its pre-activation's interval; a window position is
    unstable when the window's argmax is not fixed on the box and the position can win
    (its upper bound reaches the largest lower bound of the window), and always active
    when it is the window's fixed winner.
    """
    low, high = interval_bounds(network, domain.lower, domain.upper)
    span = np.maximum(high - low, 0.0)
    floor = np.finfo(float).tiny + span.max(initial=0.0)
    unit_tol = options.zero_rel * np.maximum(span, 1e-3 * floor)
    units, windowed = network.slot_units(), network.window_slots()
    zero_tol = np.where(units >= 0, unit_tol[np.maximum(units, 0)], 0.0) if units.size \
        else np.zeros(0)
    relu = ~windowed
    unstable = np.zeros(network.num_hidden, dtype=bool)
    active = np.zeros(network.num_hidden, dtype=bool)
    index = units[relu]
    unstable[relu] = (low[index] <= unit_tol[index]) & (high[index] >= -unit_tol[index])
    active[relu] = low[index] > unit_tol[index]
    if windowed.any():
        unstable[windowed], active[windowed] = _window_status(network, low, high, unit_tol)
    return NeuronStatus(zero_tol, np.flatnonzero(unstable), active)


def _window_status(network, low, high, unit_tol):
    """(unstable, always active) for the window slots, from the unit value bounds."""
    u_low, u_high = _unit_bounds(network, low, high)
    units = network.slot_units()[network.window_slots()]
    valid = units >= 0
    lo = np.where(valid, u_low[np.maximum(units, 0)], -np.inf)
    hi = np.where(valid, u_high[np.maximum(units, 0)], -np.inf)
    unstable, active = [], []
    start = 0
    for layer in network.layers[:-1]:
        n, k = layer.windows.shape
        block = slice(start, start + n * k)
        wlo, whi = lo[block].reshape(n, k), hi[block].reshape(n, k)
        best_low = wlo.max(axis=1, initial=-np.inf, keepdims=True)
        can_win = valid[block].reshape(n, k) & (whi >= best_low)
        fixed = can_win.sum(axis=1, keepdims=True) == 1
        unstable.append((can_win & ~fixed).ravel())
        active.append((can_win & fixed).ravel())
        start += n * k
    return np.concatenate(unstable), np.concatenate(active)


def _unit_bounds(network, low, high):
    """Bounds of every hidden ``u`` (a pre-activation after its unit)."""
    relu = np.concatenate([layer.units for layer in network.layers[:-1]]) == 1
    return np.where(relu, np.maximum(low, 0.0), low), np.where(relu, np.maximum(high, 0.0), high)
