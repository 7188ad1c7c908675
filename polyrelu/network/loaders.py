"""Build a :class:`Network` from arrays, ``.npz`` files, torch, scikit-learn or ONNX.

Every loader converts to float64 numpy once, here; the rest of polyrelu never
sees torch, scikit-learn or onnx objects. Consecutive affine layers without a
ReLU between them are composed into one (exactly, in float64), and a model that
ends with a ReLU gets an identity output layer, so every loader returns the
canonical "affine, ReLU, affine, ..., affine" form.
"""

from pathlib import Path

import numpy as np

from ..errors import InvalidFileError, InvalidNetworkError, UnsupportedLayerError
from .model import Network, from_affine_steps
from .onnx_import import from_onnx

__all__ = ["load_network", "from_npz", "from_torch", "from_sklearn"]


def load_network(path):
    """Load a network from a file, by extension.

    Supported: ``.npz`` (keys ``W0, b0, W1, b1, ...``, W of shape out x in),
    ``.onnx``, a saved torch model (``.pt``/``.pth``, a pickled
    ``nn.Sequential`` loaded with ``weights_only=False``: only open files you
    trust) and a saved scikit-learn MLP (``.joblib``/``.pkl``, same caveat).

    Raises
    ------
    InvalidFileError
        If the file is missing or its extension is not one of the above.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return from_npz(path)
    if suffix == ".onnx":
        return from_onnx(path)
    if suffix in (".pt", ".pth"):
        import torch

        return from_torch(torch.load(path, weights_only=False))
    if suffix in (".joblib", ".pkl"):
        import joblib

        return from_sklearn(joblib.load(path))
    raise InvalidFileError(
        f"{path}: unknown network format {suffix!r} (expected .npz, .onnx, .pt, .pth, "
        ".joblib or .pkl)"
    )


def from_npz(path):
    """Network from an ``.npz`` file with keys ``W0, b0, W1, b1, ...`` (W is out x in)."""
    with np.load(path, allow_pickle=False) as data:
        count = sum(1 for key in data.files if key[:1] == "W" and key[1:].isdigit())
        missing = [k for i in range(count) for k in (f"W{i}", f"b{i}") if k not in data.files]
        if count == 0 or missing:
            raise InvalidFileError(
                f"{path}: expected keys W0, b0, W1, b1, ...; missing {missing or ['W0', 'b0']}"
            )
        return Network([data[f"W{i}"] for i in range(count)],
                       [data[f"b{i}"] for i in range(count)])


def from_torch(model):
    """Network from a ``torch.nn.Sequential`` of Linear, ReLU, Flatten and Identity.

    Raises :class:`UnsupportedLayerError` naming the first other module.
    """
    import torch.nn as nn

    modules = list(model) if isinstance(model, nn.Sequential) else [model]
    steps, input_dim = [], None
    for index, module in enumerate(modules):
        if isinstance(module, nn.Linear):
            W = module.weight.detach().cpu().double().numpy()
            b = (module.bias.detach().cpu().double().numpy() if module.bias is not None
                 else np.zeros(W.shape[0]))
            input_dim = input_dim or W.shape[1]
            steps.append(("affine", W, b))
        elif isinstance(module, nn.ReLU):
            steps.append(("relu",))
        elif not isinstance(module, (nn.Flatten, nn.Identity)):
            raise UnsupportedLayerError(
                f"torch module {index} ({type(module).__name__}) is not supported; "
                "supported: Linear, ReLU, Flatten, Identity"
            )
    if input_dim is None:
        raise InvalidNetworkError("the torch model has no Linear layer")
    return from_affine_steps(steps, input_dim)


def from_sklearn(model):
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
    return Network(weights, biases)
