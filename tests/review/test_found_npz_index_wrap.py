"""Hostile .npz network files whose integer index arrays wrap around on the cast to
int8/int64 in ``Layer.build`` (polyrelu/network/layers.py, ``np.array(units, np.int8)``
and ``np.array(windows, dtype=np.int64)``) load as a *different* network instead of
being refused with a one-line InvalidFileError.

Minimal reproductions:

* ``units0 = [257, 256]`` (int64): 257 wraps to 1 (ReLU) and 256 to 0 (linear); the
  file loads, the check ``np.isin(units, (0, 1))`` runs on the wrapped int8 codes.
* ``windows0 = [[0, 2**64 - 1]]`` (uint64): 2**64 - 1 wraps to -1 and becomes padding;
  the window silently loses a position.
"""

import numpy as np
import pytest

from polyrelu import InvalidFileError
from polyrelu.network.loaders import from_npz


def _base():
    return {"W0": np.eye(2), "b0": np.zeros(2), "W1": np.ones((1, 2)), "b1": np.zeros(1),
            "units0": np.array([1, 1]), "keep0": np.array([0, 1]),
            "windows0": np.zeros((0, 1), np.int64)}


def test_unit_codes_out_of_range_are_refused_not_wrapped(tmp_path):
    path = tmp_path / "units.npz"
    np.savez(path, **dict(_base(), units0=np.array([257, 256], np.int64)))
    with pytest.raises(InvalidFileError):
        from_npz(path)


def test_negative_unit_code_is_refused(tmp_path):
    path = tmp_path / "units_neg.npz"
    np.savez(path, **dict(_base(), units0=np.array([-255, 1], np.int64)))  # -255 -> int8 1
    with pytest.raises(InvalidFileError):
        from_npz(path)


def test_uint64_window_index_is_refused_not_made_padding(tmp_path):
    path = tmp_path / "windows.npz"
    np.savez(path, **dict(_base(), keep0=np.zeros(0, np.int64), W1=np.ones((1, 1)),
                          windows0=np.array([[0, np.iinfo(np.uint64).max]], np.uint64)))
    with pytest.raises(InvalidFileError):
        from_npz(path)
