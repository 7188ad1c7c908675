"""The Lipschitz search's certificate: honest ones accepted (their bracket holding the value
of full enumeration), tampered ones rejected (a branch removed, a bound lowered below the
largest region inside it, the claim moved off the enumerated maximum, a flipped prefix,
another network, norm or box), damaged files refused with one clear error."""

import dataclasses
import zipfile

import numpy as np
import pytest
from networks import residual_pool_network

from oracles import random_network
from polyrelu import (
    Domain,
    Network,
    PolyreluError,
    TimeLimitError,
    check_lipschitz_certificate,
    enumerate_regions,
    lipschitz_search,
    load_lipschitz_certificate,
    save_lipschitz_certificate,
)
from polyrelu.analysis.lipschitz import operator_norms
from polyrelu.analysis.lipschitz_certificate import BOUND, REGION
from polyrelu.deadline import Deadline
from polyrelu.errors import CertificateError, InvalidFileError
from polyrelu.network.lowering import GraphBuilder
from polyrelu.network.windowless import without_windows

NORMS = [1, 2, np.inf]


def random_case(seed, d=None):
    rng = np.random.default_rng(2000 + seed)
    d = d or int(rng.integers(1, 5))
    hidden = rng.integers(3, 8, size=int(rng.integers(1, 4)))
    network = Network(*random_network((d, *hidden, int(rng.integers(1, 3))), rng))
    return network, Domain.box(-np.ones(d), np.ones(d))


def enumerated_maximum(network, domain, norm):
    """The largest ``||W_eff||`` over the walk's regions (the independent value)."""
    W = np.array([region.W_eff for region in enumerate_regions(network, domain)])
    return float(operator_norms(W, norm).max())


def rejected(network, certificate, **kwargs):
    with pytest.raises(CertificateError):
        check_lipschitz_certificate(network, certificate, **kwargs)
    return True


def without_leaf(certificate, i):
    keep = np.arange(len(certificate.kinds)) != i
    return dataclasses.replace(
        certificate, kinds=certificate.kinds[keep], layers=certificate.layers[keep],
        units=certificate.units[keep], patterns=certificate.patterns[keep],
        boxes=certificate.boxes[keep], values=certificate.values[keep])


@pytest.mark.parametrize("seed", range(6))
def test_honest_certificates_are_accepted_and_hold_the_enumerated_value(seed):
    network, domain = random_case(seed)
    for norm in NORMS:
        result = lipschitz_search(network, domain, norm)
        summary = check_lipschitz_certificate(network, result.certificate, domain=domain,
                                              norm=norm)
        low, high = summary["lipschitz_bracket"]
        expected = enumerated_maximum(network, domain, norm)
        assert low <= expected * (1 + 1e-12) and expected <= high * (1 + 1e-12)
        assert summary["bound_leaves"] + summary["region_leaves"] == len(result.tree)


def leaky_abs_clip_network(seed):
    """Dense, LeakyReLU, Abs and Clip units and a residual addition (no max windows)."""
    rng = np.random.default_rng(seed)
    builder = GraphBuilder((3,))
    x = builder.input
    t = builder.linear(x, rng.normal(size=(6, 3)), rng.normal(size=6) * 0.3)
    mixed = builder.stack([builder.leaky_relu(t, 0.2), builder.clip(t, -0.3, 0.4),
                           builder.abs(builder.take(t, [0, 2]))])
    s = builder.linear(mixed, rng.normal(size=(3, 14)), rng.normal(size=3) * 0.3)
    return builder.network(builder.linear(builder.add(x, builder.relu(s)),
                                          rng.normal(size=(2, 3))))


@pytest.mark.parametrize("norm", NORMS)
def test_general_networks_deep_nets_and_other_objectives(norm):
    for network in (leaky_abs_clip_network(0), leaky_abs_clip_network(1),
                    residual_pool_network(0), residual_pool_network(1)):
        d = network.input_dim
        domain = Domain.box(np.zeros(d) if d == 1 else -np.ones(d), np.ones(d))
        result = lipschitz_search(network, domain, norm)
        check_lipschitz_certificate(network, result.certificate)
    network, domain = random_case(1, d=3)
    for kwargs in ({"output": 0}, {"direction": [1.0, -2.0, 0.5]}, {"layer": 0}):
        result = lipschitz_search(network, domain, norm, **kwargs)
        check_lipschitz_certificate(network, result.certificate)


def test_pieces_closed_part_way_through_a_layer_are_checked():
    """A small chunk makes the search close pieces between the cuts of one layer."""
    network, domain = random_case(3, d=3)
    result = lipschitz_search(network, domain, 2, chunk=2, group=1)
    assert np.any(result.certificate.units > 0)
    check_lipschitz_certificate(network, result.certificate)


def test_a_removed_branch_is_rejected():
    network, domain = random_case(2, d=2)
    certificate = lipschitz_search(network, domain, 2).certificate
    for kind in (BOUND, REGION):
        for i in np.flatnonzero(certificate.kinds == kind)[:3]:
            assert rejected(network, without_leaf(certificate, i))


def regions_inside(network, regions, layer, units, packed):
    """``W_eff`` of the ``regions`` whose patterns extend a leaf's partial pattern (a ReLU
    network: its patterns are the certificate's)."""
    fixed = int(np.cumsum((0,) + network.slot_sizes)[layer]) + units
    bits = np.unpackbits(packed, count=network.num_hidden)[:fixed].astype(bool)
    return np.array([region.W_eff for region in regions
                     if np.array_equal(region.pattern[:fixed], bits)])


@pytest.mark.parametrize("norm", NORMS)
def test_a_bound_lowered_below_a_region_inside_it_is_rejected(norm):
    network, domain = random_case(4, d=2)
    certificate = lipschitz_search(network, domain, norm).certificate
    regions = list(enumerate_regions(network, domain))
    lowered = 0
    for i in np.flatnonzero(certificate.kinds == BOUND):
        W = regions_inside(network, regions, certificate.layers[i], certificate.units[i],
                           certificate.patterns[i])
        if not len(W):
            continue
        inside = float(operator_norms(W, norm).max())
        values = certificate.values.copy()
        values[i] = inside * (1 - 1e-9)
        assert rejected(network, dataclasses.replace(certificate, values=values))
        lowered += 1
    assert lowered


@pytest.mark.parametrize("norm", NORMS)
def test_a_claim_off_the_enumerated_maximum_is_rejected(norm):
    network, domain = random_case(5, d=2)
    certificate = lipschitz_search(network, domain, norm).certificate
    expected = enumerated_maximum(network, domain, norm)
    below = expected * (1 - 1e-9)
    assert rejected(network, dataclasses.replace(certificate, lower_value=below,
                                                 upper_value=below))
    above = expected * (1 + 1e-9)
    assert rejected(network, dataclasses.replace(certificate, lower_value=above,
                                                 upper_value=above))


def test_a_flipped_prefix_is_rejected():
    network, domain = random_case(2, d=2)
    certificate = lipschitz_search(network, domain, 2).certificate
    offsets = np.cumsum((0,) + without_windows(network).slot_sizes)
    flipped = 0
    for i in range(len(certificate.kinds)):
        fixed = offsets[certificate.layers[i]] + certificate.units[i]
        if fixed == 0:
            continue
        bits = np.unpackbits(certificate.patterns[i])
        bits[fixed - 1] ^= 1
        patterns = certificate.patterns.copy()
        patterns[i] = np.packbits(bits)
        assert rejected(network, dataclasses.replace(certificate, patterns=patterns))
        flipped += 1
        if flipped == 5:
            break
    assert flipped


def test_another_network_norm_or_box_is_rejected():
    network, domain = random_case(0, d=2)
    certificate = lipschitz_search(network, domain, 2).certificate
    other = Network([W * (1 + 1e-12) for W in network.weights], network.biases)
    assert rejected(other, certificate)
    assert rejected(network, certificate, norm=1)
    assert rejected(network, certificate, domain=Domain.box([-1, -1], [1, 2]))
    wider = dataclasses.replace(certificate, upper=certificate.upper + 0.5)
    assert rejected(network, wider)  # the tree no longer covers its box
    for norm in (1.0, np.inf):  # the l2 tree as an l1 or l_inf claim
        try:
            check_lipschitz_certificate(network, dataclasses.replace(certificate, norm=norm))
        except CertificateError:
            continue
        assert enumerated_maximum(network, domain, norm) <= certificate.upper_value


def test_a_timeout_bracket_is_certified():
    network, domain = random_case(6, d=4)
    with pytest.raises(TimeLimitError) as caught:
        lipschitz_search(network, domain, 2, deadline=Deadline(1e-9))
    certificate = caught.value.partial["certificate"]
    low, high = check_lipschitz_certificate(network, certificate)["lipschitz_bracket"]
    expected = enumerated_maximum(network, domain, 2)
    assert low <= expected <= high


def test_saved_certificates_round_trip(tmp_path):
    network, domain = random_case(1, d=2)
    certificate = lipschitz_search(network, domain, np.inf, direction=[1.0, 0.5]).certificate
    path = tmp_path / "lipschitz.npz"
    save_lipschitz_certificate(certificate, path)
    loaded = load_lipschitz_certificate(path)
    assert check_lipschitz_certificate(network, loaded) == \
        check_lipschitz_certificate(network, certificate)


CLAIM = ("fingerprint", "lower", "upper", "norm", "functional", "direction", "layer",
         "lower_value", "upper_value")


def same_claim(a, b):
    return all(np.array_equal(np.asarray(getattr(a, k), dtype=object),
                              np.asarray(getattr(b, k), dtype=object)) for k in CLAIM)


def test_mutated_files_never_crash_and_never_pass_a_changed_claim(tmp_path):
    network, domain = random_case(0, d=2)
    certificate = lipschitz_search(network, domain, 2).certificate
    path = tmp_path / "good.npz"
    np.savez(path, **_arrays(tmp_path, certificate))  # uncompressed: bytes map to values
    data = path.read_bytes()
    rng = np.random.default_rng(7)
    outcomes = {"refused": 0, "accepted": 0}
    for trial in range(300):
        damaged = bytearray(data)
        for at in rng.integers(0, len(data), size=int(rng.integers(1, 4))):
            damaged[at] = int(rng.integers(0, 256))
        bad = tmp_path / f"bad{trial}.npz"
        bad.write_bytes(bytes(damaged))
        try:
            loaded = load_lipschitz_certificate(bad)
            check_lipschitz_certificate(network, loaded)
        except PolyreluError:
            outcomes["refused"] += 1
            continue
        assert same_claim(loaded, certificate)
        outcomes["accepted"] += 1
    assert outcomes["refused"] > 100


def _arrays(tmp_path, certificate):
    """The arrays of a saved certificate (as the writer makes them)."""
    path = tmp_path / "saved.npz"
    save_lipschitz_certificate(certificate, path)
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def test_absurd_sizes_in_a_header_are_refused_before_allocating(tmp_path):
    network, domain = random_case(0, d=2)
    arrays = _arrays(tmp_path, lipschitz_search(network, domain, 2).certificate)
    path = tmp_path / "huge.npz"
    np.savez(path, **arrays)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (10000000000000,), }"
    header += b" " * (118 - len(header)) + b"\n"
    members["values.npy"] = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    with pytest.raises(InvalidFileError):
        load_lipschitz_certificate(path)
    wrong = tmp_path / "other.npz"
    np.savez(wrong, **{**arrays, "format": np.array("polyrelu-certificate")})
    with pytest.raises(InvalidFileError, match="not a polyrelu Lipschitz certificate"):
        load_lipschitz_certificate(wrong)
