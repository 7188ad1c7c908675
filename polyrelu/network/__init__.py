"""The network model (layers of affine maps, ReLU and linear units, max windows; float64),
its lowering from tensor graphs, and its loaders:
``.npz`` arrays, ONNX, torch modules and scikit-learn MLPs."""

from .loaders import (
    from_npz,
    from_sklearn,
    from_skops,
    from_torch,
    from_torch_state,
    load_network,
    save_npz,
)
from .model import LocalAffineMaps, Network, from_affine_steps
from .onnx_import import from_onnx

__all__ = ["Network", "LocalAffineMaps", "from_affine_steps", "load_network", "from_npz",
           "save_npz", "from_onnx", "from_torch", "from_torch_state", "from_sklearn", "from_skops"]
