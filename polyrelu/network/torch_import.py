"""Lower a torch ``nn.Module`` to a :class:`Network` through a :class:`GraphBuilder`.

The module is traced with ``torch.fx.symbolic_trace``, which records ``forward`` as a
graph of module calls, functions and tensor methods without running it on data and
keeps every ``torch.nn`` layer as one node holding the module object (its weights,
its ``training`` flag, its options). ``torch.export`` was the alternative: it needs an
example input, runs the model under fake tensors and decomposes layers into ATen
operators, losing the module boundaries our error messages name; both refuse forwards
that branch on tensor values.

The graph is then walked node by node. Every input-dependent value is a
:class:`~polyrelu.network.lowering.Tensor` of one sample (the batch axis is implicit);
everything else (weights, shapes, constants computed in ``forward``) is evaluated by
torch itself. Shape operations (view, reshape, flatten, permute, transpose, squeeze,
unsqueeze, indexing, cat, stack, split, pad, ...) are lowered exactly by running the
operation on a tensor of *indices* with a batch of two and reading off where each
entry came from, which also checks that the operation keeps samples apart.

Supported: Linear, Conv1d/2d/3d and ConvTranspose1d/2d/3d (zeros padding; the index
arithmetic is :mod:`polyrelu.network.convolution`'s, shared with the ONNX importer),
BatchNorm1d/2d in eval mode, ReLU,
LeakyReLU, PReLU, Hardtanh, ReLU6, Hardsigmoid, Softshrink, abs, clamp,
maximum/minimum, MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvgPool1d/2d,
AdaptiveMaxPool1d/2d, Flatten, Unflatten, Identity, Dropout (eval), zero/constant
padding, addition, subtraction, scaling by constants, matrix products with constants,
sum/mean, amax, and their functional forms. Anything else raises
:class:`UnsupportedLayerError` naming the module or function and the node.
"""

import operator

import numpy as np
import scipy.sparse as sp

from ..errors import InvalidNetworkError, UnsupportedLayerError, brief
from . import convolution as conv
from .lowering import GraphBuilder, Tensor
from .model import MAX_PARAMETERS

__all__ = ["from_exported_program", "from_torch"]

#: Batch size of the index tensors shape operations run on (two, so that mixing samples
#: shows; an exported program runs at the batch size it was exported with).
_BATCH = 2

_SUPPORTED = ("Linear, Conv1d/2d/3d, ConvTranspose1d/2d/3d, BatchNorm1d/2d (eval), ReLU, "
              "LeakyReLU, PReLU, Hardtanh, "
              "ReLU6, Hardsigmoid, Softshrink, abs, clamp, MaxPool/AvgPool/AdaptiveAvgPool/"
              "AdaptiveMaxPool 1d/2d, Flatten, Unflatten, Identity, Dropout (eval), "
              "ZeroPad/ConstantPad 1d/2d, +, -, scaling, shape operations, cat, sum/mean, "
              "amax; see polyrelu.network.torch_import")

#: Layers and functions with no linear pieces.
_NOT_PIECEWISE_LINEAR = {
    "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Softmin", "GELU", "SiLU", "ELU", "SELU",
    "CELU", "Softplus", "Mish", "Hardswish", "Softsign", "Tanhshrink", "LogSigmoid", "GLU",
    "sigmoid", "tanh", "softmax", "log_softmax", "softmin", "gelu", "silu", "elu", "selu",
    "celu", "softplus", "mish", "hardswish", "softsign", "tanhshrink", "logsigmoid", "glu",
    "exp", "log", "sqrt", "rsqrt", "pow", "sin", "cos", "erf", "reciprocal", "square",
}
_DISCONTINUOUS = {"Hardshrink", "Threshold", "hardshrink", "threshold", "sign", "round",
                  "floor", "ceil", "trunc", "heaviside"}


def from_torch(module, input_shape=None, *, max_parameters=MAX_PARAMETERS,
               allow_extreme_numerics=False):
    """Network computing a torch module's forward, exactly, in float64.

    Parameters
    ----------
    module : torch.nn.Module
        Any module whose ``forward`` takes one tensor (its first dimension the batch)
        and returns one tensor, built from the layers in the module docstring. Put it
        in eval mode first (``module.eval()``): BatchNorm and Dropout in training
        mode are refused. The module is not modified.
    input_shape : tuple of int, optional
        The shape of one input, without the batch axis, e.g. ``(1, 8, 8)`` for a
        Conv2d. Default: ``(in_features,)`` of a first Linear (reached through
        Flatten, Identity, Dropout and activations); needed for anything else.
    max_parameters : int
        Largest dense layer matrix to build (see :class:`GraphBuilder`).
    allow_extreme_numerics : bool, default False
        Passed to :class:`Network`.

    Returns
    -------
    Network
        Its input is the flattened (C order) sample, its output the flattened
        forward output.

    Raises
    ------
    UnsupportedLayerError
        For a layer, function or method outside the supported set, a layer in
        training mode, or a forward that torch.fx cannot trace; the message names the
        module or function, the node and the reason.
    InvalidNetworkError
        If the input shape cannot be inferred or does not fit the layers.

    Examples
    --------
    >>> import pytest; torch = pytest.importorskip("torch")
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(),
    ...                             torch.nn.Flatten(), torch.nn.Linear(8, 3))
    >>> from_torch(model.eval(), (1, 4, 4)).hidden_sizes
    (8,)
    """
    graph_module = _trace(module)
    if input_shape is None:
        input_shape = _infer_input_shape(graph_module)
    return _lower(graph_module, input_shape, _BATCH, max_parameters, allow_extreme_numerics)


def from_exported_program(program, *, max_parameters=MAX_PARAMETERS,
                          allow_extreme_numerics=False):
    """Network of a ``torch.export.ExportedProgram`` (ATen operators) taking one tensor.

    The program is lowered at the shape of its example input (``program.example_inputs``):
    its first axis is the batch, usually 1, since export fixes the sizes it saw. Load a
    ``.pt2`` file only if you trust it: ``torch.export.load`` unpickles parts of it.
    """
    examples = program.example_inputs[0] if program.example_inputs else ()
    if len(examples) != 1 or not hasattr(examples[0], "shape") or not examples[0].ndim:
        raise InvalidNetworkError("the exported program does not take one batched tensor")
    shape = tuple(examples[0].shape)
    return _lower(_trace(program.module()), shape[1:], shape[0], max_parameters,
                  allow_extreme_numerics)


def _lower(graph_module, input_shape, batch, max_parameters, allow_extreme_numerics):
    _function_table()
    builder = GraphBuilder(tuple(input_shape), max_parameters=max_parameters)
    output = _Walk(graph_module, builder, batch).run()
    return builder.network(output, allow_extreme_numerics=allow_extreme_numerics)


# -- tracing -------------------------------------------------------------------------
def _trace(module):
    """The fx GraphModule of ``module`` (a lone torch.nn layer is wrapped in a
    Sequential so that it stays one node)."""
    import torch
    from torch import fx

    if not isinstance(module, torch.nn.Module):
        raise InvalidNetworkError(f"expected a torch.nn.Module, got {type(module).__name__}")
    if fx.Tracer().is_leaf_module(module, ""):
        module = torch.nn.Sequential(module)
    try:
        return fx.symbolic_trace(module)
    except Exception as err:  # fx raises TraceError, TypeError, RuntimeError, ...
        raise UnsupportedLayerError(
            f"torch.fx cannot trace {type(module).__name__}.forward ({brief(err)}); its "
            "forward must not branch on tensor values or take more than tensors") from err


def _infer_input_shape(graph_module):
    """``(in_features,)`` of the first Linear, reached through shape-keeping layers."""
    from torch import nn

    passing = (nn.Flatten, nn.Identity, nn.Dropout, nn.ReLU, nn.LeakyReLU, nn.Hardtanh,
               nn.PReLU)
    node = next((n for n in graph_module.graph.nodes if n.op == "placeholder"), None)
    while node is not None and len(node.users) == 1:
        node = next(iter(node.users))
        target = (graph_module.get_submodule(node.target) if node.op == "call_module"
                  else None)
        if isinstance(target, nn.Linear):
            return (target.in_features,)
        if not isinstance(target, passing):
            break
    raise InvalidNetworkError(
        "cannot infer the input shape of this torch module (it does not start with a "
        "Linear layer); pass input_shape, the shape of one sample without the batch "
        "axis, e.g. from_torch(model, (1, 8, 8))")


# -- the walk --------------------------------------------------------------------------
class _Walk:
    """Evaluates a traced graph: symbolic for input-dependent values, torch otherwise."""

    def __init__(self, graph_module, builder, batch=_BATCH):
        self.graph_module = graph_module
        self.builder = builder
        self.batch = batch
        self.values = {}
        self.node = None

    def run(self):
        """The output tensor."""
        for node in self.graph_module.graph.nodes:
            self.node = node
            if node.op == "output":
                return self._output(node)
            self.values[node] = value = getattr(self, f"_{node.op}")(node)
            mutated = self._mutated(node)
            if mutated is not None and isinstance(value, Tensor):
                self.values[mutated] = value
        raise AssertionError("an fx graph ends with its output node")

    # node kinds
    def _placeholder(self, node):
        if not self.values:
            return self.builder.input
        if node.args:  # a default value
            return node.args[0]
        raise UnsupportedLayerError(
            f"torch forward argument {node.name!r}: polyrelu networks have one input "
            "tensor; give the others default values or fix them in a wrapper module")

    def _get_attr(self, node):
        value = self.graph_module
        for name in node.target.split("."):
            value = getattr(value, name)
        return value.detach() if hasattr(value, "detach") else value

    def _output(self, node):
        result = self._arg(node.args[0])
        if isinstance(result, (tuple, list)) and len(result) == 1:
            result = result[0]
        if not isinstance(result, Tensor):
            raise UnsupportedLayerError(
                "the torch forward must return one input-dependent tensor, got "
                f"{type(result).__name__}")
        return result

    def _mutated(self, node):
        """The node an in-place operation overwrites (``relu_``, ``inplace=True``,
        ``+=``), so that later reads of it see the new value; else None."""
        from torch import fx

        if not node.args or not isinstance(node.args[0], fx.Node):
            return None
        if node.op == "call_module":
            inplace = getattr(self.graph_module.get_submodule(node.target), "inplace", False)
        elif node.op == "call_method":
            inplace = node.target.endswith("_") and not node.target.endswith("__")
        else:
            name = getattr(node.target, "__name__", "")
            inplace = node.target in _IN_PLACE or (name.endswith("_") and
                                                   not name.endswith("__"))
        inplace = inplace or node.kwargs.get("inplace", False) is True
        return node.args[0] if inplace else None

    def _call_module(self, node):
        module = self.graph_module.get_submodule(node.target)
        args, kwargs = self._args(node)
        name = type(module).__name__
        handler = next((_MODULES[t] for t in type(module).__mro__ if t in _MODULES), None)
        if handler is None and node.target.startswith("_guards") and not node.users:
            return None  # torch.export's input shape checks
        if handler is None:
            self._refuse(f"module {node.target!r} ({name})", name)
        return handler(self._context(f"{node.target} ({name})"), module, *args, **kwargs)

    def _call_function(self, node):
        args, kwargs = self._args(node)
        if node.target in _ASSERTIONS:
            return None  # shape checks (torch.export); the walk checks shapes itself
        if not _symbolic(args, kwargs):
            return node.target(*args, **kwargs)
        name = getattr(node.target, "__name__", str(node.target))
        if hasattr(node.target, "overloadpacket"):  # an ATen operator
            name = node.target.overloadpacket.__name__
        handler = _FUNCTIONS.get(node.target)
        if handler is None:
            handler = _function_table().get(node.target) or _aten_handler(node.target)
        if handler is None:
            self._refuse(f"function {name}", name)
        return handler(self._context(f"{node.name} ({name})"), *args, **kwargs)

    def _call_method(self, node):
        args, kwargs = self._args(node)
        if not _symbolic(args, kwargs):
            return getattr(args[0], node.target)(*args[1:], **kwargs)
        handler = _METHODS.get(node.target)
        if handler is None or not isinstance(args[0], Tensor):
            self._refuse(f"tensor method .{node.target}()", node.target)
        return handler(self._context(f"{node.name} (.{node.target})"), *args, **kwargs)

    # helpers
    def _args(self, node):
        return self._arg(node.args), self._arg(node.kwargs)

    def _arg(self, value):
        from torch import fx

        def lookup(v):
            if not isinstance(v, fx.Node):
                return v
            if isinstance(self.values[v], _NoIndices):
                self._refuse(f"use of the pooling indices {v.name!r}", "indices")
            return self.values[v]

        return fx.node.map_aggregate(value, lookup)

    def _context(self, name):
        return _Context(self.builder, name, self.node.name, self.batch)

    def _refuse(self, what, name):
        bare = name.rstrip("_")
        if bare in _NOT_PIECEWISE_LINEAR:
            reason = f"{bare} is not piecewise linear"
            if bare.lower() in ("softmax", "log_softmax", "logsoftmax"):
                reason += ("; drop a final softmax and analyse the logits (their argmax is "
                           "the class)")
        elif bare in _DISCONTINUOUS:
            reason = f"{bare} is not continuous"
        elif bare == "indices":
            reason = "the argmax indices of a pooling are not piecewise linear"
        else:
            reason = f"not supported (supported: {_SUPPORTED})"
        raise UnsupportedLayerError(f"torch {what} at node {self.node.name!r}: {reason}")


class _Context:
    """What a handler needs: the builder and names for messages and kinks."""

    def __init__(self, builder, name, node, batch):
        self.builder, self.name, self.node, self.batch = builder, name, node, batch

    def refuse(self, reason):
        raise UnsupportedLayerError(f"torch {self.name} at node {self.node!r}: {reason}")


def _symbolic(*values):
    """True if any (nested) value is an input-dependent :class:`Tensor`."""
    stack = list(values)
    while stack:
        value = stack.pop()
        if isinstance(value, Tensor):
            return True
        if isinstance(value, (list, tuple)):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
    return False


def _numpy(value):
    """A constant (python number or torch tensor) as a float64 array."""
    if hasattr(value, "detach"):
        return value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64)


def _require(ctx, x):
    if not isinstance(x, Tensor):
        ctx.refuse(f"expected an input-dependent tensor, got {type(x).__name__}")
    return x


# -- shape operations through index tensors ------------------------------------------
def _index_op(ctx, function, *args, **kwargs):
    """Lower a pure data-movement op by running it on index tensors (batch of two)."""
    import torch
    from torch.fx.node import map_aggregate

    sources, starts = [], {}

    def collect(value):
        if isinstance(value, Tensor) and id(value) not in starts:
            starts[id(value)] = sum(t.size for t in sources)
            sources.append(value)
        elif hasattr(value, "is_floating_point") and value.is_floating_point():
            ctx.refuse("mixing input-dependent and constant tensors in a shape operation")
        return value

    map_aggregate((args, kwargs), collect)
    total = sum(t.size for t in sources)

    def as_indices(value):
        if not isinstance(value, Tensor):
            return value
        flat = (torch.arange(ctx.batch)[:, None] * total + starts[id(value)]
                + torch.arange(value.size))
        return flat.reshape((ctx.batch,) + value.shape)

    result = function(*map_aggregate(args, as_indices), **map_aggregate(kwargs, as_indices))
    stacked = sources[0] if len(sources) == 1 else ctx.builder.stack(sources)
    return map_aggregate(result, lambda r: _gathered(ctx, stacked, r, total)
                         if isinstance(r, torch.Tensor) else r)


def _gathered(ctx, stacked, indices, total):
    """The entries of ``stacked`` the index tensor (batch first) points at."""
    indices = indices.numpy()
    if indices.ndim == 0 or indices.shape[0] != ctx.batch:
        ctx.refuse("the operation does not keep the batch axis first")
    first, pad = indices[0], indices[0] < 0
    for sample in range(1, ctx.batch):
        other = indices[sample]
        if not (np.array_equal(pad, other < 0)
                and np.array_equal(other[~pad], first[~pad] + sample * total)):
            ctx.refuse("the operation mixes samples of the batch")
    return ctx.builder.take(stacked, first)


def _padded(ctx, x, pad, mode="constant", value=None):
    """F.pad: constant padding with ``value`` (0 by default)."""
    import torch
    import torch.nn.functional as F

    if mode != "constant":
        ctx.refuse(f"padding mode {mode!r} is not supported (only 'constant')")
    result = _index_op(ctx, lambda t: F.pad(t, pad, value=-1), _require(ctx, x))
    if not value:
        return result
    padding = F.pad(torch.zeros((1,) + x.shape, dtype=torch.float64), pad, value=1.0)[0]
    return ctx.builder.scale(result, 1.0, float(value) * padding.numpy())


def _moving(function):
    """A torch function that only moves entries, as a handler."""
    return lambda ctx, *args, **kwargs: _index_op(ctx, function, *args, **kwargs)


def _shape_method(name):
    """A tensor method that only moves entries, as a handler."""
    def handler(ctx, x, *args, **kwargs):
        return _index_op(ctx, lambda t, *a, **k: getattr(t, name)(*a, **k), x, *args, **kwargs)
    return handler


def _identity(ctx, x, *args, **kwargs):
    return x


def _size(ctx, x, dim=None):
    import torch

    shape = torch.Size((ctx.batch,) + x.shape)
    return shape if dim is None else shape[dim]


def _getattr(ctx, x, name):
    if isinstance(x, Tensor) and name == "shape":
        return _size(ctx, x)
    if isinstance(x, Tensor) and name == "ndim":
        return len(x.shape) + 1
    if isinstance(x, Tensor) and name in ("dtype", "device"):
        import torch

        return torch.float64 if name == "dtype" else torch.device("cpu")
    ctx.refuse(f"attribute {name!r} of an input-dependent tensor")


def _getitem(ctx, x, key):
    if isinstance(x, (tuple, list)):
        return x[key]
    return _index_op(ctx, operator.getitem, x, key)


# -- element-wise linear arithmetic ----------------------------------------------------
def _broadcast(ctx, *operands):
    """Operands broadcast to a common per-sample shape: Tensors by :meth:`take`,
    constants as float64 arrays; refuses broadcasting that moves the batch axis."""
    full = [(ctx.batch,) + v.shape if isinstance(v, Tensor) else np.shape(_numpy(v))
            for v in operands]
    target = np.broadcast_shapes(*full)
    if not target or target[0] != ctx.batch:
        ctx.refuse(f"broadcasting shapes {full[0][1:]} and {full[1:]} moves the batch axis")
    result = []
    for value, shape in zip(operands, full):
        if isinstance(value, Tensor):
            if len(shape) != len(target):
                ctx.refuse("broadcasting an input-dependent tensor against one of more "
                           "dimensions moves its batch axis")
            index = np.broadcast_to(np.arange(value.size).reshape(value.shape), target[1:])
            result.append(value if index.shape == value.shape
                          else ctx.builder.take(value, index))
        else:
            constant = np.broadcast_to(_numpy(value), target)
            if len(shape) == len(target) and shape[0] != 1:
                ctx.refuse("a constant with a batch axis of its own")
            result.append(constant[0])
    return result


def _combine(ctx, a, b, sign_a=1.0, sign_b=1.0):
    """``sign_a a + sign_b b``, each a Tensor or a constant."""
    a, b = _broadcast(ctx, a, b)
    parts = [v if s == 1.0 else ctx.builder.scale(v, s) if isinstance(v, Tensor) else s * v
             for v, s in ((a, sign_a), (b, sign_b))]
    tensors = [p for p in parts if isinstance(p, Tensor)]
    constant = sum(p for p in parts if not isinstance(p, Tensor))
    total = tensors[0] if len(tensors) == 1 else ctx.builder.add(*tensors)
    if isinstance(constant, np.ndarray) or constant != 0:
        total = ctx.builder.scale(total, 1.0, constant)
    return total


def _add(ctx, a, b, *, alpha=1):
    return _combine(ctx, a, b, 1.0, float(alpha))


def _sub(ctx, a, b, *, alpha=1):
    return _combine(ctx, a, b, 1.0, -float(alpha))


def _rsub(ctx, a, b, *, alpha=1):
    return _combine(ctx, b, a, 1.0, -float(alpha))


def _mul(ctx, a, b):
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        ctx.refuse("the product of two input-dependent tensors is not piecewise linear")
    x, factor = _broadcast(ctx, a, b) if isinstance(a, Tensor) else _broadcast(ctx, b, a)
    return ctx.builder.scale(x, factor)


def _div(ctx, a, b, *, rounding_mode=None):
    if isinstance(b, Tensor) or rounding_mode is not None:
        ctx.refuse("dividing by an input-dependent tensor or rounding is not piecewise "
                   "linear")
    x, divisor = _broadcast(ctx, a, b)
    return ctx.builder.scale(x, 1.0 / divisor)


def _neg(ctx, x):
    return ctx.builder.scale(x, -1.0)


def _matmul(ctx, a, b):
    """Products with a constant matrix or vector on either side."""
    if isinstance(a, Tensor) == isinstance(b, Tensor):
        ctx.refuse("the product of two input-dependent tensors is not piecewise linear")
    if isinstance(a, Tensor):
        return _right_product(ctx, a, _numpy(b))
    return _left_product(ctx, _numpy(a), b)


def _right_product(ctx, x, matrix):
    """``x @ matrix`` over the last axis (matrix 1-D or 2-D)."""
    vector = matrix.ndim == 1
    matrix = matrix.reshape(-1, 1) if vector else matrix
    if matrix.ndim != 2 or not x.shape or x.shape[-1] != matrix.shape[0]:
        ctx.refuse(f"a product of shapes {x.shape} and {matrix.shape} (batch first)")
    rows = x.size // x.shape[-1]
    shape = x.shape[:-1] + (() if vector else (matrix.shape[1],))
    return ctx.builder.linear(x, sp.kron(sp.identity(rows), matrix.T), shape=shape)


def _left_product(ctx, matrix, x):
    """``matrix @ x`` over the second-to-last axis of a sample."""
    if matrix.ndim != 2 or len(x.shape) < 2 or x.shape[-2] != matrix.shape[1]:
        ctx.refuse(f"a product of shapes {matrix.shape} and {x.shape} (batch first)")
    outer = x.size // (x.shape[-2] * x.shape[-1])
    operator_ = sp.kron(sp.kron(sp.identity(outer), matrix), sp.identity(x.shape[-1]))
    return ctx.builder.linear(x, operator_, shape=x.shape[:-2] + (matrix.shape[0], x.shape[-1]))


def _reduction(ctx, x, dim, keepdim):
    """Windows (one row per result entry) and result shape of a reduction over the
    sample axes ``dim`` (batch-first numbering)."""
    ndim = len(x.shape) + 1
    dims = () if dim is None else (dim,) if np.ndim(dim) == 0 else tuple(dim)
    dims = sorted({int(d) % ndim for d in dims})
    if not dims or 0 in dims:
        ctx.refuse("a reduction over the batch axis mixes samples; name the sample axes")
    return conv.reduction_windows(tuple(x.shape), [d - 1 for d in dims], keepdim)


def _reduce(ctx, x, dim, keepdim, mean):
    """Sum or mean over sample axes as a sparse matrix."""
    windows, shape = _reduction(ctx, x, dim, keepdim)
    return ctx.builder.linear(x, conv.window_matrix(windows, x.size, mean=mean), shape=shape)


def _sum(ctx, x, dim=None, keepdim=False, *, dtype=None):
    return _reduce(ctx, _require(ctx, x), dim, keepdim, mean=False)


def _mean(ctx, x, dim=None, keepdim=False, *, dtype=None):
    return _reduce(ctx, _require(ctx, x), dim, keepdim, mean=True)


# -- activations -----------------------------------------------------------------------
def _relu(ctx, x, inplace=False):
    return ctx.builder.relu(_require(ctx, x), ctx.name)


def _leaky_relu(ctx, x, negative_slope=0.01, inplace=False):
    return ctx.builder.leaky_relu(_require(ctx, x), float(negative_slope), ctx.name)


def _prelu(ctx, x, weight):
    slope = _numpy(weight).reshape(-1)
    if slope.size > 1:
        if not x.shape or x.shape[0] != slope.size:
            ctx.refuse(f"{slope.size} PReLU slopes for a tensor of shape {x.shape}")
        slope = slope.reshape((-1,) + (1,) * (len(x.shape) - 1))
    return ctx.builder.leaky_relu(x, slope, ctx.name)


def _hardtanh(ctx, x, min_val=-1.0, max_val=1.0, inplace=False):
    return ctx.builder.clip(_require(ctx, x), float(min_val), float(max_val), ctx.name)


def _relu6(ctx, x, inplace=False):
    return _hardtanh(ctx, x, 0.0, 6.0)


def _hardsigmoid(ctx, x, inplace=False):
    return ctx.builder.clip(ctx.builder.scale(_require(ctx, x), 1.0 / 6.0, 0.5), 0.0, 1.0,
                            ctx.name)


def _softshrink(ctx, x, lambd=0.5):
    clipped = ctx.builder.clip(_require(ctx, x), -float(lambd), float(lambd), ctx.name)
    return ctx.builder.add(x, ctx.builder.scale(clipped, -1.0))


def _abs(ctx, x):
    return ctx.builder.abs(_require(ctx, x), ctx.name)


def _clamp(ctx, x, min=None, max=None):
    x = _require(ctx, x)
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        return _minimum(ctx, _maximum(ctx, x, min), max) if min is not None and max is not None \
            else _maximum(ctx, x, min) if min is not None else _minimum(ctx, x, max)
    low = None if min is None else _broadcast(ctx, x, min)[1].reshape(-1)
    high = None if max is None else _broadcast(ctx, x, max)[1].reshape(-1)
    return ctx.builder.clip(x, low, high, ctx.name)


def _clamp_min(ctx, x, min):
    return _clamp(ctx, x, min=min)


def _clamp_max(ctx, x, max):
    return _clamp(ctx, x, max=max)


def _maximum(ctx, a, b):
    """``max(a, b) = b + relu(a - b)`` (a clip against a constant)."""
    if not isinstance(a, Tensor):
        a, b = b, a
    if not isinstance(b, Tensor):
        return _clamp(ctx, a, min=b)
    a, b = _broadcast(ctx, a, b)
    return ctx.builder.add(b, ctx.builder.relu(_combine(ctx, a, b, 1.0, -1.0), ctx.name))


def _minimum(ctx, a, b):
    """``min(a, b) = -max(-a, -b)``."""
    negated = [_neg(ctx, v) if isinstance(v, Tensor) else -_numpy(v) for v in (a, b)]
    return _neg(ctx, _maximum(ctx, *negated))


def _amax(ctx, x, dim=(), keepdim=False):
    """The maximum over sample axes: max windows."""
    windows, shape = _reduction(ctx, _require(ctx, x), dim, keepdim)
    return ctx.builder.max_windows(x, windows, shape, ctx.name)


def _max(ctx, x, other=None, *args, **kwargs):
    """torch.max(a, b), element-wise; over a dimension it returns indices: refused."""
    if isinstance(other, Tensor) or hasattr(other, "shape"):
        return _maximum(ctx, x, other)
    ctx.refuse("max over a dimension returns indices (not piecewise linear), and over "
               "everything mixes the batch; use torch.amax(x, dim)")


def _min(ctx, x, other=None, *args, **kwargs):
    """torch.min(a, b), element-wise."""
    if isinstance(other, Tensor) or hasattr(other, "shape"):
        return _minimum(ctx, x, other)
    ctx.refuse("min over a dimension returns indices (not piecewise linear), and over "
               "everything mixes the batch; use torch.amin(x, dim)")


def _amin(ctx, x, dim=(), keepdim=False):
    return _neg(ctx, _amax(ctx, _neg(ctx, x), dim, keepdim))


# -- layers ----------------------------------------------------------------------------
def _linear(ctx, x, weight, bias=None):
    x = _require(ctx, x)
    result = _right_product(ctx, x, _numpy(weight).T)
    return result if bias is None else _combine(ctx, result, bias)


def _conv(ctx, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    x = _require(ctx, x)
    weight = _numpy(weight)
    nd = weight.ndim - 2
    dilation = (dilation,) * nd if np.ndim(dilation) == 0 else tuple(dilation)
    if isinstance(padding, str):
        padding = _string_padding(ctx, padding, x.shape[1:], weight.shape[2:], stride,
                                  dilation)
    return _conv_layer(ctx, x, bias, conv.conv_matrix, weight, x.shape, stride, padding,
                       dilation, groups)


def _conv_transpose(ctx, x, weight, bias=None, stride=1, padding=0, output_padding=0,
                    groups=1, dilation=1):
    x = _require(ctx, x)
    return _conv_layer(ctx, x, bias, conv.conv_transpose_matrix, _numpy(weight), x.shape,
                       stride, padding, output_padding, dilation, groups)


def _conv_layer(ctx, x, bias, function, *args):
    """The affine layer of a (transposed) convolution ``function`` of
    :mod:`~polyrelu.network.convolution`, plus ``bias`` per output channel."""
    try:
        matrix, shape = function(*args, max_entries=ctx.builder.max_parameters)
    except InvalidNetworkError as err:
        ctx.refuse(str(err))
    offset = None if bias is None else np.repeat(_numpy(bias), matrix.shape[0] // shape[0])
    return ctx.builder.linear(x, matrix, offset, shape)


def _string_padding(ctx, padding, spatial, kernel, stride, dilation):
    """torch's 'valid' and 'same' (stride 1; the odd pixel goes at the end)."""
    if padding == "valid":
        return 0
    if padding != "same" or any(s != 1 for s in np.ravel(stride)):
        ctx.refuse(f"padding {padding!r} (with stride {stride})")
    return conv.same_padding(spatial, kernel, 1, dilation)


def _batch_norm(ctx, x, running_mean, running_var, weight=None, bias=None, training=False,
                momentum=0.1, eps=1e-5):
    x = _require(ctx, x)
    if training or running_mean is None or running_var is None:
        ctx.refuse("BatchNorm in training mode (or without running statistics) normalises "
                   "with batch statistics; call model.eval() first")
    scale, shift = conv.batch_norm_affine(_numpy(running_mean), _numpy(running_var), eps,
                                          None if weight is None else _numpy(weight),
                                          None if bias is None else _numpy(bias))
    channels = (-1,) + (1,) * (len(x.shape) - 1)
    if not x.shape or x.shape[0] != scale.size:
        ctx.refuse(f"BatchNorm of {scale.size} channels on a tensor of shape {x.shape}")
    return ctx.builder.scale(x, scale.reshape(channels), shift.reshape(channels))


def _spatial(ctx, value, nd):
    value = (value,) * nd if np.ndim(value) == 0 else tuple(value)
    return value * nd if len(value) == 1 else value


def _max_pool(nd):
    def handler(ctx, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                return_indices=False):
        if return_indices:
            ctx.refuse("max pooling with return_indices=True (the indices are not "
                       "piecewise linear)")
        x = _require(ctx, x)
        kernel = _spatial(ctx, kernel_size, nd)
        try:
            windows, shape = conv.pool_windows(
                x.shape, kernel, kernel if stride is None or stride == [] else stride,
                _spatial(ctx, padding, nd), _spatial(ctx, dilation, nd), ceil_mode,
                max_entries=ctx.builder.max_parameters)
        except InvalidNetworkError as err:
            ctx.refuse(str(err))
        return ctx.builder.max_windows(x, windows, shape, ctx.name)
    return handler


def _avg_pool(nd):
    def handler(ctx, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                count_include_pad=True, divisor_override=None):
        x = _require(ctx, x)
        kernel = _spatial(ctx, kernel_size, nd)
        try:
            matrix, shape = conv.avg_pool_matrix(
                x.shape, kernel, kernel if stride is None or stride == [] else stride,
                _spatial(ctx, padding, nd), ceil_mode, count_include_pad, divisor_override,
                max_entries=ctx.builder.max_parameters)
        except InvalidNetworkError as err:
            ctx.refuse(str(err))
        return ctx.builder.linear(x, matrix, shape=shape)
    return handler


def _adaptive(nd, maximum):
    def handler(ctx, x, output_size, return_indices=False):
        if return_indices:
            ctx.refuse("adaptive max pooling with return_indices=True")
        x = _require(ctx, x)
        windows, shape = conv.adaptive_windows(x.shape, _spatial(ctx, output_size, nd))
        if maximum:
            return ctx.builder.max_windows(x, windows, shape, ctx.name)
        return ctx.builder.linear(x, conv.window_matrix(windows, x.size), shape=shape)
    return handler


def _dropout(ctx, x, p=0.5, training=True, inplace=False):
    if training and p > 0:
        ctx.refuse("Dropout in training mode is random; call model.eval() first")
    return x


# -- module handlers: read the module's options, then the functional handler ----------
def _module_linear(ctx, m, x):
    return _linear(ctx, x, m.weight, m.bias)


def _module_conv(ctx, m, x):
    if m.padding_mode != "zeros":
        ctx.refuse(f"padding_mode {m.padding_mode!r} (only 'zeros' is supported)")
    return _conv(ctx, x, m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups)


def _module_conv_transpose(ctx, m, x):
    if m.padding_mode != "zeros":
        ctx.refuse(f"padding_mode {m.padding_mode!r} (only 'zeros' is supported)")
    return _conv_transpose(ctx, x, m.weight, m.bias, m.stride, m.padding, m.output_padding,
                           m.groups, m.dilation)


def _module_batch_norm(ctx, m, x):
    if m.training:
        ctx.refuse("BatchNorm in training mode normalises with batch statistics; call "
                   "model.eval() first")
    return _batch_norm(ctx, x, m.running_mean, m.running_var, m.weight, m.bias, False,
                       0.0, m.eps)


def _module_max_pool(nd):
    pool = _max_pool(nd)
    return lambda ctx, m, x: pool(ctx, x, m.kernel_size, m.stride, m.padding, m.dilation,
                                  m.ceil_mode, m.return_indices)


def _module_avg_pool(nd):
    pool = _avg_pool(nd)
    return lambda ctx, m, x: pool(ctx, x, m.kernel_size, m.stride, m.padding, m.ceil_mode,
                                  m.count_include_pad, getattr(m, "divisor_override", None))


def _module_adaptive(nd, maximum):
    pool = _adaptive(nd, maximum)
    return lambda ctx, m, x: pool(ctx, x, m.output_size, getattr(m, "return_indices", False))


def _module_dropout(ctx, m, x):
    return _dropout(ctx, x, m.p, m.training)


def _module_flatten(ctx, m, x):
    return _index_op(ctx, lambda t: t.flatten(m.start_dim, m.end_dim), x)


def _module_unflatten(ctx, m, x):
    return _index_op(ctx, lambda t: t.unflatten(m.dim, m.unflattened_size), x)


def _module_pad(ctx, m, x):
    return _padded(ctx, x, m.padding, "constant", m.value)


def _module_table():
    from torch import nn

    return {
        nn.Linear: _module_linear,
        nn.Conv1d: _module_conv, nn.Conv2d: _module_conv, nn.Conv3d: _module_conv,
        nn.ConvTranspose1d: _module_conv_transpose, nn.ConvTranspose2d: _module_conv_transpose,
        nn.ConvTranspose3d: _module_conv_transpose,
        nn.BatchNorm1d: _module_batch_norm, nn.BatchNorm2d: _module_batch_norm,
        nn.ReLU: lambda ctx, m, x: _relu(ctx, x),
        nn.LeakyReLU: lambda ctx, m, x: _leaky_relu(ctx, x, m.negative_slope),
        nn.PReLU: lambda ctx, m, x: _prelu(ctx, x, m.weight),
        nn.Hardtanh: lambda ctx, m, x: _hardtanh(ctx, x, m.min_val, m.max_val),
        nn.Hardsigmoid: lambda ctx, m, x: _hardsigmoid(ctx, x),
        nn.Softshrink: lambda ctx, m, x: _softshrink(ctx, x, m.lambd),
        nn.MaxPool1d: _module_max_pool(1), nn.MaxPool2d: _module_max_pool(2),
        nn.AvgPool1d: _module_avg_pool(1), nn.AvgPool2d: _module_avg_pool(2),
        nn.AdaptiveAvgPool1d: _module_adaptive(1, False),
        nn.AdaptiveAvgPool2d: _module_adaptive(2, False),
        nn.AdaptiveMaxPool1d: _module_adaptive(1, True),
        nn.AdaptiveMaxPool2d: _module_adaptive(2, True),
        nn.Flatten: _module_flatten, nn.Unflatten: _module_unflatten,
        nn.Identity: lambda ctx, m, x, *a, **k: x,
        nn.Dropout: _module_dropout, nn.Dropout1d: _module_dropout,
        nn.Dropout2d: _module_dropout,
        nn.ConstantPad1d: _module_pad, nn.ConstantPad2d: _module_pad,
        nn.ZeroPad1d: _module_pad, nn.ZeroPad2d: _module_pad,
    }


_SHAPE_METHODS = ("view", "reshape", "flatten", "permute", "transpose", "t", "squeeze",
                  "unsqueeze", "contiguous", "expand", "expand_as", "view_as", "reshape_as",
                  "repeat", "flip", "roll", "narrow", "select", "chunk", "split", "unbind",
                  "movedim", "moveaxis", "swapaxes", "swapdims", "unflatten", "clone",
                  "detach", "__getitem__")

_METHODS = {name: _shape_method(name) for name in _SHAPE_METHODS}
_METHODS.update({
    "size": _size, "dim": lambda ctx, x: len(x.shape) + 1,
    "numel": lambda ctx, x: ctx.batch * x.size,
    "float": _identity, "double": _identity, "to": _identity, "type_as": _identity,
    "add": _add, "add_": _add, "sub": _sub, "sub_": _sub, "mul": _mul, "mul_": _mul,
    "div": _div, "div_": _div, "neg": _neg, "__neg__": _neg, "matmul": _matmul,
    "relu": _relu, "relu_": _relu, "abs": _abs, "abs_": _abs, "clamp": _clamp,
    "clip": _clamp, "clamp_": _clamp, "clamp_min": _clamp_min, "clamp_max": _clamp_max,
    "sum": _sum, "mean": _mean, "amax": _amax, "amin": _amin, "max": _max, "min": _min,
    "maximum": _maximum, "minimum": _minimum,
})

# -- ATen operators (programs from torch.export) -----------------------------------------
def _aten_batch_norm(ctx, x, weight, bias, mean, var, training, momentum, eps, *rest):
    return _batch_norm(ctx, x, mean, var, weight, bias, training, momentum, eps)


def _aten_batch_norm_no_training(ctx, x, weight, bias, mean, var, momentum, eps):
    return _batch_norm(ctx, x, mean, var, weight, bias, False, momentum, eps), None, None


def _aten_convolution(ctx, x, weight, bias, stride, padding, dilation, transposed,
                      output_padding, groups):
    if transposed:
        return _conv_transpose(ctx, x, weight, bias, stride, padding, output_padding, groups,
                               dilation)
    return _conv(ctx, x, weight, bias, stride, padding, dilation, groups)


def _aten_with_indices(handler):
    """An ATen pooling that returns (values, indices): the indices are refused when read."""
    def pool(ctx, *args, **kwargs):
        return handler(ctx, *args, **kwargs), _NoIndices()
    return pool


class _NoIndices:
    """Stands for pooling indices, which are not piecewise linear."""


def _aten_constant_pad(ctx, x, pad, value=0.0):
    return _padded(ctx, x, pad, "constant", value)


def _aten_addmm(ctx, bias, a, b, *, beta=1, alpha=1):
    product = _matmul(ctx, a, b if alpha == 1 else _numpy(b) * alpha)
    return _combine(ctx, product, bias, 1.0, float(beta))


_ATEN = {
    "conv1d": _conv, "conv2d": _conv, "conv3d": _conv, "convolution": _aten_convolution,
    "conv_transpose1d": _conv_transpose, "conv_transpose2d": _conv_transpose,
    "conv_transpose3d": _conv_transpose, "linear": _linear,
    "addmm": _aten_addmm, "matmul": _matmul, "mm": _matmul,
    "batch_norm": _aten_batch_norm,
    "_native_batch_norm_legit_no_training": _aten_batch_norm_no_training,
    "relu": _relu, "relu_": _relu, "leaky_relu": _leaky_relu, "hardtanh": _hardtanh,
    "hardtanh_": _hardtanh, "abs": _abs, "clamp": _clamp, "clamp_min": _clamp_min,
    "clamp_max": _clamp_max, "maximum": _maximum, "minimum": _minimum,
    "max_pool1d": _max_pool(1), "max_pool2d": _max_pool(2),
    "avg_pool1d": _avg_pool(1), "avg_pool2d": _avg_pool(2),
    "adaptive_avg_pool1d": _adaptive(1, False), "adaptive_avg_pool2d": _adaptive(2, False),
    "prelu": _prelu, "_prelu_kernel": _prelu, "relu6": _relu6, "hardsigmoid": _hardsigmoid,
    "softshrink": _softshrink, "max": _max, "min": _min, "amin": _amin,
    "max_pool2d_with_indices": _aten_with_indices(_max_pool(2)),
    "max_pool1d_with_indices": _aten_with_indices(_max_pool(1)),
    "adaptive_max_pool1d": _aten_with_indices(_adaptive(1, True)),
    "adaptive_max_pool2d": _aten_with_indices(_adaptive(2, True)),
    "pad": _padded, "constant_pad_nd": _aten_constant_pad,
    "dropout": _dropout, "add": _add, "add_": _add, "sub": _sub, "rsub": _rsub, "mul": _mul,
    "div": _div, "neg": _neg, "mean": _mean, "sum": _sum, "amax": _amax,
    "_to_copy": _identity, "to": _identity, "detach": _identity, "alias": _identity,
}
_ATEN_SHAPE = {"view", "reshape", "_unsafe_view", "permute", "transpose", "t", "flatten",
               "unsqueeze", "squeeze", "cat", "stack", "slice", "select", "expand", "clone",
               "contiguous", "split", "split_with_sizes", "chunk", "unbind", "flip", "roll",
               "narrow", "unflatten", "index_select", "index", "movedim"}


def _aten_handler(target):
    """The handler of an ATen operator overload (``torch.ops.aten.relu.default``)."""
    import torch

    if not isinstance(target, torch._ops.OpOverload):
        return None
    name = target.overloadpacket.__name__
    if name in _ATEN_SHAPE:
        return _moving(target)
    return _ATEN.get(name)


_IN_PLACE = {operator.iadd, operator.isub, operator.imul, operator.itruediv}

#: Filled on first use (needs torch).
_MODULES = {}
_FUNCTIONS = {
    operator.add: _add, operator.iadd: _add, operator.sub: _sub, operator.isub: _sub,
    operator.mul: _mul, operator.imul: _mul, operator.truediv: _div, operator.itruediv: _div,
    operator.neg: _neg, operator.pos: _identity, operator.abs: _abs,
    operator.matmul: _matmul, operator.getitem: _getitem, getattr: _getattr,
}
_TORCH_FUNCTIONS = {}
_ASSERTIONS = set()


def _function_table():
    """torch functions to handlers (built once, when torch is imported)."""
    if _TORCH_FUNCTIONS:
        return _TORCH_FUNCTIONS
    import torch
    import torch.nn.functional as F

    _MODULES.update(_module_table())
    table = {
        F.linear: _linear, F.conv1d: _conv, F.conv2d: _conv, F.conv3d: _conv,
        F.conv_transpose1d: _conv_transpose, F.conv_transpose2d: _conv_transpose,
        F.conv_transpose3d: _conv_transpose, F.batch_norm: _batch_norm,
        F.relu: _relu, torch.relu: _relu, torch.relu_: _relu, F.relu_: _relu,
        F.leaky_relu: _leaky_relu, F.prelu: _prelu, F.hardtanh: _hardtanh, F.relu6: _relu6,
        F.hardsigmoid: _hardsigmoid, F.softshrink: _softshrink,
        torch.abs: _abs, torch.absolute: _abs, torch.clamp: _clamp, torch.clip: _clamp,
        torch.clamp_min: _clamp_min, torch.clamp_max: _clamp_max,
        torch.maximum: _maximum, torch.minimum: _minimum, torch.max: _max, torch.min: _min,
        torch.amax: _amax, torch.amin: _amin,
        F.max_pool1d: _max_pool(1), F.max_pool2d: _max_pool(2),
        F.avg_pool1d: _avg_pool(1), F.avg_pool2d: _avg_pool(2),
        F.adaptive_avg_pool1d: _adaptive(1, False), F.adaptive_avg_pool2d: _adaptive(2, False),
        F.adaptive_max_pool1d: _adaptive(1, True), F.adaptive_max_pool2d: _adaptive(2, True),
        F.dropout: _dropout, F.dropout1d: _dropout, F.dropout2d: _dropout,
        F.pad: _padded,
        torch.add: _add, torch.sub: _sub, torch.subtract: _sub, torch.rsub: _rsub,
        torch.mul: _mul, torch.multiply: _mul, torch.div: _div, torch.divide: _div,
        torch.true_divide: _div, torch.neg: _neg, torch.negative: _neg,
        torch.matmul: _matmul, torch.mm: _matmul, torch.sum: _sum, torch.mean: _mean,
    }
    for name in ("reshape", "flatten", "permute", "transpose", "squeeze", "unsqueeze",
                 "cat", "concat", "concatenate", "stack", "split", "chunk", "flip", "roll",
                 "narrow", "select", "movedim", "moveaxis", "swapaxes", "swapdims", "t",
                 "unbind", "unflatten", "clone", "detach"):
        table[getattr(torch, name)] = _moving(getattr(torch, name))
    _TORCH_FUNCTIONS.update(table)
    _ASSERTIONS.update({torch._assert, torch._check, torch._check_is_size,
                        torch.ops.aten._assert_scalar.default,
                        torch.ops.aten.sym_constrain_range_for_size.default})
    return _TORCH_FUNCTIONS

