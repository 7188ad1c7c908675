"""A max window with many positions makes the engines build all position pairs at once:
``Network.window_pairs`` (polyrelu/network/model.py, ``np.triu_indices(k, 1)`` per
layer, used by ``KinkSet`` in regions/walk.py) needs k^2 booleans and k(k-1)/2 pairs
before any region is built, with no size check. A network file well inside
``max_parameters`` therefore ends in an uncontrolled MemoryError (a traceback) instead of
a one-line SizeLimitError -- or, for sizes that still fit, in tens of GB of RAM (a
GlobalMaxPool over a 16 x 64 x 64 feature map has k = 65,536: 2.1e9 pairs, 34 GB).

Minimal reproduction: an .npz with ``W0`` of shape (2e6, 1), linear units, no kept
entries and one window ``[[0, ..., 2e6 - 1]]`` (6e6 entries, under the 1e7 limit) loads
fine; ``enumerate_regions`` on [-1, 1] raises
``MemoryError: Unable to allocate 3.64 TiB for an array with shape (2000000, 2000000)``.
(The allocation is refused at once; nothing is actually allocated.)
"""

import numpy as np
import pytest

from polyrelu import Domain, PolyreluError, enumerate_regions
from polyrelu.network.loaders import from_npz


def test_a_wide_window_is_refused_with_a_polyrelu_error(tmp_path):
    k = 2_000_000
    path = tmp_path / "wide.npz"
    np.savez(path, W0=np.ones((k, 1)), b0=np.arange(k) * 1e-6, W1=np.ones((1, 1)),
             b1=np.zeros(1), units0=np.zeros(k, np.int8), keep0=np.zeros(0, np.int64),
             windows0=np.arange(k)[None])
    with pytest.raises(PolyreluError, match="position pairs"):  # refused when loaded
        enumerate_regions(from_npz(path), Domain.box([-1.0], [1.0]))
