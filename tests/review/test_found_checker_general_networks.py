"""The certificate checker on a *general* network (one that is not Linear + ReLU): a
forged "holds" certificate must not certify a false property.

Found when ``polyrelu.verify`` refused general networks but ``check_certificate``
re-checked region pieces with ``network.weights`` / ``network.biases`` as if a plain ReLU
followed every layer, ignoring the layer's kept entries and linear units. Verification now
handles ReLU and linear units with any kept entries (the rigorous maps follow
``Network.layer_sources``), so the forgery is rejected and the search finds the
counterexample.

Minimal reproduction: ``R(x) = relu(x) - relu(x - 0.5)`` (a ReLU MLP, ``R >= 0`` on
[-1, 1]) and ``G`` = the same weights with the layer's outputs swapped (``keep=[1, 0]``):
``G(x) = relu(x - 0.5) - relu(x)``, ``G(1) = -0.5``. Property: unsafe if ``Y_0 <= -0.1``
on ``X_0 in [-1, 1]``. ``search.verify(R, prop)`` returns "holds" with 3 region pieces;
replacing the certificate's fingerprint by ``network_fingerprint(G)`` must not make
``check_certificate(G, prop, certificate)`` accept it.
"""

import dataclasses

import pytest

from polyrelu import Network, PolyreluError
from polyrelu.cli import main
from polyrelu.network.layers import Layer
from polyrelu.network.loaders import save_npz
from polyrelu.network.model import network_fingerprint
from polyrelu.verification.certificate_io import save_certificate
from polyrelu.verification.checker import check_certificate
from polyrelu.verification.search import verify
from polyrelu.verification.vnnlib import read_vnnlib

PROPERTY = ("(declare-const X_0 Real) (declare-const Y_0 Real) (assert (>= X_0 -1)) "
            "(assert (<= X_0 1)) (assert (<= Y_0 -0.1))")


def _networks():
    relu_mlp = Network([[[1.0], [1.0]], [[1.0, -1.0]]], [[0.0, -0.5], [0.0]])
    swapped = Network.from_layers([Layer.build([[1.0], [1.0]], [0.0, -0.5], keep=[1, 0]),
                                   Layer.affine([[1.0, -1.0]], [0.0])])
    return relu_mlp, swapped


def _forged_certificate(prop):
    relu_mlp, swapped = _networks()
    result = verify(relu_mlp, prop)
    assert result.status == "holds" and result.certificate.counts()["region_pieces"] > 0
    return dataclasses.replace(result.certificate, fingerprint=network_fingerprint(swapped))


def test_the_property_is_false_on_the_general_network():
    _, swapped = _networks()
    assert swapped.forward([[1.0]])[0, 0] == pytest.approx(-0.5)  # unsafe: <= -0.1


def test_verify_finds_the_counterexample_on_the_general_network():
    _, swapped = _networks()
    result = verify(swapped, read_vnnlib(PROPERTY))
    assert result.status == "violated" and result.counterexample.exact
    assert swapped.forward(result.counterexample.x[None])[0, 0] <= -0.1  # oracle: forward


def test_check_certificate_does_not_accept_a_certificate_of_a_false_property():
    prop = read_vnnlib(PROPERTY)
    _, swapped = _networks()
    forged = _forged_certificate(prop)
    with pytest.raises(PolyreluError):
        check_certificate(swapped, prop, forged)


def test_cli_check_certificate_does_not_print_valid(tmp_path, capsys):
    prop_path = tmp_path / "p.vnnlib"
    prop_path.write_text(PROPERTY)
    _, swapped = _networks()
    save_npz(swapped, tmp_path / "net.npz")
    save_certificate(_forged_certificate(read_vnnlib(PROPERTY)), tmp_path / "cert.npz")
    status = main(["check-certificate", str(tmp_path / "net.npz"), str(prop_path),
                   str(tmp_path / "cert.npz")])
    out = capsys.readouterr().out
    assert status != 0 and "valid" not in out, (status, out)
