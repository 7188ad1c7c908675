"""Independent oracles for the tests: written without polyrelu's own geometry code.

They use plain loops, scipy's ``linprog`` (not polyrelu's LP layer) and the
forward pass, so a bug in the engine cannot hide in them.
"""

import itertools

import numpy as np
from scipy.optimize import linprog


def layer_maps(weights, biases, pattern):
    """Pre-activation maps (list of (A, c) per neuron) and output map for a pattern, by loops."""
    d = weights[0].shape[1]
    A, c = np.eye(d), np.zeros(d)
    neurons, k = [], 0
    for layer, (w, b) in enumerate(zip(weights, biases)):
        A, c = w @ A, w @ c + b
        if layer == len(weights) - 1:
            return neurons, (A, c)
        for i in range(w.shape[0]):
            neurons.append((A[i].copy(), c[i]))
            if not pattern[k]:
                A[i], c[i] = 0.0, 0.0
            k += 1


def chebyshev(A, b):
    """Chebyshev centre and radius of {A x <= b} with scipy's linprog; (None, -1) if empty."""
    d = A.shape[1]
    norms = np.linalg.norm(A, axis=1)
    res = linprog(np.r_[np.zeros(d), -1.0], A_ub=np.hstack([A, norms[:, None]]), b_ub=b,
                  bounds=[(None, None)] * d + [(0, None)], method="highs")
    if res.status != 0:
        return None, -1.0
    return res.x[:d], res.x[d]


def pattern_polytope(weights, biases, pattern, box_lo, box_hi):
    """{x in box : neuron j >= 0 if active, <= 0 if inactive}, as (A, b), and the output map."""
    neurons, out = layer_maps(weights, biases, pattern)
    rows, rhs = [], []
    for active, (a, c) in zip(pattern, neurons):
        sign = 1.0 if active else -1.0
        rows.append(-sign * a)
        rhs.append(sign * c)
    d = len(box_lo)
    rows += list(np.eye(d)) + list(-np.eye(d))
    rhs += list(box_hi) + list(-np.asarray(box_lo))
    A, b = np.array(rows), np.array(rhs)
    keep = np.linalg.norm(A, axis=1) > 0
    if np.any(b[~keep] < 0):
        return None, None, out
    return A[keep], b[keep], out


def brute_force_regions(weights, biases, box_lo, box_hi, min_radius):
    """All full-dimensional activation regions, by one LP per pattern (2^N patterns).

    A pattern counts when its polytope has Chebyshev radius > ``min_radius`` and
    the forward pass at the centre has that very pattern (active: > 0), which
    settles neurons that are identically zero on the region.

    Returns a dict: packed pattern bytes -> (centre, radius, W_eff, b_eff).
    """
    n = sum(w.shape[0] for w in weights[:-1])
    found = {}
    for bits in itertools.product([False, True], repeat=n):
        pattern = np.array(bits)
        A, b, (W, c) = pattern_polytope(weights, biases, pattern, box_lo, box_hi)
        if A is None:
            continue
        center, radius = chebyshev(A, b)
        if radius <= min_radius:
            continue
        if not np.array_equal(forward_pattern(weights, biases, center), pattern):
            continue
        found[np.packbits(pattern).tobytes()] = (center, radius, W, c)
    return found


def forward_pattern(weights, biases, x):
    """Activation pattern (pre-activation > 0) at one point, by a plain forward pass."""
    h, bits = np.asarray(x, float), []
    for w, b in zip(weights[:-1], biases[:-1]):
        z = w @ h + b
        bits.extend(z > 0)
        h = np.maximum(z, 0)
    return np.array(bits, dtype=bool)


def shared_facet_radius(region_u, region_v):
    """Inradius, within their common hyperplane, of the intersection of two regions' closures.

    Positive when the two regions share a facet of positive (d-1)-volume.
    """
    A = np.vstack([region_u.polytope.A, region_v.polytope.A])
    b = np.concatenate([region_u.polytope.b, region_v.polytope.b])
    best = 0.0
    for row in range(len(region_u.polytope.b)):
        normal, offset = A[row], b[row]
        projected = np.linalg.norm(A - np.outer(A @ normal, normal), axis=1)
        d = A.shape[1]
        res = linprog(np.r_[np.zeros(d), -1.0],
                      A_ub=np.hstack([A, projected[:, None]]), b_ub=b,
                      A_eq=np.r_[normal, 0.0][None, :], b_eq=[offset],
                      bounds=[(None, None)] * d + [(0, None)], method="highs")
        if res.status == 0:
            best = max(best, res.x[d])
    return best


def random_network(sizes, rng, bias_scale=0.3):
    """Weights N(0, 1/fan_in) and biases N(0, bias_scale^2) for layer sizes [d, h1, ..., m]."""
    weights = [rng.normal(size=(o, i)) / np.sqrt(i) for i, o in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(size=o) * bias_scale for o in sizes[1:]]
    return weights, biases


def edge_keys(complex_):
    """A complex's edges as (pair of packed patterns, neuron), independent of region ids."""
    return {(frozenset((complex_[u].key, complex_[v].key)), n)
            for u, v, n in complex_.graph.edges(data="neuron")}


def assert_same_complex(first, second):
    """Same regions (patterns, facets, radii, maps) and same edges, whatever the ids."""
    from polyrelu.regions.crosscheck import compare_complexes

    report = compare_complexes(first, second)
    assert report.agree, report
    assert edge_keys(first) == edge_keys(second)
