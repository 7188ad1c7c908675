"""`GraphBuilder`: lower a graph of tensor operations to a :class:`Network` of layers.

The ONNX and torch loaders walk their graphs and call the builder: linear operations
(matrix products, convolutions, pooling averages, BatchNorm, additions, concatenations,
every shape operation) compose affine maps; activations (ReLU, LeakyReLU/PReLU, Abs,
HardTanh/Clip) and max pooling make *groups* of units. Every tensor is an affine
expression over the network input and the groups' outputs. A group's *depth* is one more
than the deepest group its input reads; the groups of depth ``l + 1`` form hidden layer
``l``, and a value a later layer reads skips the layers in between as linear units (a
residual branch). The kinks are those of the original units (see
:mod:`polyrelu.network.layers`): nothing is approximated, and a degenerate unit
(LeakyReLU with slope 1, Clip with ``min == max``) makes no kink.

Examples
--------
A residual block ``y = x + relu(x)`` on two inputs:

>>> import numpy as np
>>> builder = GraphBuilder((2,))
>>> x = builder.input
>>> y = builder.add(x, builder.relu(x))
>>> net = builder.network(y)
>>> net.forward([[1.0, -2.0]]).tolist(), net.hidden_sizes
([[2.0, -2.0]], (4,))
"""

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..errors import InvalidNetworkError, SizeLimitError
from .layers import LINEAR, RELU, Layer
from .model import MAX_PARAMETERS, Network

__all__ = ["GraphBuilder", "Tensor"]


@dataclass(frozen=True, eq=False)
class Tensor:
    """An affine expression ``sum_s terms[s] @ h_s + const`` over the network input
    (source 0) and group outputs, with the tensor's shape (without a batch axis)."""

    shape: tuple
    terms: dict
    const: np.ndarray

    @property
    def size(self):
        """Number of entries."""
        return int(self.const.size)

    @property
    def is_constant(self):
        """True if the tensor depends on no input."""
        return not self.terms


@dataclass(eq=False)
class _Group:
    depth: int
    terms: dict
    const: np.ndarray
    units: np.ndarray
    keep: np.ndarray
    names: list  # (start, stop, text) over the group's units
    windows: list = field(default_factory=list)  # (k,)-arrays of u indices
    window_names: list = field(default_factory=list)

    @property
    def n_out(self):
        return self.keep.size + len(self.windows)


class GraphBuilder:
    """Builds a :class:`Network` from tensor operations (see the module docstring).

    Parameters
    ----------
    input_shape : tuple of int
        The shape of one input (without a batch axis); the network's input is its
        flattening (C order).
    max_parameters : int
        Largest dense weight matrix (entries) a layer may get; larger raises
        :class:`SizeLimitError` before it is allocated.
    """

    def __init__(self, input_shape, *, max_parameters=MAX_PARAMETERS):
        self.input_shape = tuple(int(n) for n in input_shape)
        size = int(np.prod(self.input_shape, dtype=np.int64))
        self.max_parameters = max_parameters
        self._sizes = {0: size}
        self._depths = {0: 0}
        self._groups = {}
        self.input = Tensor(self.input_shape, {0: sp.identity(size, format="csr")},
                            np.zeros(size))

    # -- linear operations -------------------------------------------------------
    def constant(self, values):
        """A tensor that depends on no input."""
        values = np.asarray(values, dtype=np.float64)
        return Tensor(values.shape, {}, values.reshape(-1).copy())

    def linear(self, tensor, matrix, offset=None, shape=None):
        """``matrix @ tensor + offset`` (``matrix`` of shape (n_out, tensor.size), dense or
        scipy.sparse), reshaped to ``shape`` (default ``(n_out,)``)."""
        matrix = sp.csr_matrix(matrix)
        if matrix.shape[1] != tensor.size:
            raise InvalidNetworkError(
                f"a linear map of {matrix.shape[1]} inputs applied to {tensor.size} entries")
        const = matrix @ tensor.const
        if offset is not None:
            const = const + np.broadcast_to(np.asarray(offset, np.float64).reshape(-1),
                                            const.shape)
        terms = {s: (matrix @ m).tocsr() for s, m in tensor.terms.items()}
        return Tensor(tuple(shape) if shape is not None else (matrix.shape[0],), terms,
                      np.asarray(const, dtype=np.float64))

    def take(self, tensor, index, shape=None):
        """Entries ``index`` of the flattened tensor (an int array; -1 gives 0), shaped
        like ``index`` (or ``shape``): transposes, slices, gathers and pads."""
        index = np.asarray(index, dtype=np.int64)
        flat = index.reshape(-1)
        rows = np.flatnonzero(flat >= 0)
        matrix = sp.csr_matrix((np.ones(rows.size), (rows, flat[rows])),
                               shape=(flat.size, tensor.size))
        return self.linear(tensor, matrix, shape=index.shape if shape is None else shape)

    def scale(self, tensor, factor, offset=0.0):
        """Element-wise ``factor * tensor + offset`` (both broadcast to the tensor's shape)."""
        factor = np.broadcast_to(np.asarray(factor, np.float64), tensor.shape).reshape(-1)
        offset = np.broadcast_to(np.asarray(offset, np.float64), tensor.shape).reshape(-1)
        return self.linear(tensor, sp.diags(factor), offset, tensor.shape)

    def add(self, *tensors, shape=None):
        """The sum of tensors of equal size (shape of the first, or ``shape``)."""
        size = tensors[0].size
        if any(t.size != size for t in tensors):
            raise InvalidNetworkError(
                f"adding tensors of sizes {[t.size for t in tensors]} (broadcast first)")
        terms = {}
        for t in tensors:
            for s, m in t.terms.items():
                m = self._widened(s, m)
                terms[s] = (terms[s] + m).tocsr() if s in terms else m
        return Tensor(tuple(shape or tensors[0].shape), terms,
                      np.sum([t.const for t in tensors], axis=0))

    def stack(self, tensors):
        """The flattened tensors one after another, a 1-D tensor (for Concat: stack, then
        :meth:`take`)."""
        sources = {s for t in tensors for s in t.terms}
        terms = {s: sp.vstack([self._widened(s, t.terms[s]) if s in t.terms
                               else sp.csr_matrix((t.size, self._sizes[s])) for t in tensors],
                              format="csr") for s in sources}
        const = np.concatenate([t.const for t in tensors])
        return Tensor((const.size,), terms, const)

    # -- activations -------------------------------------------------------------
    def relu(self, tensor, name="Relu"):
        """``max(tensor, 0)``."""
        return self._units(tensor, [(RELU, 1.0, 0.0, name)])

    def leaky_relu(self, tensor, slope, name="LeakyRelu"):
        """``slope * t`` below zero, ``t`` above (slope a scalar or broadcast per entry,
        as PReLU); an entry with slope 1 is linear and makes no kink."""
        slope = _per_entry(slope, tensor)
        linear = slope == 1.0
        if linear.all():
            return tensor
        if linear.any():
            return self._by_entries(tensor, [linear, ~linear], lambda part, where: (
                part if where is linear else self.leaky_relu(part, slope[where], name)))
        # a t + (1 - a) relu(t): one ReLU and one linear unit per entry
        return self._units(tensor, [(RELU, 1.0 - slope, 0.0, name),
                                    (LINEAR, slope, 0.0, f"{name} (linear part)")])

    def abs(self, tensor, name="Abs"):
        """``|t| = 2 relu(t) - t``."""
        return self._units(tensor, [(RELU, 2.0, 0.0, name),
                                    (LINEAR, -1.0, 0.0, f"{name} (linear part)")])

    def clip(self, tensor, low=None, high=None, name="Clip"):
        """``min(max(t, low), high)`` (HardTanh), bounds scalars or per entry; a missing or
        infinite bound is no bound. Where ``low >= high`` the result is ``high`` (the ONNX
        definition; constant, no kink)."""
        size = tensor.size
        low = np.full(size, -np.inf) if low is None else _per_entry(low, tensor)
        high = np.full(size, np.inf) if high is None else _per_entry(high, tensor)
        if np.isnan(low).any() or np.isnan(high).any():
            raise InvalidNetworkError(f"{name}: a bound is NaN")
        kinds = [(low >= high), (low < high) & np.isfinite(low) & np.isfinite(high),
                 (low < high) & np.isfinite(low) & ~np.isfinite(high),
                 (low < high) & ~np.isfinite(low) & np.isfinite(high),
                 (low < high) & ~np.isfinite(low) & ~np.isfinite(high)]
        kinds = [kind for kind in kinds if kind.any()]
        if len(kinds) > 1:
            return self._by_entries(tensor, kinds, lambda part, where: self.clip(
                part, low[where], high[where], name))
        if (low >= high).all():
            return self.constant(np.reshape(high, tensor.shape))
        has_low, has_high = np.isfinite(low).all(), np.isfinite(high).all()
        if not has_low and not has_high:
            return tensor
        pieces = []
        if has_low:  # low + relu(t - low)
            pieces.append((RELU, 1.0, -low, f"{name} (kink at min)"))
        else:
            pieces.append((LINEAR, 1.0, 0.0, f"{name} (linear part)"))
        if has_high:  # - relu(t - high)
            pieces.append((RELU, -1.0, -high, f"{name} (kink at max)"))
        result = self._units(tensor, pieces)
        return result if not has_low else self.add(result, self.constant(
            np.reshape(low, tensor.shape)))

    def _by_entries(self, tensor, masks, build):
        """``tensor`` with each group of entries (boolean ``masks`` over its flattening,
        disjoint, covering it) replaced by ``build(part, mask)`` of those entries."""
        n = tensor.size
        pieces = []
        for mask in masks:
            index = np.flatnonzero(mask)
            part = build(self.take(tensor, index), mask)
            scatter = sp.csr_matrix((np.ones(index.size), (index, np.arange(index.size))),
                                    shape=(n, index.size))
            pieces.append(self.linear(part, scatter, shape=tensor.shape))
        return self.add(*pieces)

    def max_windows(self, tensor, windows, shape, name="MaxPool"):
        """The maximum over each window (rows of indices into the flattened tensor, -1
        padding), shaped ``shape``: MaxPool and Max."""
        windows = np.asarray(windows, dtype=np.int64)
        if windows.ndim != 2 or windows.shape[0] != int(np.prod(shape, dtype=np.int64)):
            raise InvalidNetworkError(f"{name}: {windows.shape[0]} windows for shape {shape}")
        if tensor.is_constant:
            values = np.where(windows >= 0, tensor.const[np.maximum(windows, 0)], -np.inf)
            return self.constant(values.max(axis=1).reshape(shape))
        group, entries = self._fusable(tensor)
        if group is None:
            group = self._group(tensor, np.full(tensor.size, LINEAR, np.int8),
                                np.zeros(0, np.int64), [(0, tensor.size, f"{name} input")])
            entries = np.arange(tensor.size)
        first = group.n_out
        for row in windows:
            group.windows.append(np.where(row >= 0, entries[np.maximum(row, 0)], -1))
        group.window_names.append((len(group.windows) - len(windows), len(group.windows), name))
        gid = self._id_of(group)
        self._sizes[gid] = group.n_out
        matrix = sp.csr_matrix((np.ones(len(windows)), (np.arange(len(windows)),
                                np.arange(first, first + len(windows)))),
                               shape=(len(windows), group.n_out))
        return Tensor(tuple(shape), {gid: matrix}, np.zeros(len(windows)))

    # -- the network -------------------------------------------------------------
    def network(self, output, *, allow_extreme_numerics=False):
        """The :class:`Network` computing the flattened ``output`` tensor."""
        depth = max([self._depths[s] for s in output.terms], default=0)
        by_depth = {}
        for gid, group in self._groups.items():
            by_depth.setdefault(group.depth, []).append(gid)
        needed = self._needed(output, by_depth, depth)
        read = self._read(output)
        layers, positions = [], {0: np.arange(self._sizes[0])}
        for level in range(1, depth + 1):
            layer, positions = self._layer(level, by_depth.get(level, []), needed[level],
                                           positions, read)
            layers.append(layer)
        self._check_size(output.size, _width(positions), "output")
        weight = np.zeros((output.size, _width(positions)))
        self._fill(weight, output.terms, positions)
        layers.append(Layer.affine(weight, output.const))
        return Network.from_layers(layers, allow_extreme_numerics=allow_extreme_numerics)

    # -- internals ---------------------------------------------------------------
    def _units(self, tensor, pieces):
        """A group with one unit per entry and piece ``(kind, factor, shift, name)``; the
        result is the sum over pieces of ``factor * unit(t + shift)``."""
        if tensor.is_constant:
            values = sum(np.asarray(f) * (np.maximum(tensor.const + s, 0.0) if kind == RELU
                                          else tensor.const + s) for kind, f, s, _ in pieces)
            return self.constant(np.reshape(values, tensor.shape))
        n = tensor.size
        stacked = self.stack([self.linear(tensor, sp.identity(n), shift)
                              for _, _, shift, _ in pieces])
        units = np.repeat(np.array([kind for kind, _, _, _ in pieces], np.int8), n)
        names = [(i * n, (i + 1) * n, piece[3]) for i, piece in enumerate(pieces)]
        group = self._group(stacked, units, np.arange(units.size), names)
        gid = self._id_of(group)
        factors = [np.broadcast_to(np.asarray(f, np.float64), (n,)) for _, f, _, _ in pieces]
        matrix = sp.hstack([sp.diags(f) for f in factors], format="csr")
        return Tensor(tensor.shape, {gid: matrix}, np.zeros(n))

    def _group(self, tensor, units, keep, names):
        depth = 1 + max(self._depths[s] for s in tensor.terms)
        gid = len(self._groups) + 1
        group = _Group(depth, dict(tensor.terms), tensor.const.copy(), units, keep, names)
        self._groups[gid] = group
        self._depths[gid] = depth
        self._sizes[gid] = group.n_out
        return group

    def _id_of(self, group):
        return next(gid for gid, g in self._groups.items() if g is group)

    def _widened(self, source, matrix):
        """``matrix`` (read from ``source``) with as many columns as the source has now:
        a group gains outputs when max windows are fused into it."""
        matrix = sp.csr_matrix(matrix)
        size = self._sizes[source]
        if matrix.shape[1] == size:
            return matrix
        return sp.csr_matrix((matrix.data, matrix.indices, matrix.indptr),
                             shape=(matrix.shape[0], size))

    def _fusable(self, tensor):
        """(group, u indices) when ``tensor`` is exactly some kept units of one group,
        so its max windows can read them in the same layer; else (None, None)."""
        if len(tensor.terms) != 1 or np.any(tensor.const != 0):
            return None, None
        (gid, matrix), = tensor.terms.items()
        if gid == 0:
            return None, None
        group = self._groups[gid]
        matrix = matrix.tocsr()
        if (np.diff(matrix.indptr) != 1).any() or np.any(matrix.data != 1.0) or \
                matrix.indices.max(initial=-1) >= group.keep.size:
            return None, None
        return group, group.keep[matrix.indices]

    def _needed(self, output, by_depth, depth):
        """Per level (1..depth), the sorted (source, entry) pairs it carries for later
        layers."""
        needed = {level: set() for level in range(1, depth + 2)}
        readers = [(depth + 1, output.terms)]
        for level, gids in by_depth.items():
            readers += [(level, self._groups[g].terms) for g in gids]
        for level, terms in readers:
            for s, m in terms.items():
                columns = np.unique(sp.csr_matrix(m).indices)  # stored entries, as _fill
                for between in range(self._depths[s] + 1, level):
                    needed[between].update((s, int(e)) for e in columns)
        return {level: sorted(pairs) for level, pairs in needed.items()}

    def _read(self, output):
        """Per source, a mask of the outputs some expression (a group's or the
        output's) stores a coefficient for."""
        read = {s: np.zeros(size, bool) for s, size in self._sizes.items()}
        for terms in [output.terms] + [g.terms for g in self._groups.values()]:
            for s, m in terms.items():
                read[s][sp.csr_matrix(m).indices] = True
        return read

    def _kept(self, gid, group, read):
        """Positions in ``group.keep`` the layer outputs: all of them, except that a
        group with max windows (pooling) drops the units nothing reads."""
        if not group.windows:
            return np.arange(group.keep.size)
        return np.flatnonzero(read[gid][:group.keep.size])

    def _layer(self, level, gids, needed, positions, read):
        """Hidden layer ``level - 1``: its groups, then linear units carrying what later
        layers read from earlier ones; returns the layer and the output positions."""
        groups = [self._groups[g] for g in gids]
        carried = [(s, e) for s, e in needed if self._depths[s] < level]
        n_z = sum(g.units.size for g in groups) + len(carried)
        width = _width(positions)
        self._check_size(n_z, width, level - 1)
        weight = np.zeros((n_z, width))
        row = 0
        for g in groups:
            self._fill(weight[row:row + g.units.size], g.terms, positions)
            row += g.units.size
        weight[np.arange(row, n_z), [positions[s][e] for s, e in carried]] = 1.0
        bias = np.concatenate([g.const for g in groups] + [np.zeros(len(carried))])
        units, keep, windows, names, window_names = [], [], [], [], []
        out = {gid: np.full(self._sizes[gid], -1, np.int64) for gid in gids}
        out.update({s: np.full(self._sizes[s], -1, np.int64) for s, _ in carried})
        offset = window_offset = 0
        kept = [self._kept(gid, g, read) for gid, g in zip(gids, groups)]
        total_keep = sum(k.size for k in kept) + len(carried)
        for gid, g, kept_here in zip(gids, groups, kept):
            out[gid][kept_here] = len(keep) + np.arange(kept_here.size)
            keep += (offset + g.keep[kept_here]).tolist()
            out[gid][g.keep.size:] = total_keep + len(windows) + np.arange(len(g.windows))
            windows += [np.where(row >= 0, row + offset, -1) for row in g.windows]
            names += [(offset + start, offset + stop, text) for start, stop, text in g.names]
            window_names += [(window_offset + start, window_offset + stop, text)
                             for start, stop, text in g.window_names]
            window_offset = len(windows)
            units.append(g.units)
            offset += g.units.size
        for s, e in carried:
            out[s][e] = len(keep)
            keep.append(offset)
            offset += 1
        if carried:
            names.append((offset - len(carried), offset, "skip connection"))
            units.append(np.full(len(carried), LINEAR, np.int8))
        width = max((len(w) for w in windows), default=1)
        padded = np.full((len(windows), width), -1, np.int64)
        for i, row in enumerate(windows):
            padded[i, :len(row)] = row
        layer = Layer.build(weight, bias, units=np.concatenate(units), keep=keep,
                            windows=padded, names=names, window_names=window_names)
        return layer, out

    def _fill(self, weight, terms, positions):
        """Add an expression's coefficients to ``weight``, whose columns are the previous
        layer's output positions."""
        for s, m in terms.items():
            coo = sp.coo_matrix(m)
            columns = positions[s][coo.col]
            if (columns < 0).any():
                raise AssertionError("an expression reads a value its layer does not get")
            np.add.at(weight, (coo.row, columns), coo.data)

    def _check_size(self, rows, columns, layer):
        if rows * columns > self.max_parameters:
            raise SizeLimitError(
                f"layer {layer} would need a {rows} x {columns} weight matrix, more than "
                f"max_parameters={self.max_parameters:,} entries")


def _width(positions):
    """Width of a layer's output from its position arrays."""
    return 1 + max((int(p.max(initial=-1)) for p in positions.values()), default=-1)


def _per_entry(value, tensor):
    """A scalar or array ``value`` as one float per entry of ``tensor``'s flattening: an
    array of the tensor's size is taken as flattened, anything else broadcast to its shape."""
    value = np.asarray(value, np.float64)
    if value.size == tensor.size:
        return value.reshape(-1)
    return np.broadcast_to(value, tensor.shape).reshape(-1)
