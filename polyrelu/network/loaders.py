"""Build a :class:`Network` from arrays, ``.npz`` files, torch, scikit-learn or ONNX.

Every loader converts to float64 numpy once, here; the rest of polyrelu never
sees torch, scikit-learn or onnx objects. Consecutive affine layers without a
ReLU between them are composed into one (exactly, in float64), and a model that
ends with a ReLU gets an identity output layer, so every loader returns the
canonical "affine, ReLU, affine, ..., affine" form.

Files are untrusted by default: nothing is unpickled unless the caller passes
``trust=True`` (``--trust-pickle`` on the command line), and the size of every
array is read from the file's headers and checked against ``max_parameters``
before anything of that size is allocated.
"""

import gzip
import json
import pickle
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..arrayfiles import npy_headers, read_npz
from ..errors import (
    InvalidFileError,
    InvalidNetworkError,
    PolyreluError,
    SizeLimitError,
    UnsafeFileError,
    UnsupportedLayerError,
    brief,
    clip,
)
from .arrays import network_arrays, network_from_arrays
from .model import MAX_PARAMETERS, Network
from .onnx_import import from_onnx
from .torch_import import from_exported_program, from_torch

__all__ = [
    "MAX_DECOMPRESSED_BYTES",
    "MAX_PARAMETERS",
    "gzip_fallback",
    "read_gzip",
    "from_npz",
    "from_sklearn",
    "from_skops",
    "from_torch",
    "from_torch_state",
    "load_network",
    "save_npz",
]

_PICKLE_ROUTES = {
    ".pkl": "save a scikit-learn MLP with skops (skops.io.dump(model, 'net.skops')) or "
            "convert it to ONNX (skl2onnx), or load it yourself and call from_sklearn",
    ".pt": "export the torch model to ONNX (torch.onnx.export); in Python, save its "
           "state_dict and call from_torch_state(architecture, path) (weights_only=True)",
}
_PICKLE_ROUTES[".joblib"] = _PICKLE_ROUTES[".pkl"]
_PICKLE_ROUTES[".pth"] = _PICKLE_ROUTES[".pt"]
# torch.export.load unpickles too: sample inputs with torch.load(weights_only=False) when
# weights_only=True fails, weights and constants the archive marks as pickled, opaque
# constants with pickle.loads
_PICKLE_ROUTES[".pt2"] = ("export the torch model to ONNX (torch.onnx.export) or save a "
                          "state dict (torch.save(model.state_dict(), path)) and call "
                          "from_torch_state(architecture, path)")


#: Default limit on the decompressed size of a gzip file (``x.onnx.gz``, ``x.vnnlib.gz``):
#: 1 GiB, counted while decompressing, so a small file that expands without end (a gzip
#: bomb) is refused after at most that much work and memory. The public VNN-COMP MLP
#: benchmarks decompress to at most a few MB per file.
MAX_DECOMPRESSED_BYTES = 1 << 30
_CHUNK = 1 << 20


def gzip_fallback(path):
    """``path``, or ``path + ".gz"`` when only that exists (the VNN-COMP benchmark layout:
    instances.csv names ``x.onnx``, the repository holds ``x.onnx.gz``).

    >>> str(gzip_fallback("no/such/file.onnx"))
    'no/such/file.onnx'
    """
    path = Path(path)
    zipped = path.with_name(path.name + ".gz")
    return zipped if not path.exists() and zipped.is_file() else path


def read_gzip(path, max_bytes=None):
    """The decompressed contents (bytes) of the gzip file ``path``, at most ``max_bytes``
    (default :data:`MAX_DECOMPRESSED_BYTES`).

    Raises
    ------
    SizeLimitError
        As soon as more than ``max_bytes`` bytes have come out.
    InvalidFileError
        If the file cannot be read or is not a valid gzip stream.
    """
    max_bytes = MAX_DECOMPRESSED_BYTES if max_bytes is None else max_bytes
    chunks, size = [], 0
    try:
        with gzip.open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise SizeLimitError(f"{path}: decompresses to more than {max_bytes} "
                                         "bytes; refused (raise max_bytes for a larger file)")
                chunks.append(chunk)
    except (OSError, EOFError, zlib.error) as err:
        raise InvalidFileError(f"{path}: cannot be decompressed ({brief(err)})") from err
    return b"".join(chunks)


def load_network(path, *, trust=False, max_parameters=MAX_PARAMETERS,
                 allow_extreme_numerics=False):
    """Load a network from a file, by extension.

    Parameters
    ----------
    path : str or Path
        ``.npz`` (keys ``W0, b0, W1, b1, ...``, W of shape out x in), ``.onnx``, or
        ``.skops`` (a scikit-learn ``MLPClassifier``/``MLPRegressor`` saved with
        skops), ``.onnx.gz`` (decompressed in memory, at most
        ``MAX_DECOMPRESSED_BYTES``; also read for ``x.onnx`` when only ``x.onnx.gz``
        exists); with ``trust=True`` also a pickled torch model (``.pt``/``.pth``), a
        ``torch.export.save`` program (``.pt2``) or a scikit-learn MLP
        (``.joblib``/``.pkl``).
    trust : bool, default False
        Unpickle ``.pt``/``.pth``/``.pt2``/``.joblib``/``.pkl`` files. Unpickling runs
        code from the file: only for files you made or trust. A warning says so.
    max_parameters : int
        Largest number of parameters (array entries) the file may hold, and the
        largest matrix the ONNX import may build; see :data:`MAX_PARAMETERS`.
    allow_extreme_numerics : bool, default False
        Passed to :class:`Network`: proceed on numbers polyrelu would refuse.

    Raises
    ------
    InvalidFileError
        If the file is missing, damaged, or its extension is not one of the above.
    UnsafeFileError
        For a pickle without ``trust=True``; the message names the safe routes.
    SizeLimitError
        If the file holds more than ``max_parameters`` parameters.
    """
    path = gzip_fallback(path)
    if not path.is_file():
        raise InvalidFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    options = {"max_parameters": max_parameters,
               "allow_extreme_numerics": allow_extreme_numerics}
    if path.name.lower().endswith(".onnx.gz"):
        return from_onnx(_onnx_model(read_gzip(path), path), **options)
    if suffix == ".npz":
        return from_npz(path, **options)
    if suffix == ".onnx":
        return from_onnx(path, **options)
    if suffix == ".skops":
        return from_skops(path, **options)
    if suffix in _PICKLE_ROUTES:
        return _from_pickle(path, suffix, trust, allow_extreme_numerics)
    raise InvalidFileError(
        f"{path}: unknown network format {suffix!r} (expected .npz, .onnx, .onnx.gz or "
        ".skops; .pt, .pth, .pt2, .joblib or .pkl with trust=True)")


def _onnx_model(data, path):
    import onnx

    try:
        return onnx.load_model_from_string(data)
    except Exception as err:  # onnx raises several unrelated types
        raise InvalidFileError(f"{path}: cannot be read as ONNX ({brief(err)})") from err


def _from_pickle(path, suffix, trust, allow_extreme_numerics):
    """A torch or scikit-learn model unpickled from ``path`` (only with ``trust``)."""
    if not trust:
        raise UnsafeFileError(
            f"{path}: {suffix} files are (or hold) pickles, and unpickling runs code from "
            f"the file; refused. Instead, {_PICKLE_ROUTES[suffix]}; or, for a file you "
            "trust, pass trust=True (--trust-pickle)")
    warnings.warn(f"unpickling {path}: this runs code from the file (trust=True)",
                  stacklevel=3)
    if suffix in (".pt", ".pth", ".pt2"):
        return _from_torch_file(path, suffix, allow_extreme_numerics)
    import joblib

    return from_sklearn(joblib.load(path), allow_extreme_numerics=allow_extreme_numerics)


def _from_torch_file(path, suffix, allow_extreme_numerics):
    """A trusted torch file: a pickled module, or an exported program (its input shape
    from its example inputs)."""
    import torch

    try:
        if suffix != ".pt2":
            return from_torch(torch.load(path, weights_only=False),
                              allow_extreme_numerics=allow_extreme_numerics)
        program = torch.export.load(path)
    except (RuntimeError, OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile,
            pickle.UnpicklingError) as err:
        raise InvalidFileError(f"{path}: not a readable torch file ({brief(err)})") from err
    return from_exported_program(program, allow_extreme_numerics=allow_extreme_numerics)


def from_npz(path, *, max_parameters=MAX_PARAMETERS, allow_extreme_numerics=False):
    """Network from an ``.npz`` file with keys ``W0, b0, W1, b1, ...`` (W is out x in), and
    ``units{l}, keep{l}, windows{l}`` for layers that are not plain ReLU layers (see
    :mod:`polyrelu.network.arrays`; :func:`save_npz` writes them).

    The arrays are read with ``allow_pickle=False``; every array's shape and dtype
    are read from its header and checked (numbers only, at most ``max_parameters``
    entries in all) before any array is loaded.

    Raises
    ------
    InvalidFileError
        If the file is not a readable npz archive or lacks a key.
    SizeLimitError
        If its arrays hold more than ``max_parameters`` entries.
    """
    arrays = read_npz(path, "network (.npz)", max_entries=max_parameters)
    return network_from_arrays(arrays, what=str(path),
                               allow_extreme_numerics=allow_extreme_numerics)


def save_npz(network, path):
    """Write ``network`` to an ``.npz`` file that :func:`from_npz` reads back (any network:
    plain ReLU layers as ``W0, b0, ...``, other layers with their units, kept entries and
    windows).

    >>> import tempfile, os
    >>> from polyrelu import Network
    >>> net = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> path = os.path.join(tempfile.mkdtemp(), "net.npz")
    >>> save_npz(net, path)
    >>> from_npz(path).forward([[3.0]]).tolist()
    [[3.0]]
    """
    np.savez(path, **network_arrays(network))


def from_skops(path, *, max_parameters=MAX_PARAMETERS, allow_extreme_numerics=False):
    """Network from a scikit-learn ``MLPClassifier``/``MLPRegressor`` saved with skops.

    The file is checked before loading: its object tree may name only the MLP
    classes, their optimisers and label binariser, builtin containers and numpy
    arrays and scalars (skops' own trusted-types check runs too), and its arrays
    may hold at most ``max_parameters`` entries (from their headers).

    Raises
    ------
    UnsafeFileError
        If the file names any other type.
    InvalidFileError
        If skops is not installed or the file is damaged.
    """
    try:
        import skops.io as sio
    except ImportError as err:
        raise InvalidFileError(f"{path}: reading .skops files needs skops "
                               "(pip install 'polyrelu[sklearn]')") from err
    try:
        with zipfile.ZipFile(path) as archive:
            npy_headers(archive, path, max_parameters)
            schema = json.loads(archive.read("schema.json"))
        trusted = _skops_types(schema, path)
        model = sio.load(path, trusted=sorted(trusted))
    except PolyreluError:
        raise
    except Exception as err:  # skops raises many unrelated types on damaged files
        raise InvalidFileError(f"{path}: not a readable .skops file ({brief(err)})") from err
    return from_sklearn(model, allow_extreme_numerics=allow_extreme_numerics)


_SKOPS_OBJECTS = {
    "sklearn.neural_network._multilayer_perceptron.MLPClassifier",
    "sklearn.neural_network._multilayer_perceptron.MLPRegressor",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.preprocessing._label.LabelBinarizer",
}
_SKOPS_BUILTINS = {"dict", "list", "tuple", "str", "int", "float", "bool", "NoneType",
                   "bytes", "set"}
_SKOPS_DATA_NODES = {"NdArrayNode", "DTypeNode", "RandomStateNode", "RandomGeneratorNode",
                     "BitGeneratorNode", "JsonNode"}


def _skops_types(schema, path):
    """The non-default types a skops schema names; UnsafeFileError for any not allowed."""
    found, stack = set(), [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        stack.extend(node.values())
        if "__class__" not in node:
            continue
        name = f"{node.get('__module__')}.{node['__class__']}"
        loader = node.get("__loader__")
        if name in _SKOPS_OBJECTS and loader == "ObjectNode":
            found.add(name)
        elif not (node.get("__module__") == "builtins" and node["__class__"] in _SKOPS_BUILTINS
                  or str(node.get("__module__")).split(".")[0] == "numpy"
                  and loader in _SKOPS_DATA_NODES):
            raise UnsafeFileError(f"{path}: the skops file names {clip(name)} "
                                  f"({clip(str(loader))}); only scikit-learn MLPs are loaded")
    return found


def from_torch_state(architecture, path, input_shape=None, *, allow_extreme_numerics=False):
    """Network from a torch state dict file loaded into ``architecture``, safely.

    The file is read with ``torch.load(path, weights_only=True)``, which refuses
    anything but tensors and plain containers (no code runs), then loaded into the
    given module (its shapes are checked by ``load_state_dict``), which is put in eval
    mode and converted by :func:`from_torch`.

    Parameters
    ----------
    architecture : torch.nn.Module
        The model, e.g. built by the code that trained it.
    path : str or Path
        A file saved with ``torch.save(model.state_dict(), path)``.
    input_shape : tuple of int, optional
        One sample's shape, as for :func:`from_torch`.

    Raises
    ------
    InvalidFileError
        If torch refuses the file or its tensors do not fit the architecture.
    """
    import torch

    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
        architecture.load_state_dict(state)
    except (RuntimeError, OSError, ValueError, KeyError, TypeError, EOFError,
            pickle.UnpicklingError) as err:
        raise InvalidFileError(f"{path}: not a state dict for this architecture "
                               f"({brief(err)})") from err
    return from_torch(architecture.eval(), input_shape,
                      allow_extreme_numerics=allow_extreme_numerics)


def from_sklearn(model, *, allow_extreme_numerics=False):
    """Network from a fitted scikit-learn ``MLPClassifier`` or ``MLPRegressor``.

    The network outputs the final layer's pre-activations (logits): for a
    classifier the softmax/logistic output is a monotone function of them.
    """
    if not hasattr(model, "coefs_"):
        raise InvalidNetworkError(
            f"{type(model).__name__} is not a fitted scikit-learn MLP (no coefs_)"
        )
    if model.activation != "relu":
        raise UnsupportedLayerError(
            f"scikit-learn MLP activation {model.activation!r} is not supported; only 'relu'"
        )
    weights = [np.asarray(w, dtype=np.float64).T for w in model.coefs_]
    biases = [np.asarray(b, dtype=np.float64) for b in model.intercepts_]
    return Network(weights, biases, allow_extreme_numerics=allow_extreme_numerics)

