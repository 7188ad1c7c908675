"""`without_windows`: the same function as a network of ReLU and linear units only.

Verification and its certificate checker decide one unit's side at a time; a max window
has one argmax among several entries. :func:`without_windows` rewrites every window as
a tree of pairwise maxima ``max(x, y) = x + relu(y - x)``: one extra layer per level
of the tree, whose units are the linear copies ``x`` and the ReLU units ``y - x``.
Every weight the rewrite adds is a small integer (a sum of 0, +1 and -1 entries), and
the next original layer's columns are copied, never added, so no weight is rounded:
the rewritten network computes the same real-valued function as the original, and its
float64 forward pass differs from the original's only by the rounding of ``y - x`` and
``x + r``.

The rewrite keeps every unit of every layer (``keep`` is all of them, in order): units
that the original layer reads neither as kept entries nor as window entries are left
out, and kept entries are put first, in their order. Its regions refine the original's
(a window's argmax is fixed on each of them); on an argmax cell of a non-first entry,
the tree has kinks that the window does not (the comparisons the winner does not
take part in), so the rewritten network can have more regions than the original.
"""

import numpy as np

from .layers import LINEAR, RELU, Layer

__all__ = ["without_windows"]


def without_windows(network):
    """The network with every max window rewritten as ReLU and linear units.

    Returns ``network`` itself when every hidden layer already keeps all its units, in
    order, and has no windows.

    Examples
    --------
    >>> import numpy as np
    >>> from polyrelu import Network
    >>> from polyrelu.network.layers import Layer
    >>> pool = Network.from_layers([Layer.build(np.eye(3), np.zeros(3), keep=[],
    ...                                         windows=[[0, 1, 2]]),
    ...                             Layer.affine([[2.0]], [0.0])])
    >>> flat = without_windows(pool)
    >>> [layer.windows.shape[0] for layer in flat.layers], len(flat.layers)
    ([0, 0, 0, 0], 4)
    >>> flat.forward([[1.0, -5.0, 3.0]]).tolist()
    [[6.0]]
    """
    if all(_plain(layer) for layer in network.layers[:-1]):
        return network
    rewritten, columns = [], None
    for layer in network.layers:
        first, outputs = _reordered(_composed(layer, columns))
        rewritten.append(first)
        levels, columns = _max_tree(first.n_z, outputs)
        rewritten.extend(levels)
    return type(network).from_layers(rewritten,
                                     allow_extreme_numerics=network.allow_extreme_numerics)


def _plain(layer):
    return layer.windows.shape[0] == 0 and np.array_equal(layer.keep, np.arange(layer.n_z))


def _composed(layer, columns):
    """``layer`` reading the rewritten previous layer: output ``o`` of the original previous
    layer is the sum of the entries ``columns[o]``, so its weight column is copied to them
    (each entry belongs to one output: a copy, not a sum)."""
    if columns is None:
        return layer
    width = sum(len(c) for c in columns)
    weight = np.zeros((layer.n_z, width))
    for o, entries in enumerate(columns):
        weight[:, entries] = layer.weight[:, [o]]
    return Layer.build(weight, layer.bias, units=layer.units, keep=layer.keep,
                       windows=layer.windows, names=layer.names,
                       window_names=layer.window_names)


def _reordered(layer):
    """The layer keeping all its units (the kept ones first, then the window entries not
    kept), no windows; and each original output's candidates: one list of unit indices per
    kept entry, the windows' entries for each window (lists of one index each)."""
    if _plain(layer):
        return layer, [[[i]] for i in range(layer.n_z)]
    entries = layer.windows[layer.windows >= 0]
    extra = np.setdiff1d(entries, layer.keep)
    order = np.concatenate([layer.keep, extra]).astype(np.int64)
    position = {int(unit): i for i, unit in reversed(list(enumerate(order)))}
    outputs = [[[i]] for i in range(layer.keep.size)]
    outputs += [[[position[int(e)]] for e in window if e >= 0] for window in layer.windows]
    names = layer.names if np.array_equal(order, np.arange(layer.n_z)) else ()
    first = Layer.build(layer.weight[order], layer.bias[order], units=layer.units[order],
                        names=names)
    return first, outputs


def _max_tree(width, outputs):
    """Layers that turn the candidates of each output (sums of entries of a vector of
    ``width`` values) into one, pairing candidates ``x, y`` as ``x + relu(y - x)``; returns
    the layers and, per output, the entries of the last layer whose sum it is."""
    levels = []
    while _open(outputs):
        rows, units, merged = [], [], []
        for candidates in outputs:
            pairs = [candidates[i:i + 2] for i in range(0, len(candidates), 2)]
            merged.append([])
            for pair in pairs:
                start = len(rows)
                rows.append(_indicator(width, pair[0]))
                units.append(LINEAR)
                if len(pair) == 2:
                    rows.append(_indicator(width, pair[1]) - _indicator(width, pair[0]))
                    units.append(RELU)
                merged[-1].append(list(range(start, len(rows))))
        levels.append(Layer.build(np.array(rows), np.zeros(len(rows)), units=units,
                                  names=((0, len(rows), f"max tree level {len(levels) + 1}"),)))
        outputs, width = merged, len(rows)
    return levels, [candidates[0] for candidates in outputs]


def _open(outputs):
    """Whether another level is needed: an output has several candidates, or two outputs
    share an entry (a window entry also kept, overlapping windows of one entry each)."""
    entries = [e for candidates in outputs for c in candidates for e in c]
    return (any(len(candidates) > 1 for candidates in outputs)
            or len(set(entries)) < len(entries))


def _indicator(width, entries):
    row = np.zeros(width)
    np.add.at(row, entries, 1.0)
    return row
