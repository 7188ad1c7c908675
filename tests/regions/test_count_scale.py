"""The count at scale: depth-first batches (memory bounded by depth x chunk pieces), shared
out to worker processes or Dask, resumable from a checkpoint. Oracles: brute force over
every pattern and the walk (another enumerator); the checkpoint must refuse damaged,
foreign and oversized files."""

import json
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from networks import mixed_network, tent_network
from processes import default_sigint

from oracles import brute_force_regions, random_network
from polyrelu import Domain, InvalidFileError, Network, Options, enumerate_regions
from polyrelu.deadline import Deadline
from polyrelu.errors import SizeLimitError, TimeLimitError
from polyrelu.geometry.lp import LPSolver
from polyrelu.regions import validation
from polyrelu.regions.checkpoint import COUNT_FILE, CountCheckpoint
from polyrelu.regions.parallel import count_parallel
from polyrelu.regions.splitting import Splitter, count_batches, count_regions, split_step


def random_case(sizes, seed, half_width=1.0):
    network = Network(*random_network(sizes, np.random.default_rng(seed)))
    return network, Domain.box(-half_width * np.ones(sizes[0]), half_width * np.ones(sizes[0]))


@pytest.fixture(scope="module")
def medium():
    """A net with a few thousand regions (the walk's count is the oracle)."""
    network, domain = random_case((3, 14, 12, 10, 1), 90)
    return network, domain, len(enumerate_regions(network, domain))


@pytest.mark.parametrize("chunk", [1, 2, 7, 1024])
def test_small_chunks_count_what_brute_force_counts(chunk):
    """Batches dealt mid-layer (chunk 1: after every cut) lose and double no piece."""
    weights, biases = random_network((2, 5, 4, 1), np.random.default_rng(91))
    network, domain = Network(weights, biases), Domain.box([-1.0, -1.0], [1.0, 1.0])
    brute = brute_force_regions(weights, biases, domain.lower, domain.upper,
                                Options().min_radius_rel * domain.diameter)
    assert count_regions(network, domain, chunk=chunk)[0] == len(brute) > 10


@pytest.mark.parametrize("chunk", [3, 64])
def test_general_layers_with_small_chunks_equal_the_walk(chunk):
    """Max windows and kept linear units (mixed_network): the same count as the walk."""
    network, domain = mixed_network(seed=3), Domain.box(-np.ones(3), np.ones(3))
    assert count_regions(network, domain, chunk=chunk)[0] == len(enumerate_regions(network,
                                                                                   domain))


def test_open_pieces_stay_bounded_by_depth_times_chunk(medium):
    """However many regions, the stack never holds more than (ReLU units + layers + 1) x
    chunk pieces: the flat-memory bound."""
    network, domain, walked = medium
    chunk = 16
    splitter = Splitter(network, domain, Options(), LPSolver())
    stack, most, count = [splitter.root_batch()], 0, 0
    while stack:
        most = max(most, sum(batch.pieces.count for batch in stack))
        pieces = split_step(splitter, stack, chunk=chunk)
        if pieces is not None:
            count += int(splitter.finish(pieces).sum())
    depth = network.num_hidden + len(network.hidden_sizes) + 1
    assert count == walked > 20 * chunk
    assert most <= depth * chunk


def test_open_batches_finish_anywhere_to_the_same_count(medium):
    """Stopped after a few pieces, the open batches, counted one by one (in any order),
    add up to the walk's count."""
    network, domain, walked = medium
    found, _, left = count_batches(network, domain, chunk=8, spread=40)
    assert len(left) > 3
    rest = [count_batches(network, domain, batches=[batch], chunk=8)[0] for batch in left[::-1]]
    assert found + sum(rest) == walked


@pytest.mark.parametrize("jobs", [1, 2])
def test_worker_processes_count_what_the_walk_counts(medium, jobs):
    network, domain, walked = medium
    count, stats = count_parallel(network, domain, jobs=jobs, chunk=32, task_seconds=0.05)
    assert count == walked and stats["units"] >= jobs  # (Dask: tests/regions/test_parallel.py)


@pytest.mark.parametrize("jobs", [1, 2])
def test_interrupted_count_resumes_to_the_same_total(medium, tmp_path, jobs):
    """Stopped by its time limit again and again, each run resumes from the checkpoint;
    the last total is the walk's."""
    network, domain, walked = medium
    runs, resumed = 0, []
    while True:
        runs += 1
        try:
            count, stats = count_parallel(network, domain, jobs=jobs, checkpoint=tmp_path,
                                          chunk=16, task_seconds=0.05, checkpoint_seconds=0.05,
                                          deadline=Deadline(0.4))
            break
        except TimeLimitError as err:
            assert "run again with the same checkpoint" in str(err)
            resumed.append(err.partial["regions_so_far"])
    assert count == walked and runs > 1
    assert resumed == sorted(resumed) and stats["resumed_regions"] == resumed[-1] > 0


def test_finished_checkpoint_gives_the_total_without_work(tmp_path):
    network, domain = tent_network(6), Domain.box([0.0], [1.0])
    count, first = count_parallel(network, domain, checkpoint=tmp_path)
    assert count == 64
    count, stats = count_parallel(network, domain, checkpoint=tmp_path)
    assert count == 64 and stats["lps"] == first["lps"] and stats["units"] == 0


def stored_checkpoint(medium, directory):
    """A checkpoint of an unfinished count of ``medium`` (some batches open)."""
    network, domain, _ = medium
    found, lps, left = count_batches(network, domain, chunk=8, spread=40)
    CountCheckpoint(directory, network, domain, Options()).save(found, lps, left)
    return CountCheckpoint(directory, network, domain, Options())


def test_checkpoint_round_trip_keeps_the_batches(medium, tmp_path):
    network, domain, walked = medium
    store = stored_checkpoint(medium, tmp_path)
    count, _, batches = store.load()
    assert count + count_batches(network, domain, batches=batches)[0] == walked


def test_checkpoint_keeps_batches_part_way_through_max_windows(tmp_path):
    """Open batches stopped between two max windows (chunk 1) survive the checkpoint:
    the resumed total is the walk's."""
    network, domain = mixed_network(seed=3), Domain.box(-np.ones(3), np.ones(3))
    splitter = Splitter(network, domain, Options(), LPSolver())
    relu_units = len(network.layers[0].relu_units)
    stack, found = [splitter.root_batch()], 0
    while not any(b.unit is not None and b.unit > relu_units for b in stack):
        pieces = split_step(splitter, stack, chunk=1)
        found += 0 if pieces is None else int(splitter.finish(pieces).sum())
    store = CountCheckpoint(tmp_path, network, domain, Options())
    store.save(found, 0, [batch.compact() for batch in stack[::-1]])
    count, _, batches = store.load()
    rest = count_batches(network, domain, batches=batches, chunk=1)[0]
    assert count + rest == len(enumerate_regions(network, domain))


def test_mutated_bytes_are_refused(medium, tmp_path):
    stored_checkpoint(medium, tmp_path)
    raw = bytearray((tmp_path / COUNT_FILE).read_bytes())
    rng = np.random.default_rng(5)
    for where in rng.integers(0, len(raw), 12):
        mutated = raw.copy()
        mutated[where] ^= 0xFF
        (tmp_path / COUNT_FILE).write_bytes(bytes(mutated))
        with pytest.raises(InvalidFileError):
            CountCheckpoint(tmp_path, *medium[:2], Options()).load()
    (tmp_path / COUNT_FILE).write_bytes(bytes(raw[:len(raw) // 2]))
    with pytest.raises(InvalidFileError):
        CountCheckpoint(tmp_path, *medium[:2], Options()).load()


def test_another_network_or_options_is_refused(medium, tmp_path):
    network, domain, _ = medium
    stored_checkpoint(medium, tmp_path)
    other = Network([w * 1.5 for w in network.weights], network.biases)
    with pytest.raises(InvalidFileError, match="another network"):
        CountCheckpoint(tmp_path, other, domain, Options()).load()
    with pytest.raises(InvalidFileError, match="another network"):
        CountCheckpoint(tmp_path, network, domain, Options(zero_rel=1e-7)).load()


def rewrite(path, change):
    """Rewrite the count checkpoint at ``path`` with ``change(arrays, meta)`` applied and a
    matching hash (a forgery, not damage)."""
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    meta = json.loads(arrays.pop("meta").tobytes().decode())
    change(arrays, meta)
    meta["content_sha256"] = validation.content_hash(arrays)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


@pytest.mark.parametrize("change,message", [
    (lambda a, m: a.update(b0_maps=a["b0_maps"] + 10**6), "out of range"),
    (lambda a, m: a.update(b0_rows=a["b0_rows"] + 10**6), "out of range"),
    (lambda a, m: a.update(b0_A=a["b0_A"][:, :, :1]), "shape"),
    (lambda a, m: a.update(b0_low=np.full_like(a["b0_low"], np.nan)), "non-finite"),
    (lambda a, m: m["batches"][0].__setitem__(0, 99), "layer"),
    (lambda a, m: m["batches"][0].__setitem__(1, -3), "unit"),
    (lambda a, m: m.update(count=-1), "malformed"),
    (lambda a, m: a.pop("b0_valid"), "malformed"),
])
def test_forged_consistent_hash_but_bad_arrays_is_refused(medium, tmp_path, change, message):
    stored_checkpoint(medium, tmp_path)
    rewrite(tmp_path / COUNT_FILE, change)
    with pytest.raises(InvalidFileError, match=message):
        CountCheckpoint(tmp_path, *medium[:2], Options()).load()


def test_absurd_sizes_are_refused_before_allocating(medium, tmp_path):
    """An array whose header declares 10^12 entries is refused from the header."""
    stored_checkpoint(medium, tmp_path)
    path = tmp_path / COUNT_FILE
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }"
    member = b"\x93NUMPY\x01\x00" + len(header + "\n").to_bytes(2, "little") \
        + (header + "\n").encode()
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("huge.npy", member)
    with pytest.raises(SizeLimitError):
        CountCheckpoint(tmp_path, *medium[:2], Options()).load()


def test_a_walk_checkpoint_directory_is_refused(tmp_path):
    network, domain = tent_network(3), Domain.box([0.0], [1.0])
    enumerate_regions(network, domain, checkpoint=tmp_path)
    with pytest.raises(InvalidFileError, match="walk"):
        count_parallel(network, domain, checkpoint=tmp_path)


@pytest.fixture(scope="module")
def net_file(tmp_path_factory):
    """A net whose count takes several seconds even on a quiet machine (so --timeout 2.5
    stops it), and its single-process count (equal to the walk's on the nets above)."""
    weights, biases = random_network((3, 40, 28, 24, 1), np.random.default_rng(92))
    path = tmp_path_factory.mktemp("net") / "net.npz"
    np.savez(path, **{f"W{i}": w for i, w in enumerate(weights)},
             **{f"b{i}": b for i, b in enumerate(biases)})
    network = Network(weights, biases)
    return path, network, count_regions(network, Domain.box(-np.ones(3), np.ones(3)))[0]


def cli(*arguments, timeout=300):
    return subprocess.run([sys.executable, "-m", "polyrelu", "regions", *arguments],
                          capture_output=True, text=True, timeout=timeout, check=False)


def count_of(stdout):
    return int(next(line for line in stdout.splitlines()
                    if line.startswith("regions:")).split()[1])


def test_cli_count_with_jobs_and_timeout_then_resume(net_file, tmp_path):
    """Stopped by --timeout (exit 3) until it finishes: the total is the walk's."""
    path, _, walked = net_file
    arguments = [str(path), "--box", "-1", "1", "--count-only", "--checkpoint",
                 str(tmp_path / "c"), "--checkpoint-seconds", "0.2", "--jobs", "2"]
    stops = 0
    while (run := cli(*arguments, "--timeout", "2.5")).returncode == 3:
        assert "run the same command again" in run.stdout
        stops += 1
        assert stops < 30
    assert run.returncode == 0, run.stderr
    assert count_of(run.stdout) == walked and stops >= 1


def test_cli_ctrl_c_then_resume(net_file, tmp_path):
    path, _, walked = net_file
    checkpoint = tmp_path / "c"
    arguments = [str(path), "--box", "-1", "1", "--count-only", "--checkpoint",
                 str(checkpoint), "--checkpoint-seconds", "0.1"]
    process = subprocess.Popen([sys.executable, "-m", "polyrelu", "regions", *arguments],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=default_sigint)
    limit = time.monotonic() + 120
    while not (checkpoint / COUNT_FILE).exists():
        assert process.poll() is None and time.monotonic() < limit
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    assert process.returncode == 130
    finished = cli(*arguments)
    assert finished.returncode == 0, finished.stderr
    assert count_of(finished.stdout) == walked


def test_cli_refuses_a_damaged_count_checkpoint_in_one_line(net_file, tmp_path):
    path, _, _ = net_file
    (tmp_path / COUNT_FILE).write_bytes(b"not a zip file")
    run = cli(str(path), "--box", "-1", "1", "--count-only", "--checkpoint", str(tmp_path))
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1
    assert "count checkpoint" in run.stderr
