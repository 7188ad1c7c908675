"""Bound pieces closed with optimised relaxation slopes: the checker recomputes each bound
with the piece's slopes and accepts genuine certificates (also through the file);
mutated ones (a slope out of [0, 1] or NaN, slopes dropped or changed, a multiplier
changed, a leaf removed) are rejected. Independent oracle for "holds": sampled forward
passes never reach the unsafe set."""

import dataclasses

import numpy as np
import pytest

from polyrelu.errors import InvalidFileError
from polyrelu.network.loaders import load_network
from polyrelu.verification.certificate import BoundPiece, CertificateError, box_from_path
from polyrelu.verification.certificate_io import load_certificate, save_certificate
from polyrelu.verification.checker import check_certificate
from polyrelu.verification.search import verify
from polyrelu.verification.vnnlib import read_vnnlib


@pytest.fixture(scope="module")
def sloped(acasxu_dir):
    """ACAS Xu 2_1 with prop_3 (holds; most bound pieces need their slopes)."""
    net = load_network(acasxu_dir / "ACASXU_run2a_2_1_batch_2000.onnx")
    prop = read_vnnlib(acasxu_dir / "prop_3.vnnlib")
    result = verify(net, prop, timeout=60)
    assert result.status == "holds"
    return net, prop, result.certificate


def needing_slopes(net, prop, certificate):
    """The index of a bound piece the checker rejects without its slopes."""
    for i, piece in enumerate(certificate.pieces):
        if isinstance(piece, BoundPiece) and piece.slopes:
            try:
                check_certificate(net, prop, replaced(certificate, i, slopes=()))
            except CertificateError:
                return i
    raise AssertionError("no bound piece needs its slopes")


def replaced(certificate, index, **changes):
    pieces = list(certificate.pieces)
    pieces[index] = dataclasses.replace(pieces[index], **changes)
    return dataclasses.replace(certificate, pieces=pieces)


def test_sloped_certificate_is_accepted_and_survives_the_file(sloped, tmp_path):
    net, prop, certificate = sloped
    assert any(isinstance(p, BoundPiece) and p.slopes for p in certificate.pieces)
    check_certificate(net, prop, certificate)
    save_certificate(certificate, tmp_path / "cert.npz")
    check_certificate(net, prop, load_certificate(tmp_path / "cert.npz"))
    case = prop.cases[0]  # the oracle: no sampled input reaches the unsafe set
    x = np.random.default_rng(0).uniform(case.lower, case.upper, size=(20000, 5))
    assert not any(unsafe.contains(y) for y in net.forward(x) for unsafe in case.unsafe)


def test_mutated_slopes_are_rejected(sloped):
    net, prop, certificate = sloped
    index = needing_slopes(net, prop, certificate)
    piece = certificate.pieces[index]
    k = next(k for k, alpha in enumerate(piece.slopes) if alpha is not None)

    def with_slope(alpha):
        slopes = list(piece.slopes)
        slopes[k] = alpha
        return replaced(certificate, index, slopes=tuple(slopes))

    alpha = piece.slopes[k]
    for bad in (1.5, -0.25, np.nan):
        wrong = alpha.copy()
        wrong[np.argmax(alpha)] = bad
        with pytest.raises(CertificateError, match=r"in \[0, 1\]"):
            check_certificate(net, prop, with_slope(wrong))
    for wrong in (alpha[:-1], alpha.astype(np.float32)):
        with pytest.raises(CertificateError, match="slopes"):
            check_certificate(net, prop, with_slope(wrong))
    with pytest.raises(CertificateError, match="slope vectors"):
        check_certificate(net, prop, replaced(certificate, index, slopes=piece.slopes * 2))
    with pytest.raises(CertificateError, match="do not refute"):
        check_certificate(net, prop, with_slope(1.0 - alpha))  # changed: no longer a proof


def test_changed_multipliers_and_removed_leaves_are_rejected(sloped):
    net, prop, certificate = sloped
    index = needing_slopes(net, prop, certificate)
    piece, case = certificate.pieces[index], prop.cases[0]
    k = next(k for k, alpha in enumerate(piece.slopes) if alpha is not None)
    unsafe = case.unsafe[k]
    lower, upper = box_from_path(case, piece.path)
    y = net.forward(np.random.default_rng(1).uniform(lower, upper, size=(5000, 5)))
    # the oracle: a row that some sampled output satisfies cannot refute the sub-box
    row = int(np.argmax((y @ unsafe.C.T - unsafe.d).min(axis=0) <= 0))
    assert (y @ unsafe.C[row] - unsafe.d[row]).min() <= 0
    multipliers = list(piece.multipliers)
    multipliers[k] = np.eye(len(unsafe.d))[row]
    with pytest.raises(CertificateError, match="do not refute"):
        check_certificate(net, prop, replaced(certificate, index,
                                              multipliers=tuple(multipliers)))
    pieces = [p for i, p in enumerate(certificate.pieces) if i != index]
    with pytest.raises(CertificateError, match="not covered"):
        check_certificate(net, prop, dataclasses.replace(certificate, pieces=pieces))


def test_corrupt_slope_arrays_are_refused(sloped, tmp_path):
    _, _, certificate = sloped
    save_certificate(certificate, tmp_path / "cert.npz")
    data = dict(np.load(tmp_path / "cert.npz"))
    edits = {"offsets": dict(data, slope_offsets=data["slope_offsets"][::-1].copy()),
             "half": {k: v for k, v in data.items() if k != "slopes"},
             "dtype": dict(data, slopes=data["slopes"].astype(np.int64))}
    for name, edited in edits.items():
        np.savez(tmp_path / f"{name}.npz", **edited)
        with pytest.raises(InvalidFileError):
            load_certificate(tmp_path / f"{name}.npz")
