"""A network as named arrays (``W0, b0, ...`` and, for layers that are not plain ReLU
layers, ``units{l}, keep{l}, windows{l}``): the layout of polyrelu's ``.npz`` network
files and of the network inside saved complexes and certificates.

>>> import numpy as np
>>> from polyrelu import Network
>>> net = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
>>> sorted(network_arrays(net))
['W0', 'W1', 'b0', 'b1']
>>> network_from_arrays(network_arrays(net)).forward([[-2.0]]).tolist()
[[2.0]]
"""

import numpy as np

from ..errors import InvalidFileError, InvalidNetworkError
from .layers import Layer
from .model import Network

__all__ = ["network_arrays", "network_from_arrays"]

_EXTRA = ("units", "keep", "windows")


def network_arrays(network):
    """The arrays of ``network`` by name (see the module docstring)."""
    arrays = {}
    last = len(network.layers) - 1
    for i, layer in enumerate(network.layers):
        arrays[f"W{i}"], arrays[f"b{i}"] = layer.weight, layer.bias
        plain = layer.is_affine if i == last else layer.is_relu
        if not plain:
            arrays.update({f"{name}{i}": getattr(layer, name) for name in _EXTRA})
    return arrays


def network_from_arrays(data, *, what="the network", allow_extreme_numerics=False):
    """The :class:`Network` of named arrays (a mapping, e.g. an open ``np.load``).

    Raises
    ------
    InvalidFileError
        If layers are missing or inconsistent, naming ``what``.
    """
    keys = set(data)
    count = sum(1 for key in keys if key[:1] == "W" and key[1:].isdigit())
    expected = {f"{p}{i}" for i in range(count) for p in "Wb"}
    extra = {key for key in keys if key.rstrip("0123456789") in _EXTRA}
    if count == 0 or not expected <= keys:
        missing = sorted(expected - keys) or ["W0", "b0"]
        raise InvalidFileError(f"{what}: expected keys W0, b0, W1, b1, ...; missing {missing[:4]}")
    try:
        if not extra:
            return Network([data[f"W{i}"] for i in range(count)],
                           [data[f"b{i}"] for i in range(count)],
                           allow_extreme_numerics=allow_extreme_numerics)
        return Network.from_layers([_layer(data, i, i == count - 1) for i in range(count)],
                                   allow_extreme_numerics=allow_extreme_numerics)
    except InvalidNetworkError as err:
        raise InvalidFileError(f"{what}: {err}") from err


def _layer(data, i, last):
    weight, bias = data[f"W{i}"], data[f"b{i}"]
    present = [f"{name}{i}" in data for name in _EXTRA]
    if not any(present):
        return Layer.affine(weight, bias) if last else Layer.build(weight, bias)
    if not all(present):
        raise InvalidNetworkError(f"layer {i} has only some of units, keep and windows")
    arrays = [np.asarray(data[f"{name}{i}"]) for name in _EXTRA]
    if any(a.dtype.kind not in "iu" for a in arrays):
        raise InvalidNetworkError(f"layer {i}: units, keep and windows must be integers")
    units, keep, windows = arrays
    return Layer.build(weight, bias, units=units, keep=keep, windows=windows)
