"""Verification used to refuse networks with max windows and linear units; it now answers
on them (API and CLI) with a checked certificate. Oracle: interval bounds of the output
by plain loops over the layers (a bound below 100 proves ``Y_0 >= 100`` unreachable)."""

import numpy as np

from polyrelu.cli import main
from polyrelu.network.loaders import save_npz
from polyrelu.verification import verify
from polyrelu.verification.vnnlib import read_vnnlib
from tests.networks import residual_pool_network


def _property(path):
    path.write_text("(declare-const X_0 Real) (declare-const X_1 Real) (declare-const Y_0 Real)"
                    " (assert (>= X_0 -1)) (assert (<= X_0 1)) (assert (>= X_1 -1))"
                    " (assert (<= X_1 1)) (assert (>= Y_0 100))")
    return path


def _interval_top(network, lower, upper):
    """An upper bound of output 0 over the box by interval arithmetic, layer by layer."""
    lo, hi = np.asarray(lower, float), np.asarray(upper, float)
    for layer in network.layers:
        w = layer.weight
        lo, hi = (np.maximum(w, 0) @ lo + np.minimum(w, 0) @ hi + layer.bias,
                  np.maximum(w, 0) @ hi + np.minimum(w, 0) @ lo + layer.bias)
        relu = layer.units == 1
        lo, hi = np.where(relu, np.maximum(lo, 0), lo), np.where(relu, np.maximum(hi, 0), hi)
        window_lo = [max(lo[i] for i in row if i >= 0) for row in layer.windows]
        window_hi = [max(hi[i] for i in row if i >= 0) for row in layer.windows]
        lo = np.concatenate([lo[layer.keep], window_lo])
        hi = np.concatenate([hi[layer.keep], window_hi])
    return hi[0]


def test_api_verifies_with_a_checked_certificate(tmp_path):
    network = residual_pool_network()
    assert network.window_pairs.size and not network.is_relu_mlp
    assert _interval_top(network, [-1, -1], [1, 1]) < 100  # oracle: the property holds
    result = verify(network, read_vnnlib(_property(tmp_path / "p.vnnlib")))
    assert result.status == "holds" and result.stats["certificate"] == "checked"


def test_cli_verifies(tmp_path, capsys):
    save_npz(residual_pool_network(), tmp_path / "net.npz")
    status = main(["verify", str(tmp_path / "net.npz"), str(_property(tmp_path / "p.vnnlib"))])
    out = capsys.readouterr().out
    assert status == 0 and "result: holds" in out and "certificate: checked" in out, out
