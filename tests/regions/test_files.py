"""Files polyrelu writes and reads back (region complexes, checkpoint chunks) are validated:
edited, foreign, truncated or incomplete files are refused with a named InvalidFileError.

The oracle: the file as written; every edit below changes what the file claims, so the
load must fail (with the content hash recomputed, too: then the re-derivation from the
network must catch it), and a mutated file that loads must equal the original.
"""

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from networks import degenerate_networks

from oracles import assert_same_complex, random_network
from polyrelu import (
    Domain,
    InvalidFileError,
    Network,
    PolyreluError,
    RegionComplex,
    TimeLimitError,
    enumerate_regions,
)
from polyrelu.analysis.lipschitz import lipschitz
from polyrelu.deadline import hard_limit
from polyrelu.regions.validation import content_hash

BOX = Domain.box([-2, -1.5], [3, 2])


@pytest.fixture(scope="module")
def moons():
    from polyrelu.network.loaders import load_network

    return load_network(Path(__file__).resolve().parents[2] / "examples" / "nets"
                        / "moons_2_16_16_2.npz")


@pytest.fixture(scope="module")
def saved(moons, tmp_path_factory):
    complex_ = enumerate_regions(moons, BOX)
    path = tmp_path_factory.mktemp("complex") / "moons.npz"
    complex_.save(path)
    return complex_, path


def arrays_of(path):
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k].copy() for k in data.files}


def rewrite(arrays, path, rehash=True):
    """Write ``arrays`` to ``path``; with ``rehash`` the metadata's content hash is
    recomputed, as a deliberate forger would."""
    arrays = dict(arrays)
    if rehash and "meta" in arrays:
        try:
            meta = json.loads(str(arrays["meta"]))
            meta["content_sha256"] = content_hash(arrays)
            arrays["meta"] = np.array(json.dumps(meta))
        except (ValueError, TypeError):
            pass  # the metadata itself was mutated
    np.savez(path, **arrays)
    return path


def test_round_trip_keeps_the_provenance(saved):
    complex_, path = saved
    meta = json.loads(str(arrays_of(path)["meta"]))
    assert meta["version"] == 3 and meta["polyrelu_version"]
    assert meta["options"]["zero_rel"] == 1e-10
    assert len(meta["network_sha256"]) == 64 and len(meta["content_sha256"]) == 64
    assert_same_complex(complex_, RegionComplex.load(path, network=complex_.network))


def _edit_map(a):
    a["W_eff"][7, 0, 1] += 0.25


def _duplicate(a):
    a["patterns"][3] = a["patterns"][4]


def _facet(a):
    a["facet_b"][10] += 0.01


def _radius(a):
    a["radii"][5] *= 50


def _edge(a):
    a["edges"][0, 1] = a["edges"][0, 0]


def _edge_kink(a):
    a["edge_kinks"][0] = (a["edge_kinks"][0] + 1) % 32


def _point(a):
    a["interior_points"][2] = a["interior_points"][9]


def _domain(a):
    a["domain_upper"][0] = 4.0


def _dtype(a):
    a["ids"] = a["ids"].astype(np.float64)


@pytest.mark.parametrize("edit, message", [
    (_edit_map, "affine map"), (_duplicate, "same activation pattern|pattern is not"),
    (_facet, "facet row"), (_radius, "Chebyshev ball"), (_edge, "distinct regions"),
    (_edge_kink, "share no facet"), (_point, "pattern is not|same activation"),
    (_domain, "domain"), (_dtype, "dtype"),
])
@pytest.mark.parametrize("rehash", [False, True])
def test_an_edited_complex_is_refused(saved, tmp_path, edit, message, rehash):
    arrays = arrays_of(saved[1])
    edit(arrays)
    path = rewrite(arrays, tmp_path / "edited.npz", rehash)
    with pytest.raises(InvalidFileError, match="content hash" if not rehash else message):
        RegionComplex.load(path)


def test_another_networks_weights_are_refused(saved, moons, tmp_path):
    """The issue's case: the moons regions with another network's weights gave a
    Lipschitz constant of 193.9 for a true 27.74."""
    arrays = arrays_of(saved[1])
    rng = np.random.default_rng(0)
    for key in ("W0", "W1", "W2"):
        arrays[key] = arrays[key] + rng.normal(scale=0.3, size=arrays[key].shape)
    with pytest.raises(InvalidFileError, match="fingerprint"):
        RegionComplex.load(rewrite(arrays, tmp_path / "a.npz"))
    meta = json.loads(str(arrays["meta"]))
    other = Network([arrays[f"W{i}"] for i in range(3)], [arrays[f"b{i}"] for i in range(3)])
    from polyrelu.network.model import network_fingerprint

    meta["network_sha256"] = network_fingerprint(other)
    arrays["meta"] = np.array(json.dumps(meta))
    with pytest.raises(InvalidFileError, match="zero tolerances"):
        RegionComplex.load(rewrite(arrays, tmp_path / "b.npz"))
    from polyrelu.geometry.interval import neuron_status
    from polyrelu.options import Options

    arrays["zero_tol"] = neuron_status(other, BOX, Options()).zero_tol
    with pytest.raises(InvalidFileError, match="pattern is not|affine map"):
        RegionComplex.load(rewrite(arrays, tmp_path / "c.npz"))


def test_the_callers_network_is_checked(saved, moons, tmp_path):
    complex_, path = saved
    other = Network([w * 1.5 for w in moons.weights], moons.biases)
    with pytest.raises(InvalidFileError, match="another network"):
        RegionComplex.load(path, network=other)
    with pytest.raises(PolyreluError, match="another network"):
        lipschitz(other, BOX, 2, complex_=complex_)
    assert lipschitz(moons, BOX, 2, complex_=RegionComplex.load(path)).value == pytest.approx(
        27.74362468646309, rel=1e-12)


@pytest.mark.parametrize("cut", [0, 10, 200, -30])
def test_truncated_or_foreign_files_are_refused(saved, tmp_path, cut):
    data = saved[1].read_bytes()
    path = tmp_path / "cut.npz"
    path.write_bytes(data[:cut] if cut >= 0 else data[:cut] + b"x" * 30)
    with pytest.raises(InvalidFileError):
        RegionComplex.load(path)
    with pytest.raises(InvalidFileError, match="not a readable"):
        RegionComplex.load(tmp_path / "missing.npz")


@pytest.mark.parametrize("header, message", [
    ("{'descr': '<f8', 'fortran_order': False, 'sh", "not a readable"),  # tokenizer error
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (3000000000,), }",
     "declare more than 2147483648 entries"),
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (1000,), }", "declares 8000 bytes"),
])
def test_a_member_with_a_broken_or_lying_header_is_refused(saved, tmp_path, header, message):
    """Headers found by the byte fuzzer (one that makes numpy's header tokenizer raise) and
    headers declaring more data than the member holds: refused before reading the data."""
    path = tmp_path / "broken.npz"
    shutil.copy(saved[1], path)
    member = b"\x93NUMPY\x01\x00" + len(header + "\n").to_bytes(2, "little") \
        + (header + "\n").encode() + bytes(16)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("extra.npy", member)
    with pytest.raises(InvalidFileError, match=message):
        RegionComplex.load(path)


_KEYS = ["patterns", "facet_A", "facet_b", "facet_sources", "interior_points", "radii",
         "W_eff", "b_eff", "edges", "edge_kinks", "ids", "facet_offsets", "zero_tol",
         "domain_A", "domain_b", "domain_lower", "W0", "b1", "meta"]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(key=st.sampled_from(_KEYS), index=st.integers(0, 10**6),
       value=st.sampled_from([0.0, -1.0, 1e300, np.nan, 255, 2**40, 7]),
       rehash=st.booleans())
def test_fuzz_mutated_complex_files(saved, tmp_path_factory, key, index, value, rehash):
    """One entry of one array changed: the load fails with a PolyreluError, or (if the
    change did not change the content) gives the original complex back."""
    complex_, path = saved
    arrays = arrays_of(path)
    target = arrays[key]
    if key == "meta":
        text = str(target)
        position = index % len(text)
        arrays[key] = np.array(text[:position] + "}" + text[position + 1:])
    else:
        flat = target.reshape(-1)
        if flat.size:
            with np.errstate(all="ignore"):
                flat[index % flat.size] = np.array(value).astype(target.dtype)
    out = rewrite(arrays, tmp_path_factory.mktemp("fuzz") / "m.npz", rehash)
    try:
        with hard_limit(30, "loading a mutated complex"):  # nothing hangs
            loaded = RegionComplex.load(out)
    except TimeLimitError:
        raise
    except PolyreluError:
        return
    assert all(np.array_equal(arrays[k], v) for k, v in arrays_of(path).items() if k != "meta")
    assert_same_complex(complex_, loaded)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(position=st.integers(0, 10**7), byte=st.integers(0, 255))
def test_fuzz_mutated_bytes(saved, tmp_path_factory, position, byte):
    data = bytearray(saved[1].read_bytes())
    position %= len(data)
    data[position] = byte
    path = tmp_path_factory.mktemp("bytes") / "m.npz"
    path.write_bytes(bytes(data))
    try:
        with hard_limit(30, "loading a mutated file"):
            loaded = RegionComplex.load(path)
    except TimeLimitError:
        raise
    except PolyreluError:
        return
    assert_same_complex(saved[0], loaded)  # an inert byte (zip header, padding)


# ---------------------------------------------------------------------------- checkpoints

@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory):
    weights, biases = random_network((2, 10, 8, 1), np.random.default_rng(72))
    network, domain = Network(weights, biases), Domain.box(-np.ones(2), np.ones(2))
    directory = tmp_path_factory.mktemp("ckpt") / "c"
    from polyrelu.options import Options
    from polyrelu.regions.checkpoint import Checkpoint

    checkpoint = Checkpoint(directory, network, domain, Options(), flush_regions=15)
    reference = enumerate_regions(network, domain, checkpoint=checkpoint)
    assert len(list(directory.glob("chunk_*.npz"))) >= 3
    return network, domain, directory, reference


def _copy(checkpointed, tmp_path):
    network, domain, directory, reference = checkpointed
    copy = tmp_path / "copy"
    shutil.copytree(directory, copy)
    return network, domain, copy, reference


def test_resume_from_an_intact_checkpoint(checkpointed, tmp_path):
    network, domain, copy, reference = _copy(checkpointed, tmp_path)
    for extra in sorted(copy.glob("chunk_*.npz"))[2:]:
        extra.unlink()
    again = enumerate_regions(network, domain, checkpoint=copy)
    assert again.stats["resumed_regions"] > 0
    assert_same_complex(reference, again)


@pytest.mark.parametrize("rehash", [False, True])
def test_zeroed_facet_points_are_refused(checkpointed, tmp_path, rehash):
    """The issue's case: zeroed facet points resumed to 509 edges instead of 482."""
    network, domain, copy, _ = _copy(checkpointed, tmp_path)
    chunk = copy / "chunk_000001.npz"
    arrays = arrays_of(chunk)
    arrays["facet_points"][:] = 0.0
    rewrite(arrays, chunk, rehash)
    with pytest.raises(InvalidFileError, match="facet point" if rehash else "content hash"):
        enumerate_regions(network, domain, checkpoint=copy)


def test_missing_metadata_foreign_and_renamed_chunks_are_refused(checkpointed, tmp_path):
    network, domain, copy, _ = _copy(checkpointed, tmp_path)
    (copy / "meta.json").unlink()
    with pytest.raises(InvalidFileError, match="no meta.json"):
        enumerate_regions(network, domain, checkpoint=copy)
    network, domain, copy2, _ = _copy(checkpointed, tmp_path / "2")
    (copy2 / "chunk_000000.npz").unlink()
    with pytest.raises(InvalidFileError, match="numbered"):
        enumerate_regions(network, domain, checkpoint=copy2)
    # a chunk of another run (another domain), renamed into place
    other = tmp_path / "other"
    enumerate_regions(network, Domain.box(-np.ones(2), 0.5 * np.ones(2)), checkpoint=other)
    network, domain, copy3, _ = _copy(checkpointed, tmp_path / "3")
    shutil.copy(other / "chunk_000000.npz", copy3 / "chunk_000000.npz")
    with pytest.raises(InvalidFileError, match="another run"):
        enumerate_regions(network, domain, checkpoint=copy3)
    (copy3 / "meta.json").write_text("{not json")
    with pytest.raises(InvalidFileError, match="unreadable checkpoint metadata"):
        enumerate_regions(network, domain, checkpoint=copy3)


def test_a_checkpoint_path_naming_a_file_is_refused(checkpointed, tmp_path):
    network, domain, _, _ = checkpointed
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(InvalidFileError, match="existing file"):
        enumerate_regions(network, domain, checkpoint=path)


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(chunk=st.integers(0, 2), key=st.sampled_from(
    ["facet_points", "facet_A", "facet_b", "patterns", "W_eff", "radii", "ids", "meta",
     "interior_points", "facet_sources"]),
       index=st.integers(0, 10**6), value=st.sampled_from([0.0, 3.0, -1e9, np.nan, 1]),
       rehash=st.booleans(), truncate=st.integers(0, 3))
def test_fuzz_mutated_checkpoint_chunks(checkpointed, tmp_path_factory, chunk, key, index,
                                        value, rehash, truncate):
    """Mutated or truncated chunks: resuming raises a PolyreluError or gives exactly the
    uninterrupted run's regions (when the mutation changed nothing)."""
    network, domain, directory, reference = checkpointed
    copy = tmp_path_factory.mktemp("fz") / "c"
    shutil.copytree(directory, copy)
    path = copy / f"chunk_{chunk:06d}.npz"
    if truncate:
        data = path.read_bytes()
        path.write_bytes(data[:len(data) * truncate // 4])
    else:
        arrays = arrays_of(path)
        if key == "meta":
            text = str(arrays[key])
            arrays[key] = np.array(text[:index % len(text)])
        else:
            flat = arrays[key].reshape(-1)
            with np.errstate(all="ignore"):
                flat[index % flat.size] = np.array(value).astype(flat.dtype)
        rewrite(arrays, path, rehash)
    try:
        with hard_limit(60, "resuming from a mutated checkpoint"):
            resumed = enumerate_regions(network, domain, checkpoint=copy)
    except TimeLimitError:
        raise
    except PolyreluError:
        return
    assert_same_complex(reference, resumed)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(network=degenerate_networks())
def test_genuine_files_of_degenerate_networks_load(network, tmp_path_factory):
    """No false refusals: coincident and duplicated neurons, zero rows and dead neurons
    (tests/networks.py) give files that load back to the same complex."""
    domain = Domain.box(-np.ones(network.input_dim), np.ones(network.input_dim))
    try:
        complex_ = enumerate_regions(network, domain)
    except PolyreluError:
        return  # a degenerate arrangement the walk refuses (NumericalAmbiguityError)
    path = tmp_path_factory.mktemp("genuine") / "c.npz"
    complex_.save(path)
    assert_same_complex(complex_, RegionComplex.load(path, network=network))
