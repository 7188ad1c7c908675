"""Certificates on general networks (ReLU and linear units) against forgeries, and the
format versions. Oracle for "must be rejected": a sampled forward pass that lands in the
unsafe set (the property is false), or a coverage the mutation has broken."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from polyrelu import PolyreluError
from polyrelu.cli import main
from polyrelu.errors import InvalidFileError
from polyrelu.network.loaders import load_network, save_npz
from polyrelu.network.lowering import GraphBuilder
from polyrelu.verification.certificate import (
    FORMAT_VERSION,
    RegionPiece,
    StarPiece,
    network_fingerprint,
)
from polyrelu.verification.certificate_io import load_certificate, save_certificate
from polyrelu.verification.checker import check_certificate
from polyrelu.verification.search import verify
from polyrelu.verification.vnnlib import read_vnnlib

DATA = Path(__file__).parent / "data"


def _threshold(d, t):
    lines = [f"(declare-const X_{i} Real)" for i in range(d)] + ["(declare-const Y_0 Real)"]
    lines += [f"(assert (>= X_{i} -1)) (assert (<= X_{i} 1))" for i in range(d)]
    return read_vnnlib("\n".join(lines + [f"(assert (>= Y_0 {float(t)!r}))"]))


def _two_layer(seed, unit, d=2, bias=0.0):
    """Dense 5, ``unit`` (``"relu"`` or a LeakyReLU slope), dense 4, ReLU, dense 1 (+ bias)."""
    rng = np.random.default_rng(seed)
    builder = GraphBuilder((d,))
    t = builder.linear(builder.input, rng.normal(size=(5, d)), rng.normal(size=5) * 0.3)
    h = builder.relu(t) if unit == "relu" else builder.leaky_relu(t, unit)
    h = builder.relu(builder.linear(h, rng.normal(size=(4, 5)), rng.normal(size=4) * 0.3))
    return builder.network(builder.linear(h, rng.normal(size=(1, 4)), [bias]))


def _sampled_max(network, seed=0):
    x = np.random.default_rng(seed).uniform(-1, 1, size=(20000, network.input_dim))
    return float(network.forward(x)[:, 0].max())


def _holding(network):
    """A property the network satisfies with a certificate of star and region pieces."""
    top = _sampled_max(network)
    for margin in (0.02, 0.1, 0.5):
        prop = _threshold(network.input_dim, top + margin * (1 + abs(top)))
        result = verify(network, prop, exact_threshold=1000)
        if result.status == "holds":
            return prop, result.certificate
    raise AssertionError("no holding threshold found")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_general_certificates_pass_and_survive_the_file(seed, tmp_path):
    network = _two_layer(seed, 0.2)
    prop, certificate = _holding(network)
    assert certificate.version == FORMAT_VERSION
    assert certificate.counts()["region_pieces"] + certificate.counts()["star_pieces"] > 0
    check_certificate(network, prop, certificate)
    save_certificate(certificate, tmp_path / "c.npz")
    check_certificate(network, prop, load_certificate(tmp_path / "c.npz"))


def _flip(piece, network):
    bits = np.unpackbits(piece.pattern, count=network.num_hidden)
    used = network.num_hidden if isinstance(piece, RegionPiece) else \
        int(sum(network.slot_sizes[:piece.layer]))
    bits[used - 1] ^= 1
    return dataclasses.replace(piece, pattern=np.packbits(bits))


@pytest.mark.parametrize("seed", [1, 2, 6])  # seeds whose certificates have region pieces
@pytest.mark.parametrize("edit", ["flip", "drop", "multiplier"])
def test_edited_general_certificates_are_rejected(seed, edit):
    """A pattern bit flipped or a piece dropped breaks the coverage; a multiplier vector
    replaced by another breaks a closure; each must be rejected."""
    network = _two_layer(seed, 0.2)
    prop, certificate = _holding(network)
    pieces = list(certificate.pieces)
    kinds = (RegionPiece,) if edit == "multiplier" else (StarPiece, RegionPiece)
    exact = [i for i, p in enumerate(pieces) if isinstance(p, kinds)
             and (isinstance(p, RegionPiece) or p.layer > 0)]
    assert exact
    i = exact[seed % len(exact)]
    if edit == "flip":
        pieces[i] = _flip(pieces[i], network)
    elif edit == "drop":
        del pieces[i]
    else:  # all weight on the face x_0 <= 1 of the box: proves nothing
        lam = np.zeros_like(pieces[i].multipliers[0])
        lam[0] = 1.0
        pieces[i] = dataclasses.replace(pieces[i], multipliers=(lam,))
    with pytest.raises(PolyreluError):
        check_certificate(network, prop, dataclasses.replace(certificate, pieces=pieces))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_certificate_of_another_network_with_the_same_shapes_is_rejected(seed):
    """The certificate of a network that satisfies the property, claimed (fingerprint
    forged) for one with the same layers and a larger output bias that violates it."""
    network = _two_layer(seed, 0.2)
    prop, certificate = _holding(network)
    t = prop.cases[0].unsafe[0].d[0] * -1
    other = _two_layer(seed, 0.2, bias=t - _sampled_max(network) + 0.5)
    assert _sampled_max(other) >= t  # oracle: the property is false for ``other``
    with pytest.raises(PolyreluError, match="fingerprint"):
        check_certificate(other, prop, certificate)
    forged = dataclasses.replace(certificate, fingerprint=network_fingerprint(other))
    with pytest.raises(PolyreluError):
        check_certificate(other, prop, forged)


@pytest.mark.parametrize("seed", [0, 2, 5, 6, 8, 9])
def test_a_relu_mlp_certificate_does_not_prove_a_leaky_network(seed):
    """A ReLU MLP and the same weights with LeakyReLU (as many pattern slots): the
    ReLU MLP's certificate of a threshold the leaky network exceeds, fingerprint forged,
    in this format version and in version 2."""
    relu, leaky = _two_layer(seed, "relu"), _two_layer(seed, 0.3)
    assert relu.is_relu_mlp and not leaky.is_relu_mlp
    assert relu.num_hidden == leaky.num_hidden
    top_relu, top_leaky = _sampled_max(relu), _sampled_max(leaky)
    assert top_leaky > top_relu + 0.05  # on these seeds
    prop = _threshold(2, (top_relu + top_leaky) / 2)
    result = verify(relu, prop, exact_threshold=1000)
    assert result.status == "holds"
    assert top_leaky >= -prop.cases[0].unsafe[0].d[0]  # oracle: false for the leaky net
    forged = dataclasses.replace(result.certificate, fingerprint=network_fingerprint(leaky))
    with pytest.raises(PolyreluError):
        check_certificate(leaky, prop, forged)
    with pytest.raises(PolyreluError, match="version 2 certificate is for a Linear"):
        check_certificate(leaky, prop, dataclasses.replace(forged, version=2))


def test_version_2_file_written_by_the_previous_code_is_read_and_checked(capsys):
    """tests/verification/data: a ReLU MLP, a property and its certificate as written by
    the code before linear units (format version 2, unchanged meaning)."""
    net_path = DATA / "relu_mlp_2-5-5-1.npz"
    prop_path = DATA / "relu_mlp_y0_bound.vnnlib"
    cert_path = DATA / "relu_mlp_certificate_v2.npz"
    certificate = load_certificate(cert_path)
    assert certificate.version == 2 and certificate.counts()["region_pieces"] > 0
    summary = check_certificate(load_network(net_path), read_vnnlib(prop_path), certificate)
    assert summary["region_pieces"] == certificate.counts()["region_pieces"]
    assert main(["check-certificate", str(net_path), str(prop_path), str(cert_path)]) == 0
    assert "valid" in capsys.readouterr().out


def test_unknown_versions_are_refused_in_one_line(tmp_path, capsys):
    data = dict(np.load(DATA / "relu_mlp_certificate_v2.npz"))
    data["version"] = np.array(FORMAT_VERSION + 1)
    np.savez(tmp_path / "future.npz", **data)
    with pytest.raises(InvalidFileError, match=f"version {FORMAT_VERSION + 1} is not supported"):
        load_certificate(tmp_path / "future.npz")
    save_npz(load_network(DATA / "relu_mlp_2-5-5-1.npz"), tmp_path / "net.npz")
    status = main(["check-certificate", str(tmp_path / "net.npz"),
                   str(DATA / "relu_mlp_y0_bound.vnnlib"), str(tmp_path / "future.npz")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "not supported" in err[0], err
