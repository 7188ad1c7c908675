"""Region counting by layer-wise splitting of many pieces at once.

The same decisions as :class:`polyrelu.regions.splitting.LayerSplitter` (interval bounds over
each piece's box, witness points, the box-and-one-cut bound, rays along the gradient,
then one Chebyshev-ball LP per unreached side), taken for one neuron over a whole
batch of pieces with array operations: the pieces live in padded arrays (rows ``A``
with ``b = inf`` padding, boxes, witnesses with a validity mask). Only the LPs are
solved piece by piece. A ray that stops short is continued along the facets it meets
(projected gradient steps), which finds most crossings without an LP.

Used by :func:`polyrelu.regions.splitting.count_regions`; batches hold at most ``chunk``
pieces, so memory stays bounded (depth first over chunks).
"""

import numpy as np

from ..geometry.interval import neuron_status

__all__ = ["count_by_batches", "SplitterBase", "cut_bound", "contract", "tighten",
           "needed_cuts", "ray", "toward"]

_INF = np.inf
_MAX_WITNESSES = 12
_UNDECIDED, _INACTIVE, _ACTIVE, _CROSSING, _EMPTY, _KEEP_ACTIVE, _KEEP_INACTIVE = range(-1, 6)


class _Pieces:
    """A batch of pieces of the domain: ``{x : A[p] x <= b[p]}`` (first ``rows[p]`` rows;
    padding has ``b = inf``), boxes ``low``/``high``, witnesses ``points`` (``valid``;
    point 0 the deepest known), ``state`` of the current layer's neurons (-1 open) and
    ``maps`` (index of the piece's pre-activation map in the layer's stack)."""

    FIELDS = ("A", "b", "rows", "low", "high", "points", "valid", "state", "maps")

    def __init__(self, **arrays):
        for name in self.FIELDS:
            setattr(self, name, arrays[name])
        self.count = len(self.b)

    def take(self, index):
        """The pieces ``index``, as a new batch."""
        return _Pieces(**{name: getattr(self, name)[index] for name in self.FIELDS})

    def append_copies(self, index):
        """Append copies of the pieces ``index``; returns their new positions."""
        new = np.arange(self.count, self.count + len(index))
        for name in self.FIELDS:
            array = getattr(self, name)
            setattr(self, name, np.concatenate([array[:self.count], array[index]]))
        self.count += len(index)
        return new

    def keep(self, mask):
        """Drop the pieces where ``mask`` is False."""
        for name in self.FIELDS:
            setattr(self, name, getattr(self, name)[:self.count][mask])
        self.count = int(mask.sum())

    def widen(self, name, width, fill):
        """Pad the second axis of field ``name`` to at least ``width``."""
        array = getattr(self, name)
        if array.shape[1] < width:
            pad = np.full((array.shape[0], width - array.shape[1]) + array.shape[2:], fill,
                          dtype=array.dtype)
            setattr(self, name, np.concatenate([array, pad], axis=1))


def count_by_batches(network, domain, options, solver, *, chunk=1024, progress=None):
    """Number of regions of ``network`` over ``domain`` (pieces thinner than the radius
    tolerance do not count), splitting at most ``chunk`` pieces at a time."""
    counter = _Counter(network, domain, options, solver)
    d = domain.dim
    points = counter.domain_witnesses()
    root = _Pieces(A=domain.A[None], b=domain.b[None], rows=np.array([len(domain.b)]),
                   low=domain.lower[None], high=domain.upper[None], points=points[None],
                   valid=np.ones((1, len(points)), dtype=bool),
                   state=np.zeros((1, 0), dtype=int), maps=np.zeros(1, dtype=int))
    stack = [(root, np.eye(d)[None], np.zeros((1, d)), 0)]
    total = 0
    while stack:
        pieces, map_A, map_c, layer = stack.pop()
        if layer == len(network.hidden_sizes):
            found = counter.regions(pieces)
            total += found
            if progress is not None:
                progress.update(found)
            continue
        pieces, map_A, map_c = counter.split_layer(pieces, map_A, map_c, layer)
        for start in range(0, pieces.count, chunk):
            part = np.arange(start, min(start + chunk, pieces.count))
            stack.append((pieces.take(part), map_A[part], map_c[part], layer + 1))
    return total


class SplitterBase:
    """What both splitting engines know of a network on a domain: neuron status and zero
    tolerances, the radius tolerance, layer offsets, and which rows of a piece are cuts
    (the rows after a box domain's own; all rows of a polytope domain)."""

    def __init__(self, network, domain, options, solver):
        self.network, self.domain, self.solver = network, domain, solver
        self.status = neuron_status(network, domain, options)
        self.unstable = np.zeros(network.num_hidden, dtype=bool)
        self.unstable[self.status.unstable] = True
        self.diameter = domain.diameter
        self.min_radius = options.min_radius_rel * self.diameter
        self.bounds = np.cumsum((0,) + network.hidden_sizes)
        self.first_cut = len(domain.b) if domain.kind == "box" else 0

    def settle(self, rows, pre_A, pre_c, low, high):
        """States of the neurons ``rows`` of one layer (pre-activations ``pre_A[p] x +
        pre_c[p]``, stacked over pieces p) that the boxes ``[low[p], high[p]]`` settle:
        _ACTIVE, _INACTIVE (also identically zero neurons, canonically inactive) or
        _UNDECIDED. The rules go from the weakest to the strongest."""
        size = (np.abs(pre_A) @ ((high - low) / 2)[..., None])[..., 0]
        centre = (pre_A @ ((high + low) / 2)[..., None])[..., 0] + pre_c
        tol = self.status.zero_tol[rows]
        state = np.where(centre > 0, _ACTIVE, _INACTIVE)
        state[np.abs(centre) - size <= tol] = _UNDECIDED
        constant = (pre_A * pre_A).sum(2) * self.diameter ** 2 <= tol ** 2
        state = np.where(constant, np.where(pre_c > 0, _ACTIVE, _INACTIVE), state)
        stable = ~self.unstable[rows]
        state[:, stable] = np.where(self.status.always_active[rows][stable], _ACTIVE, _INACTIVE)
        state[size + np.abs(centre) <= tol] = _INACTIVE
        return state

    def side_ball(self, low, high, cuts, beta, row, rhs):
        """Centre and signed radius of the Chebyshev ball of the box ``[low, high]``
        intersected with the unit rows ``cuts x <= beta`` and ``row x <= rhs`` (a negative
        radius, or -inf if the LP fails: that side is empty)."""
        d = len(row)
        A = np.ones((2 * d + len(cuts) + 1, d + 1))  # unit rows (A_i, 1): A_i x + r <= b_i
        A[:, :d] = np.vstack([np.eye(d), -np.eye(d), cuts, row])
        cost = np.zeros(d + 1)
        cost[d] = 1.0
        result = self.solver.maximize_warm(cost, A, np.concatenate([high, -low, beta, [rhs]]))
        if result.status != "optimal":
            return None, -_INF
        return result.x[:d], result.x[d]

    def side_verdict(self, radius):
        """What the radii of the (active, inactive) sides say (``inf`` for a side a
        witness reached): _EMPTY, _CROSSING, _ACTIVE / _INACTIVE (the other side has no
        interior), or _KEEP_ACTIVE / _KEEP_INACTIVE (the other side is too thin: cut it
        off)."""
        wide = [r > self.min_radius for r in radius]
        if not any(wide):
            return _EMPTY
        if all(wide):
            return _CROSSING
        if min(radius) <= 0:
            return _ACTIVE if wide[0] else _INACTIVE
        return _KEEP_ACTIVE if wide[0] else _KEEP_INACTIVE

    def domain_witnesses(self):
        """Points of the domain to start from: its centre (first, the deepest), and the
        corners of a box domain in up to 6 dimensions."""
        domain, d = self.domain, self.domain.dim
        points = domain.center[None, :]
        if domain.kind == "box" and d <= 6:
            corners = np.array(np.meshgrid(*zip(domain.lower, domain.upper))).reshape(d, -1).T
            points = np.vstack([points, corners])
        return points


class _Counter(SplitterBase):

    def regions(self, pieces):
        """How many of the final pieces are wider than the radius tolerance: certified by
        the deepest witness or the witnesses' mean, else by a Chebyshev-ball LP."""
        n = pieces.count
        if not n:
            return 0
        mean = (pieces.points * pieces.valid[..., None]).sum(1) / pieces.valid.sum(1)[:, None]
        candidates = np.stack([pieces.points[:, 0], mean], axis=1)
        depth = (pieces.b[:, None, :] - candidates @ pieces.A.transpose(0, 2, 1)).min(2).max(1)
        found = int((depth > self.min_radius).sum())
        for p in np.flatnonzero(depth <= self.min_radius):
            rows = pieces.rows[p]
            center, radius = self.solver.chebyshev_ball(pieces.A[p, :rows], pieces.b[p, :rows])
            found += center is not None and radius > self.min_radius
        return found

    def split_layer(self, pieces, map_A, map_c, layer):
        """The batch cut by every neuron of hidden layer ``layer``, with the next layer's
        input maps."""
        start, stop = self.bounds[layer], self.bounds[layer + 1]
        weights, bias = self.network.weights[layer], self.network.biases[layer]
        pieces.low, pieces.high = tighten(pieces.low, pieces.high, pieces.A, pieces.b)
        pre_A, pre_c = weights @ map_A, map_c @ weights.T + bias
        pieces.state = self.settle(slice(start, stop), pre_A, pre_c, pieces.low, pieces.high)
        pieces.maps = np.arange(pieces.count)
        for i in range(stop - start):
            undecided = np.flatnonzero(pieces.state[:, i] == _UNDECIDED)
            if len(undecided):
                self._decide(pieces, undecided, i, pre_A[pieces.maps[undecided], i],
                             pre_c[pieces.maps[undecided], i], self.status.zero_tol[start + i])
        pieces = _with_fewer_witnesses(pieces)
        active = pieces.state == _ACTIVE
        return (pieces, pre_A[pieces.maps] * active[..., None],
                pre_c[pieces.maps] * active)

    def _decide(self, pieces, index, i, a, c, tol):
        """Decide neuron ``i`` (pre-activation ``a x + c``) on the pieces ``index``."""
        low, high = pieces.low[index], pieces.high[index]
        size = (np.abs(a) * (high - low) / 2).sum(1)
        centre = (a * (high + low) / 2).sum(1) + c
        verdict = np.full(len(index), _UNDECIDED)
        fixed = np.abs(centre) - size > tol
        verdict[fixed] = np.where(centre[fixed] > 0, _ACTIVE, _INACTIVE)
        verdict[size + np.abs(centre) <= tol] = _INACTIVE
        points, valid = pieces.points[index], pieces.valid[index]
        values = (points @ a[..., None])[..., 0] + c[:, None]
        reached = {1.0: np.where(valid, values, -_INF).max(1) > tol,
                   -1.0: np.where(valid, values, _INF).min(1) < -tol}
        new_points = {}
        for sign, empty_side in ((1.0, _INACTIVE), (-1.0, _ACTIVE)):
            look = np.flatnonzero((verdict == _UNDECIDED) & ~reached[sign] & reached[-sign])
            if not len(look):
                continue
            cuts = pieces.A[index[look], self.first_cut:]
            beta = np.where(cuts.any(2), pieces.b[index[look], self.first_cut:], 0.0)
            bound = cut_bound(sign * a[look], low[look], high[look], cuts, beta) + sign * c[look]
            verdict[look[bound < -tol]] = empty_side
            look = look[bound >= -tol]
            if len(look):
                found, point = _ray_and_climb(pieces.A[index[look]], pieces.b[index[look]],
                                              points[look], valid[look], values[look],
                                              sign * a[look], sign, tol)
                reached[sign][look[found]] = True
                for k, x in zip(look[found], point[found]):
                    new_points.setdefault(k, []).append(x)
        verdict[(verdict == _UNDECIDED) & reached[1.0] & reached[-1.0]] = _CROSSING
        for k in np.flatnonzero(verdict == _UNDECIDED):
            verdict[k] = self._by_lps(pieces, index[k], low[k], high[k], a[k], c[k],
                                      reached[1.0][k], reached[-1.0][k],
                                      new_points.setdefault(k, []))
        for state in (_ACTIVE, _INACTIVE):
            pieces.state[index[verdict == state], i] = state
        cut = np.flatnonzero(verdict >= _CROSSING)
        cut = cut[verdict[cut] != _EMPTY]
        if len(cut):
            _cut(pieces, index, cut, verdict, a, c, new_points, i)
        if (verdict == _EMPTY).any():
            keep = np.ones(pieces.count, dtype=bool)
            keep[index[verdict == _EMPTY]] = False
            pieces.keep(keep)

    def _by_lps(self, pieces, p, low, high, a, c, positive, negative, new_points):
        """Decide by the Chebyshev balls of the unreached sides of piece ``p`` (its box rows
        and the cuts its box does not imply); ball centres are added to ``new_points``."""
        rows = pieces.rows[p]
        cuts, beta = needed_cuts(pieces.A[p, self.first_cut:rows],
                                 pieces.b[p, self.first_cut:rows], low, high)
        norm = np.sqrt(a @ a)
        radius = []
        for sign, reached in ((1.0, positive), (-1.0, negative)):
            if reached:
                radius.append(_INF)
                continue
            center, r = self.side_ball(low, high, cuts, beta, -sign * a / norm, sign * c / norm)
            radius.append(r)
            if r > self.min_radius:
                new_points.append(center)
        return self.side_verdict(radius)


def needed_cuts(cuts, beta, low, high):
    """The rows of ``cuts x <= beta`` that the box ``[low, high]`` does not imply."""
    needed = np.maximum(cuts * low, cuts * high).sum(1) > beta
    return cuts[needed], beta[needed]


def ray(A, b, points, valid, values, direction, sign):
    """For each piece ``{A[p] x <= b[p]}`` (padding rows ``b = inf``), the point reached
    from one of its witnesses ``points[p]`` (where ``valid``) along ``direction`` (a ray
    to the boundary) where ``sign (a x + c)`` is largest, and that largest value
    (``values`` = ``a x + c`` at the witnesses, ``direction = sign a``)."""
    rates = (A @ direction[..., None])[..., 0]
    slack = b[:, None, :] - points @ A.transpose(0, 2, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        steps = np.where(rates[:, None, :] > 0, slack / rates[:, None, :], _INF).min(2)
    steps = np.where(valid & np.isfinite(steps), np.maximum(steps, 0.0), 0.0)
    gained = np.where(valid, sign * values + steps * (direction * direction).sum(1)[:, None],
                      -_INF)
    best = np.argmax(gained, 1)
    rows = np.arange(len(A))
    return points[rows, best] + steps[rows, best][:, None] * direction, gained[rows, best]


def _ray_and_climb(A, b, points, valid, values, direction, sign, tol, steps=3):
    """For each piece, the best point reached from its witnesses along ``direction``
    (:func:`ray`, then projected gradient steps along the facets met when the ray falls
    short): ``(found, point)`` with ``found`` where ``sign (a x + c) > tol`` there."""
    point, gain = ray(A, b, points, valid, values, direction, sign)
    short = gain <= tol
    if short.any():
        point[short], gain[short] = _climb(A[short], b[short], point[short], direction[short],
                                           gain[short], steps)
    return gain > tol, point


def _climb(A, b, points, direction, gain, steps):
    """Projected gradient ascent along ``direction`` from boundary points of the pieces
    ``{A x <= b}``: each step projects the direction off the rows tight at the point
    and moves to the next row. Returns the points and the gains."""
    d = A.shape[2]
    tight_tol = 1e-12 * (1.0 + np.abs(np.where(np.isfinite(b), b, 0.0)).max())
    length = np.sqrt((direction * direction).sum(1))
    for _ in range(steps):
        slack = b - (A @ points[..., None])[..., 0]
        normals = A * (slack <= tight_tol)[..., None]
        gram = normals.transpose(0, 2, 1) @ normals
        projector = np.eye(d) - gram @ np.linalg.pinv(gram, hermitian=True)
        move = (projector @ direction[..., None])[..., 0]
        rates = (A @ move[..., None])[..., 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(rates > 1e-12 * length[:, None], np.maximum(slack, 0.0) / rates,
                            _INF).min(1)
        step = np.where(np.isfinite(step), step, 0.0)
        points = points + step[:, None] * move
        gain = gain + step * (move * move).sum(1)
    return points, gain


def _cut(pieces, index, cut, verdict, a, c, new_points, i):
    """Cut the pieces ``index[cut]`` by their hyperplane ``a x + c = 0``: the active side
    replaces the piece, the inactive side is appended (unless the verdict keeps only
    one side)."""
    where = index[cut]
    added = [new_points.get(k, []) for k in cut]
    width = max(len(x) for x in added)
    if width:  # the new witnesses, after the piece's own
        first = pieces.points.shape[1]
        pieces.widen("points", first + width, 0.0)
        pieces.widen("valid", first + width, False)
        for row, extra in zip(where, added):
            for e, x in enumerate(extra):
                pieces.points[row, first + e], pieces.valid[row, first + e] = x, True
    pieces.widen("A", int(pieces.rows[where].max()) + 1, 0.0)
    pieces.widen("b", int(pieces.rows[where].max()) + 1, _INF)
    a, c, kept = a[cut], c[cut], verdict[cut]
    points, valid = pieces.points[where], pieces.valid[where]
    values = (points @ a[..., None])[..., 0] + c[:, None]
    norm = np.sqrt((a * a).sum(1))
    copies = pieces.append_copies(where[kept != _KEEP_ACTIVE])
    for sign, state, targets, side in ((1.0, _ACTIVE, where, kept != _KEEP_INACTIVE),
                                       (-1.0, _INACTIVE, copies, kept != _KEEP_ACTIVE)):
        targets = targets[side] if sign > 0 else targets
        row, rhs = -sign * a[side] / norm[side, None], sign * c[side] / norm[side]
        depth = pieces.rows[targets]
        pieces.A[targets, depth], pieces.b[targets, depth] = row, rhs
        pieces.rows[targets] = depth + 1
        pieces.low[targets], pieces.high[targets] = contract(
            pieces.low[targets], pieces.high[targets], row, rhs)
        on_side = valid[side] & (sign * values[side] > 0)
        deep = toward(points[side], values[side], valid[side], sign)
        first = np.where(on_side[:, :1], points[side][:, 0], deep)
        pieces.points[targets] = points[side]
        pieces.points[targets, 0] = first
        on_side[:, 0] = True
        pieces.valid[targets] = on_side
        pieces.state[targets, i] = state


def toward(points, values, valid, sign):
    """Per piece, a point halfway from the hyperplane to the witness furthest on side
    ``sign``, on the segment from the deepest point ``points[:, 0]``."""
    rows = np.arange(len(points))
    far = np.argmax(np.where(valid, sign * values, -_INF), 1)
    first, last = values[:, 0], values[rows, far]
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = np.nan_to_num(first / (first - last))
    return points[:, 0] + ((1 + crossing) / 2)[:, None] * (points[rows, far] - points[:, 0])


def cut_bound(G, low, high, H, beta):
    """Upper bounds of ``G[k] @ x`` over the box ``[low, high]`` intersected with the
    halfspaces ``H x <= beta``: for each k the best of the exact bounds over the box and
    one halfspace at a time (Lagrangian duality: ``lam beta_i + max_box (G[k] - lam H_i)
    x`` bounds it for every ``lam >= 0`` and is least at a breakpoint ``lam = G[k, l] /
    H[i, l]``). Either one box and ``H`` of shape (m, d) for all rows of ``G``, or per
    row ``k`` its own box (k, d), ``H`` (k, m, d) and ``beta`` (k, m); all-zero rows of
    ``H`` (with ``beta`` 0) are ignored."""
    box_bound = np.maximum(G * low, G * high).sum(axis=-1)
    if not H.shape[-2]:
        return box_bound
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = G[..., None, :] / H
    lam = np.where((lam > 0) & (lam < _INF), lam, 0.0)  # also drops inf and nan
    coef = G[..., None, None, :] - lam[..., None] * H[..., None, :]  # (k, m, d, d)
    low, high = low[..., None, None, :], high[..., None, None, :]
    bounds = np.maximum(coef * low, coef * high).sum(axis=-1) + lam * beta[..., None]
    return np.minimum(box_bound, bounds.reshape(len(G), -1).min(axis=1))


def contract(low, high, row, rhs):
    """Boxes ``[low[k], high[k]]`` shrunk by one constraint ``row[k] x <= rhs[k]`` each
    (each coordinate's bound given the others' box bounds): still bounding boxes of the
    cut pieces."""
    least = np.minimum(row * low, row * high)  # min of row_kl x_l over the box
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = (rhs[:, None] - least.sum(1)[:, None] + least) / row
    return np.where(row < 0, np.maximum(low, bound), low), \
        np.where(row > 0, np.minimum(high, bound), high)


def tighten(low, high, A, b):
    """Boxes ``[low[k], high[k]]`` shrunk by every row of ``A[k] x <= b[k]`` (one pass of
    bound propagation; rows with ``b = inf`` are ignored); still bounding boxes."""
    least = np.minimum(A * low[:, None, :], A * high[:, None, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = (b[..., None] - least.sum(2)[..., None] + least) / A
    return (np.maximum(low, np.where(A < 0, bound, -_INF).max(1)),
            np.minimum(high, np.where(A > 0, bound, _INF).min(1)))


def _with_fewer_witnesses(pieces):
    """The batch with at most ``_MAX_WITNESSES`` valid witnesses per piece (the first
    ones, so the deepest point stays first) and no empty columns."""
    order = np.argsort(~pieces.valid, axis=1, kind="stable")
    width = min(_MAX_WITNESSES, int(pieces.valid.sum(1).max(initial=1)))
    order = order[:, :width]
    rows = np.arange(pieces.count)[:, None]
    pieces.points, pieces.valid = pieces.points[rows, order], pieces.valid[rows, order]
    return pieces
