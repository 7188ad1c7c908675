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


def repeats_earlier(A, b):
    """Rows equal (normal and offset, to 1e-12) to an earlier row, by a double loop."""
    repeat = np.zeros(len(b), dtype=bool)
    for i in range(len(b)):
        for j in range(i):
            if np.allclose(A[i], A[j], atol=1e-12) and abs(b[i] - b[j]) <= 1e-12:
                repeat[i] = True
    return repeat


def facets_by_linprog(A, b, min_radius):
    """(rows, in-plane inradius of each) of the facets of {A x <= b}, by two LPs per row."""
    d = A.shape[1]
    kept = np.flatnonzero(~repeats_earlier(A, b))
    rows, radii = [], []
    for i in kept:
        others = kept[kept != i]
        relaxed = linprog(-A[i], A_ub=np.vstack([A[others], A[i]]),
                          b_ub=np.append(b[others], b[i] + 1.0),
                          bounds=[(None, None)] * d, method="highs")
        assert relaxed.status == 0
        if -relaxed.fun <= b[i] + 1e-9:
            continue
        in_plane = np.linalg.norm(A[others] - np.outer(A[others] @ A[i], A[i]), axis=1)
        ball = linprog(np.r_[np.zeros(d), -1.0], A_ub=np.hstack([A[others], in_plane[:, None]]),
                       b_ub=b[others], A_eq=np.r_[A[i], 0.0][None, :], b_eq=[b[i]],
                       bounds=[(None, None)] * d + [(0, None)], method="highs")
        assert ball.status == 0
        if ball.x[d] > min_radius:
            rows.append(i)
            radii.append(ball.x[d])
    return np.array(rows, dtype=int), np.array(radii)


def random_network(sizes, rng, bias_scale=0.3):
    """Weights N(0, 1/fan_in) and biases N(0, bias_scale^2) for layer sizes [d, h1, ..., m]."""
    weights = [rng.normal(size=(o, i)) / np.sqrt(i) for i, o in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(size=o) * bias_scale for o in sizes[1:]]
    return weights, biases


def edge_keys(complex_):
    """A complex's edges as (pair of packed patterns, neuron), independent of region ids."""
    return {(frozenset((complex_[u].key, complex_[v].key)), n)
            for u, v, n in complex_.graph.edges(data="kink")}


def assert_same_complex(first, second):
    """Same regions (patterns, facets, radii, maps) and same edges, whatever the ids."""
    from polyrelu.regions.crosscheck import compare_complexes

    report = compare_complexes(first, second)
    assert report.agree, report
    assert edge_keys(first) == edge_keys(second)


# -- general networks (ReLU and linear units, max windows): plain loops over the layers ----

def general_forward(network, x):
    """(output, pattern) at one point by loops over ``network.layers``: a ReLU slot per
    ReLU unit (> 0), a one-hot argmax (lowest on ties) per window."""
    h, bits = np.asarray(x, float), []
    for layer in network.layers[:-1]:
        z = layer.weight @ h + layer.bias
        u = z.copy()
        for i, unit in enumerate(layer.units):
            if unit == 1:
                bits.append(z[i] > 0)
                u[i] = max(z[i], 0.0)
        out = [u[i] for i in layer.keep]
        for window in layer.windows:
            values = [u[i] for i in window if i >= 0]
            best = int(np.argmax(values))
            bits.extend(position == best for position in range(len(window)))
            out.append(values[best])
        h = np.array(out)
    return network.layers[-1].weight @ h + network.layers[-1].bias, np.array(bits, dtype=bool)


def general_rows(network, pattern):
    """Rows ``(A, b)``, ``A x <= b``, of a pattern's region by loops (no box), and for
    each row the first slot of the unit or window that makes it; pre-activation maps
    built entry by entry."""
    d = network.input_dim
    A, c = np.eye(d), np.zeros(d)
    rows, rhs, owners, k = [], [], [], 0
    for layer in network.layers[:-1]:
        zA, zc = layer.weight @ A, layer.weight @ c + layer.bias
        uA, uc = zA.copy(), zc.copy()
        for i, unit in enumerate(layer.units):
            if unit == 1:
                sign = 1.0 if pattern[k] else -1.0
                rows.append(-sign * zA[i])
                rhs.append(sign * zc[i])
                owners.append(k)
                if not pattern[k]:
                    uA[i], uc[i] = 0.0, 0.0
                k += 1
        outA, outc = [uA[i] for i in layer.keep], [uc[i] for i in layer.keep]
        for window in layer.windows:
            chosen = [p for p in range(len(window)) if pattern[k + p]]
            best = window[chosen[0]]
            for entry in window:
                if entry >= 0 and entry != best:  # u_entry <= u_best
                    rows.append(uA[entry] - uA[best])
                    rhs.append(uc[best] - uc[entry])
                    owners.append(k)
            outA.append(uA[best])
            outc.append(uc[best])
            k += len(window)
        A, c = np.array(outA).reshape(-1, d), np.array(outc)
    return rows, rhs, owners


def general_brute_force(network, box_lo, box_hi, min_radius):
    """All full-dimensional regions of a general network: depth-first over the slots'
    choices (each ReLU on or off, each window's argmax), pruned by a Chebyshev LP.

    A pattern counts when its region has Chebyshev radius > ``min_radius`` and the
    forward pass at the centre has that very pattern. Returns a dict: packed pattern
    bytes -> (centre, radius).
    """
    d = network.input_dim
    box_rows = list(np.eye(d)) + list(-np.eye(d))
    box_rhs = list(box_hi) + list(-np.asarray(box_lo))
    choices = []  # per choice group: list of (start, bits)
    k = 0
    for layer in network.layers[:-1]:
        for unit in layer.units:
            if unit == 1:
                choices.append([(k, [False]), (k, [True])])
                k += 1
        for window in layer.windows:
            n = len(window)
            valid = [p for p in range(n) if window[p] >= 0]
            choices.append([(k, [p == q for q in range(n)]) for p in valid])
            k += n
    found = {}

    def feasible(pattern, upto):
        rows, rhs = general_rows_prefix(network, pattern, upto)
        A = np.array(rows + box_rows)
        b = np.array(rhs + box_rhs)
        keep = np.linalg.norm(A, axis=1) > 1e-14
        if np.any(b[~keep] < -1e-12):
            return None, -1.0
        return chebyshev(A[keep], b[keep])

    def visit(group, pattern):
        if group == len(choices):
            center, radius = feasible(pattern, len(pattern))
            if radius > min_radius and np.array_equal(general_forward(network, center)[1],
                                                      pattern):
                found[np.packbits(pattern).tobytes()] = (center, radius)
            return
        for start, bits in choices[group]:
            pattern[start:start + len(bits)] = bits
            if feasible(pattern, start + len(bits))[1] > min_radius:
                visit(group + 1, pattern)
        pattern[choices[group][0][0]:] = False

    visit(0, np.zeros(k, dtype=bool))
    return found


def general_rows_prefix(network, pattern, upto):
    """:func:`general_rows` restricted to the rows of slots ``< upto`` (the later slots
    do not change them)."""
    full = pattern.copy()
    full[upto:] = False
    # later windows need one set position to build their maps: set their first one
    k = 0
    for layer in network.layers[:-1]:
        k += int(np.count_nonzero(layer.units == 1))
        for window in layer.windows:
            if k >= upto:
                full[k] = True
            k += len(window)
    rows, rhs, owners = general_rows(network, full)
    keep = [i for i, owner in enumerate(owners) if owner < upto]
    return [rows[i] for i in keep], [rhs[i] for i in keep]


def planar_cells(network, box_lo, box_hi, min_area=1e-12):
    """The regions of a 2-input general network, without LPs: the box polygon clipped
    (shapely) along each ReLU unit's kink line and into each window's argmax cells
    (pairwise half-planes), layer by layer. Returns a list of (polygon, pattern)."""
    from shapely.geometry import Polygon, box

    def clip(polygon, a, c):  # {x in polygon : a . x + c >= 0}
        polygon = _polygon_part(polygon)
        if polygon.is_empty:
            return polygon
        corners = np.array(polygon.exterior.coords)
        values = corners @ a + c
        tol = 1e-12 * (1.0 + np.abs(a).sum() + abs(c))  # a cell only touching the line
        if values.min() >= -tol:
            return polygon
        if values.max() <= tol:
            return Polygon()
        return _polygon_part(polygon.intersection(_halfplane(a, c, corners)))

    cells = [(box(box_lo[0], box_lo[1], box_hi[0], box_hi[1]), [], np.eye(2), np.zeros(2))]
    for layer in network.layers[:-1]:
        new = []
        for polygon, bits, A, c in cells:
            zA, zc = layer.weight @ A, layer.weight @ c + layer.bias
            pieces = [(polygon, list(bits), zA.copy(), zc.copy())]
            for i, unit in enumerate(layer.units):
                if unit != 1:
                    continue
                split = []
                for poly, b, uA, uc in pieces:
                    corners = np.array(poly.exterior.coords)
                    zero = np.abs(corners @ zA[i] + zc[i]).max() <= 1e-12 * (
                        1.0 + np.abs(zA[i]).sum() + abs(zc[i]))
                    for on in (False,) if zero else (False, True):  # zero on the cell: off
                        sign = 1.0 if on else -1.0
                        part = clip(poly, sign * zA[i], sign * zc[i])
                        if part.area > min_area:
                            vA, vc = uA.copy(), uc.copy()
                            if not on:
                                vA[i], vc[i] = 0.0, 0.0
                            split.append((part, b + [on], vA, vc))
                pieces = split
            for window in layer.windows:
                split = []
                for poly, b, uA, uc in pieces:
                    for p, best in enumerate(window):
                        if best < 0:
                            continue
                        part = poly
                        for q, other in enumerate(window):
                            if other < 0 or other == best:
                                continue
                            a, c = uA[best] - uA[other], uc[best] - uc[other]
                            if np.abs(a).sum() + abs(c) <= 1e-15:  # identical: lowest wins
                                part = Polygon() if q < p else part
                            else:
                                part = clip(part, a, c)
                        if part.area > min_area:
                            split.append((part, b + [p == q for q in range(len(window))],
                                          uA, uc))
                pieces = split
            for poly, b, uA, uc in pieces:
                bits_l = b
                outA = [uA[i] for i in layer.keep]
                outc = [uc[i] for i in layer.keep]
                k = len(bits_l) - layer.windows.size
                for w, window in enumerate(layer.windows):
                    onehot = bits_l[k + w * len(window):k + (w + 1) * len(window)]
                    best = window[onehot.index(True)]
                    outA.append(uA[best])
                    outc.append(uc[best])
                new.append((poly, bits_l, np.array(outA).reshape(-1, 2), np.array(outc)))
        cells = new
    return [(poly, np.array(bits, dtype=bool)) for poly, bits, _, _ in cells]


def _polygon_part(shape):
    """The 2-D part of a clipped convex polygon (intersections can add segments or points
    where cells only touch); an empty Polygon if there is none."""
    from shapely.geometry import Polygon

    if shape.geom_type == "Polygon":
        return shape
    parts = [g for g in getattr(shape, "geoms", []) if g.geom_type == "Polygon" and g.area > 0]
    return max(parts, key=lambda g: g.area) if parts else Polygon()


def _halfplane(a, c, corners):
    """A polygon equal to {x : a . x + c >= 0} near ``corners`` (a polygon the line
    crosses): a rectangle on the line's positive side, around the corners' foot point."""
    from shapely.geometry import Polygon

    norm = np.linalg.norm(a)
    n = a / norm
    middle = corners.mean(axis=0)
    foot = middle - (middle @ a + c) / norm * n  # on the line
    big = 4.0 * (1.0 + np.ptp(corners, axis=0).max())
    tangent = np.array([-n[1], n[0]])
    return Polygon([foot + big * tangent, foot + big * tangent + 2 * big * n,
                    foot - big * tangent + 2 * big * n, foot - big * tangent])
