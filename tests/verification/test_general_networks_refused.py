"""Verification does not handle max windows and linear units yet: it refuses such a
network with one clear line (API: UnsupportedNetworkError; CLI: exit 2), never answers."""

import pytest

from polyrelu.cli import main
from polyrelu.errors import UnsupportedNetworkError
from polyrelu.network.loaders import save_npz
from polyrelu.verification import verify
from polyrelu.verification.vnnlib import read_vnnlib
from tests.networks import residual_pool_network


def _property(path):
    path.write_text("(declare-const X_0 Real) (declare-const X_1 Real) (declare-const Y_0 Real)"
                    " (assert (>= X_0 -1)) (assert (<= X_0 1)) (assert (>= X_1 -1))"
                    " (assert (<= X_1 1)) (assert (>= Y_0 100))")
    return path


def test_api_refuses(tmp_path):
    prop = read_vnnlib(_property(tmp_path / "p.vnnlib"))
    with pytest.raises(UnsupportedNetworkError, match="max windows"):
        verify(residual_pool_network(), prop)


def test_cli_refuses_in_one_line(tmp_path, capsys):
    save_npz(residual_pool_network(), tmp_path / "net.npz")
    status = main(["verify", str(tmp_path / "net.npz"), str(_property(tmp_path / "p.vnnlib"))])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "max windows" in err[0], err
