"""Exact rational arithmetic on a network's float64 weights.

Every float64 number is a rational, so the network a float64 model defines can be
evaluated without rounding (``fractions.Fraction``). These functions are slow
(pure Python) and meant for re-checking a few points or patterns: counterexamples,
maximisers, vertices.
"""

from fractions import Fraction

__all__ = ["to_fractions", "exact_affine", "exact_layers", "exact_pattern",
           "exact_affine_maps", "solve_exact"]

_ZERO = Fraction(0)


def to_fractions(values):
    """A list of the exact rational values of float64 numbers (Fractions pass through)."""
    return [v if isinstance(v, Fraction) else Fraction(float(v)) for v in values]


def exact_layers(network, x):
    """Pre-activations of every layer at the rational point ``x``, exactly.

    Returns a list with one list of Fractions per layer (the hidden layers, then
    the output layer).

    Examples
    --------
    >>> from polyrelu import Network
    >>> net = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.25]])
    >>> [[str(v) for v in layer] for layer in exact_layers(net, [0.5])]
    [['1/2', '-1/2'], ['3/4']]
    """
    values, layers = to_fractions(x), []
    for layer in network.layers:
        z = exact_affine(layer, values)
        layers.append(z)
        values = _exact_output(layer, z)
    return layers


def exact_affine(layer, values):
    """A layer's pre-activations ``weight @ values + bias`` at rational ``values``, exactly
    (a list of Fractions)."""
    return [sum((c * v for c, v in zip(row, values) if c), bias)
            for row, bias in zip(_rows(layer.weight), to_fractions(layer.bias))]


def exact_pattern(network, x):
    """The pattern slots (a list of bools) at the rational point ``x``, exactly: a ReLU
    slot is active when its pre-activation is > 0, a window's argmax is the lowest
    position of the maximum.

    >>> from polyrelu import Network
    >>> net = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> exact_pattern(net, [0.0]), exact_pattern(net, [1.0])
    ([False, False], [True, False])
    """
    values, slots = to_fractions(x), []
    for layer in network.layers[:-1]:
        z = exact_affine(layer, values)
        slots += [z[i] > 0 for i in layer.relu_units]
        u = _exact_units(layer, z)
        for window in layer.windows:
            entries = [u[i] for i in window if i >= 0]
            best = entries.index(max(entries))
            slots += [p == best for p in range(len(window))]
        values = _exact_output(layer, z)
    return slots


def exact_affine_maps(network, pattern):
    """The affine maps of activation region ``pattern``, exactly.

    Returns ``(hidden, output)``: ``hidden`` is a list of ``(a, c)`` (a list of
    Fractions and a Fraction) with pre-activation ``z_j(x) = a . x + c`` for every
    hidden pre-activation, ``output`` the same for every output.
    """
    d = network.input_dim
    maps = [([Fraction(int(i == j)) for j in range(d)], _ZERO) for i in range(d)]
    sources = network.layer_sources(pattern)
    hidden = []
    for index, layer in enumerate(network.layers):
        z = [([sum((c * m[0][k] for c, m in zip(row, maps) if c), _ZERO) for k in range(d)],
              sum((c * m[1] for c, m in zip(row, maps) if c), bias))
             for row, bias in zip(_rows(layer.weight), to_fractions(layer.bias))]
        if index == len(network.layers) - 1:
            return hidden, z
        hidden.extend(z)
        maps = [z[s] if s >= 0 else ([_ZERO] * d, _ZERO) for s in sources[index]]
    raise AssertionError("unreachable: a network has an output layer")


def _exact_units(layer, z):
    return [max(v, _ZERO) if unit == 1 else v for v, unit in zip(z, layer.units)]


def _exact_output(layer, z):
    """A layer's output from its exact pre-activations: kept units, then window maxima."""
    u = _exact_units(layer, z)
    return [u[i] for i in layer.keep] + [max(u[i] for i in window if i >= 0)
                                          for window in layer.windows]


def solve_exact(matrix, rhs):
    """The solution of the square rational system ``matrix x = rhs``, or None if singular.

    >>> [str(v) for v in solve_exact([[2, 1], [1, 3]], [3, 5])]
    ['4/5', '7/5']
    """
    n = len(rhs)
    rows = [to_fractions(row) + to_fractions([value]) for row, value in zip(matrix, rhs)]
    for col in range(n):
        pivot = next((r for r in range(col, n) if rows[r][col] != 0), None)
        if pivot is None:
            return None
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(n):
            if r != col and rows[r][col] != 0:
                factor = rows[r][col] / rows[col][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col])]
    return [rows[i][n] / rows[i][i] for i in range(n)]


def _rows(w):
    return [to_fractions(row) for row in w]
