"""The certificate checker against forged certificates: for a VIOLATED property no
certificate may pass, whatever the file says (independent oracle: a forward pass that
lands in the unsafe set). Genuine certificates of holding properties must pass."""

import dataclasses
import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from oracles import random_network
from polyrelu import Network, PolyreluError
from polyrelu.errors import InvalidFileError
from polyrelu.network.loaders import load_network
from polyrelu.verification.certificate import (
    FORMAT_VERSION,
    BoundPiece,
    BoxHint,
    Certificate,
    RegionPiece,
    StarPiece,
    network_fingerprint,
)
from polyrelu.verification.certificate_io import load_certificate, save_certificate
from polyrelu.verification.checker import check_certificate
from polyrelu.verification.search import verify
from polyrelu.verification.vnnlib import read_vnnlib


def threshold_property(d, t, lower=-1.0, upper=1.0):
    """``x in [lower, upper]^d``, unsafe: ``Y_0 >= t``."""
    lines = [f"(declare-const X_{i} Real)" for i in range(d)] + ["(declare-const Y_0 Real)"]
    lines += [f"(assert (>= X_{i} {lower!r}))\n(assert (<= X_{i} {upper!r}))" for i in range(d)]
    lines.append(f"(assert (>= Y_0 {float(t)!r}))")
    return read_vnnlib("\n".join(lines))


def violated_case(seed, sizes=(2, 5, 5, 1)):
    """A random net, a property it violates (a sampled point reaches the unsafe set: the
    oracle) and one it satisfies with a genuine certificate of mixed pieces."""
    rng = np.random.default_rng(seed)
    net = Network(*random_network(list(sizes), rng))
    x = rng.uniform(-1, 1, size=(4000, sizes[0]))
    y = net.forward(x)[:, 0]
    violated = threshold_property(sizes[0], float(np.quantile(y, 0.7)))
    assert (y >= violated.cases[0].unsafe[0].d[0] * -1).any()  # oracle: a real counterexample
    threshold = int(rng.choice([2, 4, 1000]))  # 1000: exact from the start (stars, regions)
    for margin in (0.05, 0.3, 1.0, 3.0):  # above the sampled maximum, until it holds
        holds = threshold_property(sizes[0], float(y.max() + margin * (y.max() - y.min())))
        result = verify(net, holds, exact_threshold=threshold)
        if result.status == "holds":
            break
    if result.status != "holds":  # the raw search may say "unknown" (seed 4594): no case
        assume(False)
    check_certificate(net, holds, result.certificate)
    return net, violated, holds, result.certificate


def all_inactive_star(net, prop):
    """The forgery of issue 15: one star piece at layer 1 whose pattern says every neuron
    of layer 0 is inactive (the output is then a constant) with multipliers that refute
    the unsafe set at that constant. Returns None if the constant is unsafe itself."""
    n0 = net.hidden_sizes[0]
    pattern = np.zeros(net.num_hidden, dtype=bool)
    out = Network(net.weights[1:], net.biases[1:]).forward(np.zeros((1, n0)))[0]
    multipliers = []
    for unsafe in prop.cases[0].unsafe:
        margins = unsafe.C @ out - unsafe.d
        if margins.max() <= 0:
            return None
        lam = np.zeros(len(unsafe.d))
        lam[int(np.argmax(margins))] = 1.0
        multipliers.append(lam)
    piece = StarPiece(0, (), 1, np.packbits(pattern), tuple(multipliers))
    return Certificate(network_fingerprint(net), [piece])


def first_forgery(sizes, seed=11, tries=20):
    """``(net, prop, forged)``: the first of ``tries`` random nets of ``sizes`` on which
    :func:`all_inactive_star` forges a certificate for a property that sampled outputs
    violate (the top fifth of them is unsafe)."""
    rng = np.random.default_rng(seed)
    for _ in range(tries):
        net = Network(*random_network(sizes, rng))
        y = net.forward(rng.uniform(-1, 1, size=(4000, 2)))[:, 0]
        prop = threshold_property(2, float(np.quantile(y, 0.8)))
        forged = all_inactive_star(net, prop)
        if forged is not None:
            return net, prop, forged
    pytest.fail("no network gave a forgery to test")


def test_forged_all_inactive_star_piece_is_rejected():
    net, prop, forged = first_forgery([2, 6, 6, 1])
    assert verify(net, prop).status == "violated"  # and brute force: sampled y >= t
    with pytest.raises(PolyreluError, match="not provably so"):
        check_certificate(net, prop, forged)


def test_forged_star_piece_on_acas_prop_2_is_rejected(acasxu_dir):
    net = load_network(acasxu_dir / "ACASXU_run2a_2_1_batch_2000.onnx")
    prop = read_vnnlib(acasxu_dir / "prop_2.vnnlib")
    forged = all_inactive_star(net, prop)
    assert forged is not None
    with pytest.raises(PolyreluError, match="not provably so"):
        check_certificate(net, prop, forged)


def _pieces_variants(data, net, certificate, others):
    """Hostile edits of a genuine certificate's pieces (drawn by hypothesis)."""
    pieces = list(certificate.pieces)
    i = data.draw(st.integers(0, len(pieces) - 1))
    piece = pieces[i]
    choice = data.draw(st.sampled_from(["drop", "duplicate", "swap", "truncate", "move",
                                        "foreign", "scale", "permute", "hint", "keep"]))
    if choice == "drop" and len(pieces) > 1:
        del pieces[i]
    elif choice == "duplicate":
        pieces.append(piece)
    elif choice == "swap":
        j = data.draw(st.integers(0, len(pieces) - 1))
        if hasattr(piece, "pattern") and hasattr(pieces[j], "pattern"):
            pieces[i] = dataclasses.replace(piece, pattern=pieces[j].pattern)
    elif choice == "truncate" and isinstance(piece, (StarPiece, RegionPiece)):
        bits = np.unpackbits(piece.pattern)
        cut = data.draw(st.integers(0, net.num_hidden))
        bits[cut:] = 0
        layers = np.cumsum(net.hidden_sizes)
        layer = int(np.searchsorted(layers, cut, side="right"))
        if layer < len(net.hidden_sizes):
            bits[([0] + list(layers))[layer]:] = 0
            pieces[i] = StarPiece(piece.case, piece.path, layer, np.packbits(bits),
                                  piece.multipliers[:1] if isinstance(piece, StarPiece)
                                  else (np.ones(1),))
    elif choice == "move":
        pieces[i] = dataclasses.replace(piece, path=tuple(piece.path[:-1]))
    elif choice == "foreign":
        pieces = list(others)
    elif choice == "scale":
        factor = data.draw(st.sampled_from([-1.0, 0.0, 0.5, 2.0, 1e300]))
        pieces[i] = dataclasses.replace(piece, multipliers=tuple(
            np.asarray(lam) * factor for lam in piece.multipliers))
    elif choice == "hint" and isinstance(piece, StarPiece) and len(piece.box_weights):
        factor = data.draw(st.sampled_from([0.0, 0.5, 3.0, 1e6]))
        pieces[i] = dataclasses.replace(piece, box_weights=piece.box_weights * factor)
    elif choice == "permute":
        pieces[i] = dataclasses.replace(piece, multipliers=tuple(
            np.roll(np.asarray(lam), 1) for lam in piece.multipliers))
    return dataclasses.replace(certificate, pieces=pieces)


# 25 examples (a verify run each, twice): about 30 s; CI runs the suite twice in 20 minutes
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 10_000), data=st.data())
def test_no_certificate_of_a_violated_property_passes(seed, data):
    """Property-based adversary: any certificate (genuine ones of a holding property on
    the same net, edited; pieces of another net or box; trees shrunk) is checked against
    a property the net violates, and must be refused with a PolyreluError."""
    net, violated, _, certificate = violated_case(seed)
    _, _, _, foreign = violated_case(seed + 1)
    forged = _pieces_variants(data, net, certificate, foreign.pieces)
    with pytest.raises(PolyreluError):
        check_certificate(net, violated, forged)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 10_000), edits=st.lists(
    st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.one_of(st.none(), st.floats(0, 1)))
def test_edited_certificate_files_are_rejected_cleanly(seed, edits, cut):
    """Bytes of a saved certificate edited or the file truncated: loading raises
    InvalidFileError, or the certificate read back is rejected for the violated
    property; no other exception escapes, and for the holding property the checker
    either accepts or raises a PolyreluError."""
    net, violated, holds, certificate = violated_case(seed)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "cert.npz")
        save_certificate(certificate, path)
        raw = bytearray(open(path, "rb").read())
        for where, value in edits:
            raw[int(where * (len(raw) - 1))] = value
        if cut is not None:
            raw = raw[:int(cut * len(raw))]
        open(path, "wb").write(bytes(raw))
        try:
            read = load_certificate(path)
        except InvalidFileError:
            return
    with pytest.raises(PolyreluError):
        check_certificate(net, violated, read)
    try:
        check_certificate(net, holds, read)
    except PolyreluError:
        pass


def test_genuine_certificates_survive_the_file():
    net, _, holds, certificate = violated_case(5, sizes=(2, 6, 6, 6, 1))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "cert.npz")
        save_certificate(certificate, path)
        check_certificate(net, holds, load_certificate(path))


def test_old_and_unknown_versions_are_refused(tmp_path):
    net, _, holds, certificate = violated_case(3)
    path = tmp_path / "cert.npz"
    save_certificate(certificate, path)
    data = dict(np.load(path))
    for version in (1, FORMAT_VERSION + 1):
        data["version"] = np.array(version)
        np.savez(tmp_path / "other.npz", **data)
        with pytest.raises(InvalidFileError, match=f"version {version} is not supported"):
            load_certificate(tmp_path / "other.npz")
    del data["version"]
    np.savez(tmp_path / "old.npz", **data)
    with pytest.raises(InvalidFileError, match="no 'version'"):
        load_certificate(tmp_path / "old.npz")
    with pytest.raises(PolyreluError, match="version"):
        check_certificate(net, holds, dataclasses.replace(certificate, version=1))


def test_fingerprint_covers_shapes_not_only_bytes():
    """3-1-... and 1-3-... nets whose weights and biases have the same bytes in the same
    order (the old fingerprint) differ in fingerprint."""
    first = Network([np.ones((3, 1)), np.ones((1, 3))], [np.zeros(3), np.zeros(1)])
    second = Network([np.ones((1, 3)), np.ones((3, 1))], [np.zeros(1), np.zeros(3)])
    assert network_fingerprint(first) != network_fingerprint(second)


def test_pieces_of_another_box_are_rejected():
    """A genuine certificate for the same net and threshold on a smaller box, claimed for
    the violated property's box (its paths then name other sub-boxes)."""
    rng = np.random.default_rng(4)
    net = Network(*random_network([2, 5, 5, 1], rng))
    y = net.forward(rng.uniform(-1, 1, size=(4000, 2)))[:, 0]
    small = net.forward(rng.uniform(0, 0.2, size=(4000, 2)))[:, 0]
    t = float(small.max() + 0.01)
    assert y.max() > t  # oracle: the big box reaches the unsafe set
    result = verify(net, threshold_property(2, t, 0.0, 0.2))
    assert result.status == "holds"
    with pytest.raises(PolyreluError):
        check_certificate(net, threshold_property(2, t), result.certificate)


def _malformed_pieces(net):
    pattern = np.packbits(np.zeros(net.num_hidden, dtype=bool))
    regions = 2 * 2 + net.num_hidden + 1
    return [
        [BoundPiece(0, [[0, 1]], (np.ones(1),))],             # half the box
        [BoundPiece(0, 5, (np.ones(1),))],                    # a path that is no list
        [BoundPiece("0", (), (np.ones(1),))],                 # a case that is no number
        [BoundPiece(0, (), ([1, [2]],))],                     # ragged multipliers
        [BoundPiece(0, (), (np.array([1e308]),))],            # bounds overflow
        [BoundPiece(0, (), None)],
        [RegionPiece(0, (), pattern, (np.full(regions, 1e308),))],
        [StarPiece(0, (), 1, pattern, (np.ones(1),), np.array([[0, 0]]), np.array([1e308]))],
        [StarPiece(0, (), 1, pattern.astype(np.int64), (np.ones(1),))],
        [StarPiece(0, (), 1, pattern, (np.ones(1),), np.array([[0, 99]]), np.array([1.0]))],
        ["not a piece"],
    ]


@pytest.mark.parametrize("index", range(11))
def test_malformed_pieces_are_refused_with_a_polyrelu_error(index):
    net, violated, holds, certificate = violated_case(250)
    forged = dataclasses.replace(certificate, pieces=_malformed_pieces(net)[index])
    for prop in (violated, holds):
        with pytest.raises(PolyreluError):
            check_certificate(net, prop, forged)


# ------------------------------------------------------------------ box hints

def _with_hints(seed):
    """A violated_case whose genuine certificate carries BoxHints (nodes of its splitting
    trees): a deeper net, decided exactly from the start."""
    rng = np.random.default_rng(seed)
    net = Network(*random_network([2, 6, 6, 6, 1], rng))
    x = rng.uniform(-1, 1, size=(4000, 2))
    y = net.forward(x)[:, 0]
    violated = threshold_property(2, float(np.quantile(y, 0.7)))
    for margin in (0.05, 0.3, 1.0):
        holds = threshold_property(2, float(y.max() + margin * (y.max() - y.min())))
        result = verify(net, holds, exact_threshold=1000)
        if result.status == "holds" and result.certificate.hints:
            break
    if not (result.status == "holds" and result.certificate.hints):
        assume(False)
    return net, violated, holds, result.certificate


def _forged_hints(data, net, certificate, d):
    hints = list(certificate.hints)
    i = data.draw(st.integers(0, len(hints) - 1))
    hint = hints[i]
    choice = data.draw(st.sampled_from(["scale", "random", "tiny", "move", "layer", "drop",
                                        "duplicate"]))
    count = 2 * d + int(sum(net.hidden_sizes[:hint.layer]))
    if choice == "scale":
        factor = data.draw(st.sampled_from([0.0, 0.5, 3.0, 1e6, 1e300]))
        hints[i] = dataclasses.replace(hint, box_weights=hint.box_weights * factor)
    elif choice in ("random", "tiny"):
        size = data.draw(st.integers(1, 12))
        rows = np.column_stack([data.draw(st.lists(st.integers(0, 2 * d - 1), min_size=size,
                                                   max_size=size)),
                                data.draw(st.lists(st.integers(0, count - 1), min_size=size,
                                                   max_size=size))]).astype(np.int64)
        weights = np.array(data.draw(st.lists(st.floats(0, 1e3), min_size=size,
                                              max_size=size)), dtype=np.float64)
        if choice == "tiny":  # claims a box shrunk to a point: only its evaluation counts
            weights = weights * 1e12
        hints[i] = dataclasses.replace(hint, box_rows=rows, box_weights=weights)
    elif choice == "move":  # another node's hint (its pattern) on this one
        j = data.draw(st.integers(0, len(hints) - 1))
        hints[i] = dataclasses.replace(hint, pattern=hints[j].pattern, layer=hints[j].layer)
    elif choice == "layer":
        hints[i] = dataclasses.replace(hint, layer=data.draw(st.integers(
            0, len(net.hidden_sizes) - 1)), pattern=np.zeros_like(hint.pattern))
    elif choice == "drop":
        del hints[i]
    else:
        hints = [hint] * 3 + hints
    return dataclasses.replace(certificate, hints=hints)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 10_000), data=st.data())
def test_forged_box_hints_never_prove_and_never_break_a_proof(seed, data):
    """BoxHints prove nothing: forged ones (scaled, random rows and weights, moved to
    other nodes or layers, duplicated) with the genuine pieces still give a valid
    certificate for the holding property (the checker falls back to its own proofs), and
    with the genuine hints and pieces edited or foreign the violated property is refused."""
    net, violated, holds, certificate = _with_hints(seed)
    forged = _forged_hints(data, net, certificate, 2)
    try:
        check_certificate(net, holds, forged)
    except PolyreluError as err:  # only a hint out of shape may be refused, as malformed
        assert "hint" in str(err) and "malformed" in str(err)
    with pytest.raises(PolyreluError):
        check_certificate(net, violated, forged)
    _, _, _, foreign = violated_case(seed + 1)
    edited = _pieces_variants(data, net, forged, foreign.pieces)
    with pytest.raises(PolyreluError):
        check_certificate(net, violated, edited)


def test_a_forged_hint_does_not_rescue_the_all_inactive_star():
    """The issue-15 forgery with BoxHints that claim a box around the origin for every
    node: still refused."""
    net, prop, forged = first_forgery([2, 5, 5, 1])
    pattern = forged.pieces[0].pattern
    hints = []
    for layer, count in ((0, 4), (1, 4 + 5)):
        rows = np.array([[k, r] for k in range(4) for r in range(count)], dtype=np.int64)
        hints.append(BoxHint(0, (), layer, pattern, rows, np.full(len(rows), 1e9)))
    with pytest.raises(PolyreluError, match="not provably so"):
        check_certificate(net, prop, dataclasses.replace(forged, hints=hints))


def _malformed_hints(net):
    pattern = np.packbits(np.zeros(net.num_hidden, dtype=bool))
    good_rows, good = np.array([[0, 0]], dtype=np.int64), np.array([1.0])
    return [
        BoxHint(0, (), 1, pattern, np.array([[0, 99]], dtype=np.int64), good),   # row range
        BoxHint(0, (), 1, pattern, np.array([[7, 0]], dtype=np.int64), good),    # direction
        BoxHint(0, (), 1, pattern, good_rows, np.array([-1.0])),                 # negative
        BoxHint(0, (), 1, pattern, good_rows, np.array([np.nan])),
        BoxHint(0, (), 1, pattern, good_rows.astype(float), good),              # dtype
        BoxHint(0, (), 1, pattern.astype(np.int64), good_rows, good),
        BoxHint(3, (), 1, pattern, good_rows, good),                            # case
        BoxHint(0, ((0, 5),), 1, pattern, good_rows, good),                     # path
        BoxHint(0, (), 9, pattern, good_rows, good),                            # layer
        BoxHint(0, (), 1, pattern, good_rows, np.array([1.0, 2.0])),           # lengths
    ]


@pytest.mark.parametrize("index", range(10))
def test_malformed_box_hints_are_refused_with_a_polyrelu_error(index):
    net, violated, holds, certificate = violated_case(250)
    forged = dataclasses.replace(certificate, hints=[_malformed_hints(net)[index]])
    for prop in (violated, holds):
        with pytest.raises(PolyreluError):
            check_certificate(net, prop, forged)


def test_box_hints_survive_the_file_and_are_optional(tmp_path):
    rng = np.random.default_rng(7)
    net = Network(*random_network([2, 6, 6, 6, 1], rng))
    y = net.forward(rng.uniform(-1, 1, size=(4000, 2)))[:, 0]
    holds = threshold_property(2, float(y.max() + 0.3 * (y.max() - y.min())))
    certificate = verify(net, holds, exact_threshold=1000).certificate
    assert certificate.hints
    path = tmp_path / "cert.npz"
    save_certificate(certificate, path)
    read = load_certificate(path)
    assert len(read.hints) == len(certificate.hints)
    for a, b in zip(read.hints, certificate.hints):
        assert (a.case, a.path, a.layer) == (b.case, b.path, b.layer)
        assert np.array_equal(a.pattern, b.pattern) and np.array_equal(a.box_rows, b.box_rows)
        assert np.array_equal(a.box_weights, b.box_weights)
    check_certificate(net, holds, read)
    data = dict(np.load(path))
    without = {k: v for k, v in data.items() if not k.startswith("box_hint_")}
    np.savez(tmp_path / "plain.npz", **without)
    plain = load_certificate(tmp_path / "plain.npz")
    assert plain.hints == []
    check_certificate(net, holds, plain)
    partial = dict(without, box_hint_case=data["box_hint_case"])
    np.savez(tmp_path / "partial.npz", **partial)
    with pytest.raises(InvalidFileError, match="box_hint"):
        load_certificate(tmp_path / "partial.npz")
    bad = dict(data, box_hint_offsets=data["box_hint_offsets"][::-1].copy())
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(InvalidFileError):
        load_certificate(tmp_path / "bad.npz")
