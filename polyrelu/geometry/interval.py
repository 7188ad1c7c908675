"""Sound bounds on hidden pre-activations over a box (interval arithmetic)."""

from dataclasses import dataclass

import numpy as np

__all__ = ["interval_bounds", "NeuronStatus", "neuron_status"]


def interval_bounds(network, lower, upper):
    """Lower and upper bounds of every hidden pre-activation over a box.

    Parameters
    ----------
    network : Network
    lower, upper : array_like, shape (d,)

    Returns
    -------
    (ndarray, ndarray), each of shape (N,)
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
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    all_lo, all_hi = [], []
    for w, b in zip(network.weights[:-1], network.biases[:-1]):
        center, radius = (hi + lo) / 2, (hi - lo) / 2
        mid, spread = w @ center + b, np.abs(w) @ radius
        all_lo.append(mid - spread)
        all_hi.append(mid + spread)
        lo, hi = np.maximum(mid - spread, 0.0), np.maximum(mid + spread, 0.0)
    if not all_lo:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(all_lo), np.concatenate(all_hi)


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
    """The :class:`NeuronStatus` of every hidden neuron of ``network`` over ``domain``."""
    low, high = interval_bounds(network, domain.lower, domain.upper)
    span = np.maximum(high - low, 0.0)
    floor = np.finfo(float).tiny + span.max(initial=0.0)
    zero_tol = options.zero_rel * np.maximum(span, 1e-3 * floor)
    unstable = np.flatnonzero((low <= zero_tol) & (high >= -zero_tol))
    return NeuronStatus(zero_tol, unstable, low > zero_tol)
