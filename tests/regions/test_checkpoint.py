"""Interrupted runs resume from their checkpoint with exactly the regions of a full run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from processes import default_sigint

from oracles import assert_same_complex, random_network
from polyrelu import Domain, InvalidFileError, Network, RegionComplex, enumerate_regions


@pytest.fixture(scope="module")
def net_file(tmp_path_factory):
    weights, biases = random_network((3, 16, 12, 1), np.random.default_rng(70))
    path = tmp_path_factory.mktemp("net") / "net.npz"
    np.savez(path, **{f"W{i}": w for i, w in enumerate(weights)},
             **{f"b{i}": b for i, b in enumerate(biases)})
    return path


# Runs the CLI with Checkpoint.flush patched: after the first chunk is written, the run
# touches a flag file and waits there (until FLAG.go exists), so the test interrupts it in
# a known state (a chunk on disk, the walk unfinished) instead of racing a clock.
_PAUSED_RUN = """
import sys, time
from pathlib import Path
from polyrelu.regions import checkpoint as module
original = module.Checkpoint.flush
def flush(self):
    original(self)
    if self._chunks == 1 and not Path(sys.argv[1]).exists():
        Path(sys.argv[1]).touch()
        limit = time.monotonic() + 120
        while not Path(sys.argv[1] + ".go").exists() and time.monotonic() < limit:
            time.sleep(0.02)
module.Checkpoint.flush = flush
from polyrelu.cli import main
sys.exit(main(sys.argv[2:]))
"""


def wait_for(path, process, seconds=120):
    """Wait until ``path`` exists (the run reached its pause); fail if the run ended."""
    limit = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, "the run ended before reaching its pause"
        assert time.monotonic() < limit, "the run did not reach its pause"
        time.sleep(0.02)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_killed_run_resumes_to_the_same_regions(net_file, tmp_path, how):
    from polyrelu.network.loaders import load_network

    network = load_network(net_file)
    domain = Domain.box(-np.ones(3), np.ones(3))
    reference = enumerate_regions(network, domain)
    checkpoint = tmp_path / "ckpt"
    arguments = ["regions", str(net_file), "--box", "-1", "1", "--checkpoint", str(checkpoint),
                 "--checkpoint-seconds", "0.2", "-o", str(tmp_path / "out.npz")]
    flag = tmp_path / "paused"
    process = subprocess.Popen([sys.executable, "-c", _PAUSED_RUN, str(flag), *arguments],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=default_sigint)
    wait_for(flag, process)
    process.send_signal(how)
    process.communicate(timeout=60)
    assert process.returncode == (130 if how == signal.SIGINT else -signal.SIGKILL)
    assert len(list(checkpoint.glob("chunk_*.npz"))) == 1
    assert not (tmp_path / "out.npz").exists()
    command = [sys.executable, "-m", "polyrelu", *arguments]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert "resumed_regions" in finished.stdout
    assert_same_complex(reference, RegionComplex.load(tmp_path / "out.npz"))


def test_in_process_resume_and_a_foreign_checkpoint(tmp_path):
    weights, biases = random_network((2, 8, 6, 1), np.random.default_rng(71))
    network = Network(weights, biases)
    domain = Domain.box(-np.ones(2), np.ones(2))
    first = enumerate_regions(network, domain, checkpoint=tmp_path / "c")
    again = enumerate_regions(network, domain, checkpoint=tmp_path / "c")
    assert again.stats["resumed_regions"] == len(first) and again.stats["lps"] == 0
    assert_same_complex(first, again)
    other = Network([w * 2 for w in weights], biases)
    with pytest.raises(InvalidFileError, match="another network"):
        enumerate_regions(other, domain, checkpoint=tmp_path / "c")


def test_killed_worker_process_then_resume(net_file, tmp_path):
    from polyrelu.network.loaders import load_network

    network = load_network(net_file)
    reference = enumerate_regions(network, Domain.box(-np.ones(3), np.ones(3)))
    checkpoint = tmp_path / "ckpt"
    arguments = ["regions", str(net_file), "--box", "-1", "1", "--jobs", "2", "--checkpoint",
                 str(checkpoint), "--checkpoint-seconds", "0.2", "-o", str(tmp_path / "out.npz")]
    flag = tmp_path / "paused"
    process = subprocess.Popen([sys.executable, "-c", _PAUSED_RUN, str(flag), *arguments],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(flag, process)
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    assert children, "no worker process to kill"
    os.kill(int(children[0]), signal.SIGKILL)
    Path(f"{flag}.go").touch()
    _, err = process.communicate(timeout=120)
    command = [sys.executable, "-m", "polyrelu", *arguments]
    assert process.returncode == 2 and b"worker process died" in err
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert "resumed_regions" in finished.stdout
    assert_same_complex(reference, RegionComplex.load(tmp_path / "out.npz"))
