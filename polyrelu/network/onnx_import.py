"""Load ONNX models of piecewise-linear feed-forward networks into a :class:`Network`.

The graph is interpreted node by node on a :class:`~polyrelu.network.lowering.GraphBuilder`:
every value is either a constant (a numpy array, folded as ONNX would) or a builder tensor,
an affine expression over the input and the outputs of earlier activations. Shapes are
static; a symbolic dimension (the batch) counts as 1.

Supported operators:

* affine: Gemm, MatMul, Conv, ConvTranspose (explicit pads), BatchNormalization
  (inference), AveragePool, GlobalAveragePool, Add, Sub, Sum, Mean, Mul and Div by
  constants, Neg, ReduceSum, ReduceMean;
* piecewise linear: Relu, LeakyRelu, PRelu, Abs, Clip, HardSigmoid, MaxPool,
  GlobalMaxPool, Max, Min, ReduceMax, ReduceMin;
* shapes: Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Slice, Gather (constant
  indices), Pad (constant, reflect, edge, wrap), Concat, Split, Expand, Identity, Dropout,
  Constant, Shape, Cast, ConstantOfShape.

The index arithmetic of Conv, ConvTranspose and the pooling operators (auto_pad,
asymmetric pads, dilations, ceil_mode, count_include_pad, any number of spatial axes) is
:mod:`polyrelu.network.convolution`'s, shared with the torch importer.

Anything else raises :class:`UnsupportedLayerError` naming the operator, the node and the
reason. Kink names carry the node (``"Relu node 'relu_3', unit 5"``).

The file is untrusted: external tensor data is not read, initializer and constant sizes are
checked against ``max_parameters`` from their declared dims before they are converted, and
every array or sparse matrix the interpretation builds is bounded by ``max_parameters``
entries before it is allocated (the builder checks the dense layer matrices).
"""

import dataclasses

import numpy as np
import scipy.sparse as sp

from ..errors import (
    InvalidFileError,
    InvalidNetworkError,
    PolyreluError,
    SizeLimitError,
    UnsupportedLayerError,
    brief,
    clip,
)
from . import convolution as conv
from .lowering import GraphBuilder, Tensor
from .model import MAX_PARAMETERS

__all__ = ["from_onnx"]

_NOT_PIECEWISE_LINEAR = {
    "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Exp", "Log", "Sqrt", "Pow", "Elu", "Selu",
    "Celu", "Gelu", "Softplus", "Softsign", "Erf", "HardSwish", "Mish", "Sin", "Cos", "Tan",
    "Reciprocal", "LpNormalization", "LRN", "InstanceNormalization", "LayerNormalization",
    "GroupNormalization", "ReduceL1", "ReduceL2", "ReduceLogSumExp", "ReduceProd",
    "ReduceSumSquare", "LpPool", "GlobalLpPool", "Einsum"}
_DISCONTINUOUS = {"Floor", "Ceil", "Round", "Sign", "ThresholdedRelu", "Shrink", "ArgMax",
                  "ArgMin", "Greater", "Less", "Equal", "Where", "Not", "And", "Or", "Mod"}

#: Outputs beyond the first that some operators have, refused when requested.
_EXTRA_OUTPUTS = {"MaxPool": "the Indices output", "Dropout": "the mask output",
                  "BatchNormalization": "the running statistics (training mode)"}


def from_onnx(model_or_path, *, max_parameters=MAX_PARAMETERS, allow_extreme_numerics=False):
    """Network from an ONNX model (a path or an ``onnx.ModelProto``).

    The model must have one non-constant input and one output and use only the operators
    listed in the module docstring; a Gemm/MatMul + Relu chain gives a ReLU MLP
    (:attr:`Network.is_relu_mlp`).

    Parameters
    ----------
    model_or_path : str, Path or onnx.ModelProto
    max_parameters : int
        Limit on the entries of the initializers and constants in all, on every array and
        sparse matrix the interpretation builds and on each layer's dense weight matrix
        (see :data:`polyrelu.network.model.MAX_PARAMETERS`).
    allow_extreme_numerics : bool, default False
        Passed to :class:`polyrelu.Network`.

    Raises
    ------
    UnsupportedLayerError
        For an operator or an attribute outside what is supported; the message names the
        operator, the node and the reason.
    InvalidNetworkError
        For a malformed graph (an undefined input, a cycle, bad attributes or shapes).
    InvalidFileError
        If the file cannot be parsed as ONNX or stores tensors in external files.
    SizeLimitError
        If a tensor or a matrix to build exceeds ``max_parameters``.
    """
    from onnx import numpy_helper

    model = _read(model_or_path)
    graph = model.graph
    budget = _Budget(max_parameters, numpy_helper)
    values = {t.name: budget.tensor(t) for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in values]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise UnsupportedLayerError(
            f"the ONNX graph must have one input and one output, it has inputs "
            f"{clip([i.name for i in inputs])} and outputs {clip([o.name for o in graph.output])}"
        )
    shape = _input_shape(inputs[0])
    budget.entries(shape, f"the input {clip(inputs[0].name)!r}")
    builder = GraphBuilder(shape, max_parameters=max_parameters)
    values[inputs[0].name] = builder.input
    importer = _Importer(builder, values, budget)
    for node in graph.node:
        importer.run(node)
    result = values.get(graph.output[0].name)
    if result is None:
        raise InvalidNetworkError(f"the ONNX output {clip(graph.output[0].name)!r} is not "
                                  "computed by any node")
    return builder.network(importer.tensor(result),
                           allow_extreme_numerics=allow_extreme_numerics)


def _read(model_or_path):
    import onnx

    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path
    try:
        return onnx.load(str(model_or_path), load_external_data=False)
    except Exception as err:  # onnx raises several unrelated types
        raise InvalidFileError(f"{model_or_path}: cannot be read as ONNX "
                               f"({brief(err)})") from err


def _input_shape(value_info):
    dims = [d.dim_value if d.dim_value > 0 else 1 for d in value_info.type.tensor_type.shape.dim]
    return tuple(dims) if dims else (1,)


class _Budget:
    """Checks sizes against ``max_parameters`` before anything of that size is made."""

    def __init__(self, max_parameters, numpy_helper):
        self.limit, self.used, self.numpy_helper = max_parameters, 0, numpy_helper

    def tensor(self, tensor):
        """A file tensor (initializer or constant), counted on the budget: float64 for
        floating types, the file's integer or boolean type otherwise."""
        import onnx

        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            raise InvalidFileError(f"tensor {clip(tensor.name)!r} is stored in an external "
                                   "file; polyrelu reads only self-contained ONNX files")
        dims = list(tensor.dims)
        if any(d < 0 for d in dims):
            raise InvalidFileError(f"tensor {clip(tensor.name)!r} has negative dims {clip(dims)}")
        self.used += int(np.prod(dims, dtype=object))
        if self.used > self.limit:
            raise SizeLimitError(f"the ONNX tensors hold more than max_parameters = "
                                 f"{self.limit} entries (from their declared dims); pass a "
                                 "larger max_parameters (--max-parameters) to load the file")
        try:
            array = np.asarray(self.numpy_helper.to_array(tensor))
        except Exception as err:  # onnx raises several unrelated types on damaged tensors
            raise InvalidFileError(f"tensor {clip(tensor.name)!r} cannot be read "
                                   f"({brief(err)})") from err
        if array.dtype.kind in "fc":
            return array.astype(np.float64)
        if array.dtype.kind in "iub":
            return array.astype(np.int64) if array.dtype.kind != "b" else array
        raise UnsupportedLayerError(f"tensor {clip(tensor.name)!r} has type {array.dtype}, "
                                    "not a number")

    def entries(self, shape, what):
        """The number of entries of ``shape`` if it fits in ``max_parameters``; else a
        :class:`SizeLimitError` naming ``what``."""
        entries = int(np.prod([int(s) for s in shape], dtype=object))
        if entries > self.limit:
            raise SizeLimitError(f"{what} needs {entries} entries (shape {clip(tuple(shape))}), "
                                 f"more than max_parameters = {self.limit}; pass a larger "
                                 "max_parameters (--max-parameters) to load the file")
        return entries


_MALFORMED = (ValueError, IndexError, TypeError, KeyError, ZeroDivisionError, OverflowError,
              AttributeError, MemoryError)


def _attribute(attribute, budget):
    import onnx

    kind = attribute.type
    if kind == onnx.AttributeProto.FLOAT:
        return attribute.f
    if kind == onnx.AttributeProto.INT:
        return attribute.i
    if kind == onnx.AttributeProto.INTS:
        return list(attribute.ints)
    if kind == onnx.AttributeProto.FLOATS:
        return list(attribute.floats)
    if kind == onnx.AttributeProto.TENSOR:
        return budget.tensor(attribute.t)
    if kind == onnx.AttributeProto.STRING:
        return attribute.s.decode(errors="replace")
    return None


def _shape(value):
    return tuple(value.shape)


def _size(shape):
    return int(np.prod(shape, dtype=np.int64))


class _Importer:
    """Runs the nodes of a graph on a :class:`GraphBuilder`."""

    def __init__(self, builder, values, budget):
        self.builder = builder
        self.values = values
        self.budget = budget
        self.node = None

    # -- running nodes -----------------------------------------------------------------
    def run(self, node):
        """Interpret one node, storing its outputs in ``values``."""
        self.node = node
        op = node.op_type
        handler = getattr(self, f"_op_{op}", None)
        if node.domain not in ("", "ai.onnx") or handler is None:
            raise UnsupportedLayerError(
                f"ONNX operator {clip(op)} (node {self._name()!r}) is not supported: "
                f"{_why_unsupported(op, node.domain)}")
        for name in node.input:
            if name and name not in self.values:
                raise InvalidNetworkError(
                    f"ONNX node {self._name()!r}: input {clip(name)!r} is not defined before "
                    "it (an undefined name, a cycle, or nodes out of order)")
        if len(node.output) == 0:
            raise InvalidNetworkError(f"ONNX node {self._name()!r} has no output")
        try:
            attrs = {a.name: _attribute(a, self.budget) for a in node.attribute}
            args = [self.values[name] if name else None for name in node.input]
            outputs = handler(args, attrs)
            self._store(outputs if isinstance(outputs, tuple) else (outputs,))
        except PolyreluError:
            raise
        except _MALFORMED as err:
            raise InvalidNetworkError(f"ONNX {self._desc()} is malformed "
                                      f"({brief(err)})") from err

    def _store(self, outputs):
        names = list(self.node.output)
        extra = [name for name in names[len(outputs):] if name]
        if extra:
            what = _EXTRA_OUTPUTS.get(self.node.op_type, f"output {clip(extra[0])!r}")
            self._fail(f"{what} is not supported")
        for name, value in zip(names, outputs):
            if name:
                self.values[name] = self._normal(value)

    def _name(self):
        return clip(self.node.name or (self.node.output[0] if self.node.output else "?"))

    def _desc(self):
        """``"Relu node 'relu_3'"``: the provenance given to the builder and to errors."""
        return f"{clip(self.node.op_type, 40)} node {self._name()!r}"

    def _fail(self, why):
        raise UnsupportedLayerError(f"ONNX {self._desc()}: {why}")

    def _bad(self, why):
        raise InvalidNetworkError(f"ONNX {self._desc()}: {why}")

    # -- values ------------------------------------------------------------------------
    @staticmethod
    def _normal(value):
        """Constants as numpy arrays, input-dependent values as builder tensors."""
        if isinstance(value, Tensor):
            return value.const.reshape(value.shape) if value.is_constant else value
        return np.asarray(value)

    def tensor(self, value):
        """``value`` as a builder tensor (constants lifted, as float64)."""
        if isinstance(value, Tensor):
            return value
        return self.builder.constant(np.asarray(value, dtype=np.float64))

    def _constant(self, value, what):
        if value is None or isinstance(value, Tensor):
            self._fail(f"{what} must be a constant")
        return np.asarray(value)

    def _ints(self, value, what):
        return [int(v) for v in self._constant(value, what).reshape(-1)]

    def _entries(self, shape):
        return self.budget.entries(shape, f"ONNX {self._desc()}")

    def _index(self, shape):
        """``arange`` of a tensor of ``shape`` (its size checked first)."""
        shape = tuple(int(s) for s in shape)
        if any(s < 0 for s in shape):
            self._bad(f"negative dimension in shape {clip(shape)}")
        self._entries(shape)
        return np.arange(_size(shape)).reshape(shape)

    def _take(self, value, index):
        """Entries ``index`` (-1: zero) of the flattened value: every shape operation."""
        if isinstance(value, Tensor):
            self._check_product(value, index.reshape(-1))
            return self.builder.take(value, index)
        flat = value.reshape(-1)
        if flat.size == 0:
            return np.zeros(index.shape, value.dtype)
        return np.where(index >= 0, flat[np.maximum(index, 0)], 0).astype(value.dtype)

    def _reshaped(self, value, shape):
        shape = tuple(int(s) for s in shape)
        if _size(shape) != _size(_shape(value)):
            self._bad(f"cannot reshape {clip(_shape(value))} to {clip(shape)}")
        if isinstance(value, Tensor):
            return dataclasses.replace(value, shape=shape)
        return value.reshape(shape)

    def _broadcast(self, value, shape):
        if _shape(value) == tuple(shape):
            return value
        return self._take(value, np.broadcast_to(self._index(_shape(value)), shape))

    def _linear(self, value, matrix, offset, shape):
        """``matrix @ value + offset`` shaped ``shape``, the product's size bounded first."""
        matrix = sp.csr_matrix(matrix)
        if not isinstance(value, Tensor):
            result = matrix @ np.asarray(value, np.float64).reshape(-1)
            return (result + (0.0 if offset is None else np.reshape(offset, -1))).reshape(shape)
        self._check_product(value, matrix)
        return self.builder.linear(value, matrix, offset, shape)

    def _check_product(self, tensor, matrix):
        """Bound the nonzeros of the coefficients of ``matrix @ tensor`` (``matrix``
        sparse, or a 1-D array of selected entries, -1 for none) before forming them."""
        total = 0
        for m in tensor.terms.values():
            per_row = np.diff(m.tocsr().indptr)
            if isinstance(matrix, np.ndarray):
                total += int(per_row[matrix[matrix >= 0]].sum())
            else:
                pattern = sp.csr_matrix((np.ones(matrix.nnz), matrix.indices, matrix.indptr),
                                        shape=matrix.shape)
                total += int(np.minimum(pattern @ per_row, m.shape[1]).sum())
        if total > self.budget.limit:
            raise SizeLimitError(
                f"ONNX {self._desc()}: its affine map would have up to {total} nonzero "
                f"coefficients, more than max_parameters = {self.budget.limit}; pass a "
                "larger max_parameters (--max-parameters) to load the file")

    def _check_units(self, tensor, pieces):
        """Refuse an activation whose layer's weight matrix would be too large (at least
        its units times the number of values it reads)."""
        width = sum(np.unique(sp.csr_matrix(m).indices).size for m in tensor.terms.values())
        rows = tensor.size * pieces
        if rows * width > self.budget.limit:
            raise SizeLimitError(
                f"ONNX {self._desc()}: its layer would need a {rows} x {width} (at "
                f"least) weight matrix, more than max_parameters = {self.budget.limit}; "
                "pass a larger max_parameters (--max-parameters) to load the file")

    # -- constants and plumbing --------------------------------------------------------
    def _op_Constant(self, args, attrs):
        if attrs.get("value") is None:
            self._fail("only Constant nodes with a tensor 'value' are supported")
        return attrs["value"]

    def _op_Identity(self, args, attrs):
        return args[0]

    def _op_Dropout(self, args, attrs):
        if len(args) > 2 and args[2] is not None and np.any(self._constant(args[2], "training")):
            self._fail("training_mode = true is not supported")
        return args[0]

    def _op_Shape(self, args, attrs):
        shape = _shape(args[0])
        start, end = attrs.get("start", 0), attrs.get("end", len(shape))
        return np.array(shape[slice(start, end)], dtype=np.int64)

    def _op_Cast(self, args, attrs):
        from onnx import helper

        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(attrs.get("to", 1)))
        if isinstance(args[0], Tensor):
            if dtype.kind != "f":
                self._fail(f"casting an input-dependent tensor to {dtype} is not supported")
            return args[0]
        return args[0].astype(np.float64 if dtype.kind in "fc" else dtype)

    def _op_ConstantOfShape(self, args, attrs):
        shape = self._ints(args[0], "the shape")
        value = attrs.get("value", np.zeros(1))
        self._entries(shape)
        return np.full(shape, np.asarray(value).reshape(-1)[0])

    # -- shapes ------------------------------------------------------------------------
    def _axis(self, axis, rank, extra=0):
        """``axis`` in 0..rank-1+extra (negative counts from the end)."""
        axis = int(axis)
        if not -(rank + extra) <= axis < rank + extra:
            self._bad(f"axis {axis} is out of range for rank {rank}")
        return axis % (rank + extra)

    def _op_Flatten(self, args, attrs):
        shape = _shape(args[0])
        axis = self._axis(attrs.get("axis", 1), len(shape), 1)
        return self._reshaped(args[0], (_size(shape[:axis]), _size(shape[axis:])))

    def _op_Reshape(self, args, attrs):
        if len(args) < 2 or args[1] is None or isinstance(args[1], Tensor):
            self._bad("needs a constant target shape")
        target = self._ints(args[1], "the target shape")
        shape = _shape(args[0])
        zero_copies = not attrs.get("allowzero", 0)
        if (any(s < -1 for s in target) or target.count(-1) > 1
                or (zero_copies and any(s == 0 and i >= len(shape) for i, s in enumerate(target)))):
            self._bad(f"bad target shape {clip(target)} for a tensor of shape {clip(shape)}")
        if zero_copies:
            target = [shape[i] if s == 0 else s for i, s in enumerate(target)]
        if -1 in target:
            known = int(np.prod([s for s in target if s != -1], dtype=object))
            if known == 0:
                self._bad(f"bad target shape {clip(target)} for a tensor of shape {clip(shape)}")
            target[target.index(-1)] = _size(shape) // known
        return self._reshaped(args[0], target)

    def _axes_of(self, args, attrs, position=1):
        """The ``axes`` input (newer opsets) or attribute (older ones), or None."""
        if len(args) > position and args[position] is not None:
            return self._ints(args[position], "axes")
        return attrs.get("axes")

    def _op_Squeeze(self, args, attrs):
        shape = _shape(args[0])
        axes = self._axes_of(args, attrs)
        if axes:
            axes = {self._axis(a, len(shape)) for a in axes}
            if any(shape[a] != 1 for a in axes):
                self._bad(f"cannot squeeze axes {clip(sorted(axes))} of shape {clip(shape)}")
        else:
            axes = {i for i, size in enumerate(shape) if size == 1}
        return self._reshaped(args[0], [s for i, s in enumerate(shape) if i not in axes])

    def _op_Unsqueeze(self, args, attrs):
        shape = list(_shape(args[0]))
        axes = self._axes_of(args, attrs)
        if not axes:
            self._bad("needs axes")
        rank = len(shape) + len(axes)
        axes = sorted({self._axis(a, rank) for a in axes})
        if len(axes) != rank - len(shape):
            self._bad("repeats an axis")
        for axis in axes:
            shape.insert(axis, 1)
        return self._reshaped(args[0], shape)

    def _op_Transpose(self, args, attrs):
        shape = _shape(args[0])
        perm = attrs.get("perm", list(range(len(shape)))[::-1])
        if sorted(perm) != list(range(len(shape))):
            self._bad(f"perm {clip(perm)} is not a permutation of the {len(shape)} axes")
        return self._take(args[0], self._index(shape).transpose(perm))

    def _op_Slice(self, args, attrs):
        shape = _shape(args[0])
        if len(args) > 1:  # opset 10+: inputs starts, ends, axes, steps
            starts, ends = (self._ints(a, name) for a, name in zip(args[1:3], ("starts", "ends")))
            axes = self._axes_of(args, {}, 3)
            steps = self._ints(args[4], "steps") if len(args) > 4 and args[4] is not None else None
        else:
            starts, ends, axes, steps = (attrs.get(k) for k in ("starts", "ends", "axes", "steps"))
        axes = list(range(len(starts))) if axes is None else axes
        steps = [1] * len(starts) if steps is None else steps
        if not len(starts) == len(ends) == len(axes) == len(steps) or 0 in steps:
            self._bad("starts, ends, axes and steps must have one nonzero entry per axis")
        where = [slice(None)] * len(shape)
        for start, end, axis, step in zip(starts, ends, axes, steps):
            where[self._axis(axis, len(shape))] = slice(start, end, step)
        return self._take(args[0], self._index(shape)[tuple(where)])

    def _op_Gather(self, args, attrs):
        shape = _shape(args[0])
        indices = self._constant(args[1], "the indices")
        if indices.dtype.kind not in "iu":
            self._bad("indices must be integers")
        axis = self._axis(attrs.get("axis", 0), len(shape))
        if indices.size and not (-shape[axis] <= indices.min() and indices.max() < shape[axis]):
            self._bad(f"indices out of range for axis {axis} of length {shape[axis]}")
        self._entries(shape[:axis] + indices.shape + shape[axis + 1:])
        return self._take(args[0], np.take(self._index(shape), indices, axis=axis))

    def _op_Concat(self, args, attrs):
        shapes = [_shape(a) for a in args]
        axis = self._axis(attrs.get("axis", 0), len(shapes[0]))
        if all(not isinstance(a, Tensor) for a in args):
            return np.concatenate(args, axis=axis)
        offsets = np.cumsum([0] + [_size(s) for s in shapes])
        index = np.concatenate([start + self._index(s) for start, s in zip(offsets, shapes)],
                               axis=axis)
        stacked = self.builder.stack([self.tensor(a) for a in args])
        return self._take(stacked, index)

    def _op_Split(self, args, attrs):
        shape = _shape(args[0])
        axis = self._axis(attrs.get("axis", 0), len(shape))
        parts = (self._ints(args[1], "split") if len(args) > 1 and args[1] is not None
                 else attrs.get("split"))
        if parts is None:
            count = attrs.get("num_outputs", len(self.node.output))
            parts = [-(-shape[axis] // count)] * count
            parts[-1] = shape[axis] - sum(parts[:-1])
        if sum(parts) != shape[axis] or min(parts) < 0:
            self._bad(f"split {clip(parts)} does not add up to {shape[axis]}")
        pieces = np.split(self._index(shape), np.cumsum(parts)[:-1], axis=axis)
        return tuple(self._take(args[0], piece) for piece in pieces)

    def _op_Expand(self, args, attrs):
        target = np.broadcast_shapes(_shape(args[0]), tuple(self._ints(args[1], "the shape")))
        return self._broadcast(args[0], target)

    def _op_Pad(self, args, attrs):
        shape = _shape(args[0])
        pads = self._ints(args[1], "pads") if len(args) > 1 else attrs.get("pads")
        value = attrs.get("value", 0.0)
        if len(args) > 2 and args[2] is not None:
            given = self._constant(args[2], "constant_value").reshape(-1)
            value = float(given[0]) if given.size else 0.0
        axes = self._axes_of(args, {}, 3) or list(range(len(shape)))
        mode = attrs.get("mode", "constant")
        if pads is None or len(pads) != 2 * len(axes):
            self._bad(f"pads must have two entries per axis, got {clip(pads)}")
        widths = [(0, 0)] * len(shape)
        for i, axis in enumerate(axes):
            widths[self._axis(axis, len(shape))] = (pads[i], pads[i + len(axes)])
        index = self._padded(self._index(shape), widths, mode)
        result = self._take(args[0], index)
        if mode == "constant" and value != 0.0:
            return self._add(result, np.where(index < 0, value, 0.0))
        return result

    def _padded(self, index, widths, mode):
        """``np.pad`` of an index array (negative widths crop), -1 in constant padding."""
        if mode not in ("constant", "reflect", "edge", "wrap"):
            self._fail(f"mode {clip(mode)!r} is not supported")
        grown = [(max(b, 0), max(e, 0)) for b, e in widths]
        self._entries([n + b + e for n, (b, e) in zip(index.shape, grown)])
        room = {"reflect": 1, "wrap": 0}.get(mode)  # pads at most n - room entries
        if room is not None and any(max(b, e) > n - room for n, (b, e) in
                                    zip(index.shape, grown) if b or e):
            self._bad(f"{mode} padding {clip(widths)} is wider than the axes allow")
        options = {"constant_values": -1} if mode == "constant" else {}
        padded = np.pad(index, grown, mode=mode, **options) if index.size else index
        crop = tuple(slice(-min(b, 0), n - (-min(e, 0)))
                     for n, (b, e) in zip(padded.shape, widths))
        return padded[crop]

    # -- element-wise affine -----------------------------------------------------------
    def _broadcast_all(self, args):
        args = [a if isinstance(a, Tensor) else np.asarray(a) for a in args]
        shape = np.broadcast_shapes(*[_shape(a) for a in args])
        self._entries(shape)
        return shape, [self._broadcast(a, shape) for a in args]

    def _add(self, *args):
        shape, args = self._broadcast_all(args)
        constants = [a for a in args if not isinstance(a, Tensor)]
        tensors = [a for a in args if isinstance(a, Tensor)]
        offset = sum(constants, np.zeros(shape)).reshape(-1) if constants else 0.0
        if not tensors:
            return np.sum(constants, axis=0)
        total = self.builder.add(*tensors) if len(tensors) > 1 else tensors[0]
        return dataclasses.replace(total, shape=shape, const=total.const + offset)

    def _scale(self, value, factor):
        if not isinstance(value, Tensor):
            return value * factor
        self._entries(np.broadcast_shapes(_shape(value), np.shape(factor)))
        return self.builder.scale(value, factor)

    def _op_Add(self, args, attrs):
        return self._add(*args[:2])

    def _op_Sum(self, args, attrs):
        return self._add(*args)

    def _op_Mean(self, args, attrs):
        return self._scale(self._add(*args), 1.0 / len(args))

    def _op_Neg(self, args, attrs):
        return self._scale(args[0], -1.0)

    def _op_Sub(self, args, attrs):
        return self._add(args[0], self._scale(args[1], -1.0))

    def _op_Mul(self, args, attrs):
        x, y = args
        if isinstance(x, Tensor) and isinstance(y, Tensor):
            self._fail("Mul of two non-constant tensors is not piecewise linear")
        if isinstance(y, Tensor):
            x, y = y, x
        if not isinstance(x, Tensor):
            self._entries(np.broadcast_shapes(x.shape, y.shape))
            return x * y
        shape = np.broadcast_shapes(_shape(x), y.shape)
        self._entries(shape)
        factor = np.broadcast_to(np.asarray(y, np.float64), shape)
        return self._scale(self._broadcast(x, shape), factor)

    def _op_Div(self, args, attrs):
        x, y = args
        if isinstance(y, Tensor):
            self._fail("Div by a non-constant tensor is not piecewise linear")
        if not isinstance(x, Tensor):
            self._entries(np.broadcast_shapes(x.shape, y.shape))
            if x.dtype.kind in "iu" and y.dtype.kind in "iu":
                return np.trunc(x / y).astype(np.int64)
            return x / y
        if np.any(y == 0):
            self._fail("divides by zero")
        return self._op_Mul([x, 1.0 / np.asarray(y, np.float64)], {})

    # -- matrix products ---------------------------------------------------------------
    def _op_MatMul(self, args, attrs):
        a, b = args
        if isinstance(a, Tensor) and isinstance(b, Tensor):
            self._fail("MatMul of two non-constant tensors is not piecewise linear")
        if not isinstance(a, Tensor) and not isinstance(b, Tensor):
            self._entries(np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
                          + a.shape[-2:-1] + b.shape[-1:])
            return np.matmul(a, b)
        if isinstance(a, Tensor):
            return self._right_product(a, np.asarray(b, np.float64))
        return self._left_product(np.asarray(a, np.float64), b)

    def _right_product(self, x, weight):
        """``x @ weight`` for a constant 1-D or 2-D ``weight``."""
        shape = _shape(x)
        if weight.ndim not in (1, 2) or not shape or shape[-1] != weight.shape[0]:
            self._fail(f"needs a 1-D or 2-D constant with {shape[-1:]} rows, got "
                       f"{clip(weight.shape)}")
        rows = _size(shape[:-1])
        columns = weight.reshape(weight.shape[0], -1)
        self._entries((rows, columns.size))
        matrix = sp.kron(sp.identity(rows), sp.csr_matrix(columns.T), format="csr")
        return self._linear(x, matrix, None, shape[:-1] + weight.shape[1:])

    def _left_product(self, weight, x):
        """``weight @ x`` for a constant 1-D or 2-D ``weight``."""
        shape = _shape(x)
        vector = len(shape) == 1
        shape = shape + (1,) if vector else shape
        if weight.ndim not in (1, 2) or weight.shape[-1] != shape[-2]:
            self._fail(f"needs a 1-D or 2-D constant with {shape[-2]} columns, got "
                       f"{clip(weight.shape)}")
        rows = weight.reshape(-1, weight.shape[-1])
        batch, n = _size(shape[:-2]), shape[-1]
        self._entries((batch, rows.size, n))
        matrix = sp.kron(sp.identity(batch), sp.kron(sp.csr_matrix(rows), sp.identity(n)),
                         format="csr")
        out = shape[:-2] + weight.shape[:-1] + (() if vector else (n,))
        return self._linear(x, matrix, None, out)

    def _op_Gemm(self, args, attrs):
        a, b = args[0], args[1]
        if len(_shape(a)) != 2 or len(_shape(b)) != 2:
            self._bad(f"needs 2-D operands, got shapes {clip(_shape(a))} and {clip(_shape(b))}")
        if attrs.get("transA", 0):
            a = self._op_Transpose([a], {})
        if attrs.get("transB", 0):
            b = self._op_Transpose([b], {})
        alpha = attrs.get("alpha", 1.0)
        if isinstance(b, Tensor):
            a = self._scale(a, alpha)
        else:
            b = self._scale(b, alpha)
        out = self._op_MatMul([a, b], {})
        if len(args) > 2 and args[2] is not None:
            out = self._add(out, self._scale(args[2], attrs.get("beta", 1.0)))
        return out

    # -- convolution, normalisation, pooling -------------------------------------------
    def _window_args(self, x, kernel, attrs, *, pooling=False):
        """(strides, (begin, end) pads, dilations, ceil_mode) of a Conv or pooling node
        reading ``x`` (N, C, *spatial) with a window of ``kernel`` taps, auto_pad
        resolved; ceil_mode only for pooling."""
        shape = _shape(x)
        dims = len(shape) - 2
        if dims < 1 or len(kernel) != dims:
            self._bad(f"needs an (N, C, ...) input and a kernel per spatial axis, got shapes "
                      f"{clip(shape)} and {clip(list(kernel))}")
        strides = self._per_axis(attrs, "strides", dims, 1, 1)
        dilations = self._per_axis(attrs, "dilations", dims, 1, 1)
        pads = self._per_axis(attrs, "pads", 2 * dims, 0, 0)
        auto = attrs.get("auto_pad", "NOTSET")
        if auto == "NOTSET":
            pairs = tuple(zip(pads[:dims], pads[dims:]))
        elif auto == "VALID":
            pairs = ((0, 0),) * dims
        elif auto in ("SAME_UPPER", "SAME_LOWER"):
            if max(dilations) > 1:
                self._fail(f"auto_pad {auto} with dilations > 1 is not supported (onnxruntime "
                           "and the ONNX definition pad it differently; give explicit pads)")
            pairs = self._geometry(conv.same_padding, shape[2:], kernel, strides,
                                   lower=auto == "SAME_LOWER")
        else:
            self._bad(f"auto_pad {clip(auto)!r} is not one of NOTSET, SAME_UPPER, SAME_LOWER, "
                      "VALID")
        return strides, pairs, dilations, bool(attrs.get("ceil_mode", 0)) and pooling

    def _per_axis(self, attrs, name, count, default, minimum):
        values = attrs.get(name, [default] * count)
        if not isinstance(values, list) or len(values) != count or min(values) < minimum:
            self._bad(f"{name} must be {count} integers >= {minimum}, got {clip(values)}")
        return values

    def _geometry(self, function, *args, max_entries=None, **options):
        """A :mod:`~polyrelu.network.convolution` function, its errors naming the node."""
        try:
            return function(*args, **options) if max_entries is None else \
                function(*args, max_entries=max_entries, **options)
        except SizeLimitError as err:
            raise SizeLimitError(f"ONNX {self._desc()}: {err}; pass a larger max_parameters "
                                 "(--max-parameters) to load the file") from err
        except InvalidNetworkError as err:
            self._bad(str(err))

    def _per_sample(self, x, function, weight, *args):
        """A (transposed) convolution's matrix over the batch of ``x`` (N, C, *spatial)
        and its output shape."""
        shape = _shape(x)
        matrix, out = self._geometry(function, weight, shape[1:], *args,
                                     max_entries=self.budget.limit // max(shape[0], 1))
        if shape[0] != 1:
            matrix = sp.kron(sp.identity(shape[0]), matrix, format="csr")
        return matrix, shape[:1] + out

    def _conv_weight(self, x, args, attrs, channels_axis):
        shape = _shape(x)
        weight = self._constant(args[1], "the weight").astype(np.float64)
        group = attrs.get("group", 1)
        kernel = attrs.get("kernel_shape", list(weight.shape[2:]))
        if (weight.ndim != len(shape) or list(weight.shape[2:]) != list(kernel) or group < 1
                or shape[1] != weight.shape[channels_axis] * (group if channels_axis else 1)
                or weight.shape[0] % group):
            self._bad(f"weight of shape {clip(weight.shape)} (group {group}, kernel_shape "
                      f"{clip(kernel)}) does not fit an input of shape {clip(shape)}")
        bias = (self._constant(args[2], "the bias").astype(np.float64)
                if len(args) > 2 and args[2] is not None else None)
        return weight, group, bias

    def _with_bias(self, x, matrix, bias, out_shape):
        offset = None
        if bias is not None:
            channels = (1, out_shape[1]) + (1,) * (len(out_shape) - 2)
            offset = np.broadcast_to(bias.reshape(channels), out_shape)
        return self._linear(x, matrix, offset, out_shape)

    def _op_Conv(self, args, attrs):
        x = args[0]
        weight, group, bias = self._conv_weight(x, args, attrs, 1)
        strides, pads, dilations, _ = self._window_args(x, weight.shape[2:], attrs)
        matrix, out = self._per_sample(x, conv.conv_matrix, weight, strides, pads, dilations,
                                       group)
        return self._with_bias(x, matrix, bias, out)

    def _op_ConvTranspose(self, args, attrs):
        x = args[0]
        weight, group, bias = self._conv_weight(x, args, attrs, 0)
        if attrs.get("output_shape") is not None or attrs.get("auto_pad", "NOTSET") != "NOTSET":
            self._fail("output_shape and auto_pad are not supported (give pads)")
        dims = len(_shape(x)) - 2
        strides = self._per_axis(attrs, "strides", dims, 1, 1)
        dilations = self._per_axis(attrs, "dilations", dims, 1, 1)
        pads = self._per_axis(attrs, "pads", 2 * dims, 0, 0)
        extra = self._per_axis(attrs, "output_padding", dims, 0, 0)
        matrix, out = self._per_sample(x, conv.conv_transpose_matrix, weight, strides,
                                       tuple(zip(pads[:dims], pads[dims:])), extra,
                                       dilations, group)
        return self._with_bias(x, matrix, bias, out)

    def _op_BatchNormalization(self, args, attrs):
        if attrs.get("training_mode", 0):
            self._fail("training_mode = 1 is not supported (only the inference form)")
        x = args[0]
        scale, shift, mean, var = (self._constant(a, name).astype(np.float64) for a, name in
                                   zip(args[1:5], ("scale", "B", "mean", "var")))
        shape = _shape(x)
        factor, offset = conv.batch_norm_affine(mean, var, attrs.get("epsilon", 1e-5), scale,
                                                shift)
        per_channel = (shape[1],) + (1,) * (len(shape) - 2) if factor.ndim == 1 else factor.shape
        factor, offset = (np.broadcast_to(v.reshape(per_channel), shape) for v in (factor, offset))
        return self._add(self._scale(x, factor), offset)

    def _pool_args(self, x, attrs, global_pool):
        """(input shape, kernel, strides, pads, dilations, ceil_mode) of a pooling node."""
        shape = _shape(x)
        if global_pool:
            kernel, attrs = shape[2:], {}
        else:
            kernel = attrs.get("kernel_shape")
            if kernel is None:
                self._bad("needs kernel_shape")
        return (shape, kernel) + self._window_args(x, kernel, attrs, pooling=True)

    def _max_pool(self, args, attrs, global_pool=False):
        shape, kernel, strides, pads, dilations, ceil = self._pool_args(args[0], attrs,
                                                                        global_pool)
        windows, out = self._geometry(conv.pool_windows, shape, kernel, strides, pads,
                                      dilations, ceil, max_entries=self.budget.limit)
        return self.builder.max_windows(self.tensor(args[0]), windows, out, name=self._desc())

    def _average_pool(self, args, attrs, global_pool=False):
        shape, kernel, strides, pads, dilations, ceil = self._pool_args(args[0], attrs,
                                                                        global_pool)
        matrix, out = self._geometry(
            conv.avg_pool_matrix, shape, kernel, strides, pads, ceil,
            bool(attrs.get("count_include_pad", 0)), None, dilations,
            max_entries=self.budget.limit)
        return self._linear(args[0], matrix, None, out)

    def _op_MaxPool(self, args, attrs):
        return self._max_pool(args, attrs)

    def _op_GlobalMaxPool(self, args, attrs):
        return self._max_pool(args, attrs, global_pool=True)

    def _op_AveragePool(self, args, attrs):
        return self._average_pool(args, attrs)

    def _op_GlobalAveragePool(self, args, attrs):
        return self._average_pool(args, attrs, global_pool=True)

    # -- reductions --------------------------------------------------------------------
    def _reduced(self, args, attrs):
        """(rows of flat indices to reduce, out shape) of a Reduce* node."""
        shape = _shape(args[0])
        axes = self._axes_of(args, attrs)
        if axes is None or not axes:
            if attrs.get("noop_with_empty_axes", 0):
                return None, shape
            axes = list(range(len(shape)))
        axes = sorted({self._axis(a, len(shape)) for a in axes})
        self._index(shape)  # its size checked
        return conv.reduction_windows(shape, axes, attrs.get("keepdims", 1))

    def _reduce_linear(self, args, attrs, mean):
        rows, out = self._reduced(args, attrs)
        if rows is None:
            return args[0]
        if mean and rows.shape[1] == 0:
            self._bad("averages over an empty axis")
        matrix = conv.window_matrix(rows, _size(_shape(args[0])), mean=mean)
        return self._linear(args[0], matrix, None, out)

    def _reduce_max(self, args, attrs, sign):
        rows, out = self._reduced(args, attrs)
        if rows is None:
            return args[0]
        if rows.shape[1] == 0:
            self._bad("reduces over an empty axis")
        x = self._scale(self.tensor(args[0]), sign)
        return self._scale(self.builder.max_windows(x, rows, out, name=self._desc()), sign)

    def _op_ReduceSum(self, args, attrs):
        return self._reduce_linear(args, attrs, mean=False)

    def _op_ReduceMean(self, args, attrs):
        return self._reduce_linear(args, attrs, mean=True)

    def _op_ReduceMax(self, args, attrs):
        return self._reduce_max(args, attrs, 1.0)

    def _op_ReduceMin(self, args, attrs):
        return self._reduce_max(args, attrs, -1.0)

    # -- element-wise piecewise linear -------------------------------------------------
    def _activation(self, value, pieces, method, *args):
        x = self.tensor(value)
        self._check_units(x, pieces)
        return method(x, *args, name=self._desc())

    def _op_Relu(self, args, attrs):
        return self._activation(args[0], 1, self.builder.relu)

    def _op_LeakyRelu(self, args, attrs):
        return self._activation(args[0], 2, self.builder.leaky_relu, attrs.get("alpha", 0.01))

    def _op_PRelu(self, args, attrs):
        slope = self._constant(args[1], "the slope").astype(np.float64)
        slope = np.broadcast_to(slope, _shape(args[0]))
        return self._activation(args[0], 2, self.builder.leaky_relu, slope)

    def _op_Abs(self, args, attrs):
        return self._activation(args[0], 2, self.builder.abs)

    def _op_Clip(self, args, attrs):
        bounds = [attrs.get("min"), attrs.get("max")]
        for i in (0, 1):
            if len(args) > i + 1 and args[i + 1] is not None:
                bounds[i] = float(self._constant(args[i + 1], ("min", "max")[i]).reshape(-1)[0])
        low, high = (None if b is None or not abs(b) < np.finfo(np.float32).max else b
                     for b in bounds)
        return self._clip(args[0], low, high)

    def _clip(self, value, low, high):
        pieces = (low is not None) + (high is not None)
        return self._activation(value, max(pieces, 1), self.builder.clip, low, high)

    def _op_HardSigmoid(self, args, attrs):
        x = self._add(self._scale(args[0], attrs.get("alpha", 0.2)), attrs.get("beta", 0.5))
        return self._clip(x, 0.0, 1.0)

    def _op_Max(self, args, attrs):
        return self._extreme(args, 1.0)

    def _op_Min(self, args, attrs):
        return self._extreme(args, -1.0)

    def _extreme(self, args, sign):
        """Element-wise maximum (``sign`` 1) or minimum (-1) of broadcast inputs: a clip
        for one tensor and constants, else max windows over the stacked inputs."""
        shape, args = self._broadcast_all(args)
        constants = [np.asarray(a, np.float64) * sign for a in args if not isinstance(a, Tensor)]
        # the same tensor twice (Max(x, x)) would make windows that always tie
        tensors = list({id(a): a for a in args if isinstance(a, Tensor)}.values())
        bound = np.max(constants, axis=0) * sign if constants else None
        if not tensors:
            return bound
        if len(tensors) == 1:
            if bound is None:
                return tensors[0]
            bound = bound.reshape(-1)
            return self._clip(tensors[0], *((bound, None) if sign > 0 else (None, bound)))
        items = [self._scale(t, sign) for t in tensors] + (
            [self.tensor(bound * sign)] if constants else [])
        stacked = self.builder.stack(items)
        size = _size(shape)
        windows = np.arange(size)[:, None] + size * np.arange(len(items))[None, :]
        pooled = self.builder.max_windows(stacked, windows, shape, name=self._desc())
        return self._scale(pooled, sign)


def _why_unsupported(op, domain):
    if domain not in ("", "ai.onnx"):
        return f"operators of domain {clip(domain)!r} are not supported"
    if op in _NOT_PIECEWISE_LINEAR:
        return f"{op} is not piecewise linear"
    if op in _DISCONTINUOUS:
        return f"{op} is not continuous piecewise linear"
    if op in ("LSTM", "GRU", "RNN", "Loop", "Scan", "If"):
        return f"{op} is control flow or recurrent, not a feed-forward layer"
    return "not one of the supported operators (see polyrelu.network.onnx_import)"
