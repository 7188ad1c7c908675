"""The network model (layers of ReLU and linear units with max windows, float64) and its
loaders: ``.npz`` arrays, ONNX, torch modules and exported programs, scikit-learn MLPs."""

from .loaders import (
    from_npz,
    from_sklearn,
    from_skops,
    from_torch,
    from_torch_state,
    load_network,
)
from .model import LocalAffineMaps, Network, from_affine_steps
from .onnx_import import from_onnx
from .torch_import import from_exported_program

__all__ = [
    "LocalAffineMaps",
    "Network",
    "from_affine_steps",
    "from_exported_program",
    "from_npz",
    "from_onnx",
    "from_sklearn",
    "from_skops",
    "from_torch",
    "from_torch_state",
    "load_network",
]
