"""Per-region analysis (Heinecke & Hwang): atoms, per-layer bias parts, layer norms, stability.

On a region with activation masks ``D_l``, the network is ``W_eff x + b_eff`` with
``W_eff = W_L D_{L-1} W_{L-1} ... D_0 W_0`` and ``b_eff = b_L + sum_m beta_m``,
``beta_m = W_L D_{L-1} W_{L-1} ... W_{m+1} D_m b_m``. The rows of ``W_eff`` are the
region's *atoms* (one affine functional per output).

On a general network (:mod:`polyrelu.network.layers`) ``D_l`` is the 0/1 selection
``S_l`` of layer ``l``'s outputs from its pre-activations (:meth:`Network.layer_sources`:
kept linear units, active ReLU units, each window's argmax entry); every formula
above holds with it.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["RegionAtoms", "region_atoms", "select_rows", "layer_selections",
           "StabilityReport", "layer_stability"]


@dataclass(frozen=True)
class RegionAtoms:
    """The affine representation of one region, split by layer.

    Attributes
    ----------
    W_eff : ndarray, shape (m, d)
        Its rows are the atoms.
    b_eff : ndarray, shape (m,)
    bias_parts : ndarray, shape (L + 1, m)
        ``bias_parts[m]`` is beta_m, the contribution of layer m's bias; the
        last row is ``b_L``. They sum to ``b_eff``.
    singular_values : ndarray
        Of ``W_eff``, descending: the largest is the local l2 Lipschitz constant,
        the smallest the local stability of the representation.
    layer_norms : ndarray, shape (L + 1,)
        ``||D_l W_l||_2`` for every layer (``D_L = I`` for the output layer).
    """

    W_eff: np.ndarray
    b_eff: np.ndarray
    bias_parts: np.ndarray
    singular_values: np.ndarray
    layer_norms: np.ndarray


def region_atoms(network, pattern):
    """The :class:`RegionAtoms` of the region with activation ``pattern``.

    Examples
    --------
    >>> from polyrelu import Network
    >>> absolute = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.5, 0.0], [2.0]])
    >>> atoms = region_atoms(absolute, [True, False])
    >>> atoms.W_eff.tolist(), atoms.bias_parts.tolist(), atoms.layer_norms.tolist()
    ([[1.0]], [[0.5], [2.0]], [1.0, 1.4142135623730951])
    """
    selections = layer_selections(network, pattern)
    W = np.eye(network.input_dim)
    parts = []
    for w, b, select in zip(network.weights, network.biases, selections):
        W = select(w @ W)
        parts = [select(w @ p) for p in parts] + [select(b)]
    bias_parts = np.array(parts)
    layer_norms = np.array([np.linalg.norm(select(w), 2)
                            for w, select in zip(network.weights, selections)])
    return RegionAtoms(W, bias_parts.sum(axis=0), bias_parts,
                       np.linalg.svd(W, compute_uv=False), layer_norms)


def select_rows(M, source):
    """``S M`` for a layer's sources (:meth:`Network.layer_sources`): row ``source[j]`` of
    ``M`` (an array of rows, or a vector) as row ``j``, zero where ``source[j]`` is -1."""
    on = source >= 0
    return (M[np.maximum(source, 0)].T * on).T


def layer_selections(network, pattern):
    """Per weight matrix, the function applying ``S_l`` (``D_l``) to its rows
    (:func:`select_rows`); the identity for the output layer."""
    return [lambda M, source=source: select_rows(M, source)
            for source in network.layer_sources(pattern)] + [lambda M: M]


@dataclass(frozen=True)
class StabilityReport:
    """Depth-independent stability check: is ``||D_l W_l||_2 <= 1`` on every region?

    Attributes
    ----------
    stable : bool
    worst_value : float
        The largest ``||D_l W_l||_2`` over all regions and layers.
    worst_region : int
    worst_layer : int
    norms : ndarray, shape (regions, L + 1)
        Every region's layer norms (the certificate).
    """

    stable: bool
    worst_value: float
    worst_region: int
    worst_layer: int
    norms: np.ndarray


def layer_stability(complex_, threshold=1.0):
    """Check ``||D_l W_l||_2 <= threshold`` for every layer on every region of a complex
    (``S_l W_l`` on a general network).

    Each distinct (layer, selection) pair is computed once.
    """
    network = complex_.network
    cache = {}

    def norm(layer, source):
        key = (layer, None if source is None else source.tobytes())
        if key not in cache:
            weight = network.weights[layer]
            if source is not None:
                weight = select_rows(weight, source)
            cache[key] = np.linalg.norm(weight, 2)
        return cache[key]

    norms = np.array([[norm(layer, source) for layer, source in
                       enumerate(network.layer_sources(r.pattern) + [None])]
                      for r in complex_]).reshape(len(complex_), len(network.weights))
    region, layer = np.unravel_index(int(np.argmax(norms)), norms.shape)
    worst = float(norms[region, layer])
    return StabilityReport(worst <= threshold, worst, int(region), int(layer), norms)
