"""Interrupted runs resume from their checkpoint with exactly the regions of a full run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from oracles import assert_same_complex, random_network
from polyrelu import Domain, InvalidFileError, Network, RegionComplex, enumerate_regions


@pytest.fixture(scope="module")
def net_file(tmp_path_factory):
    weights, biases = random_network((3, 16, 12, 1), np.random.default_rng(70))
    path = tmp_path_factory.mktemp("net") / "net.npz"
    np.savez(path, **{f"W{i}": w for i, w in enumerate(weights)},
             **{f"b{i}": b for i, b in enumerate(biases)})
    return path


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_killed_run_resumes_to_the_same_regions(net_file, tmp_path, how):
    from polyrelu.network.loaders import load_network

    network = load_network(net_file)
    domain = Domain.box(-np.ones(3), np.ones(3))
    reference = enumerate_regions(network, domain)
    checkpoint = tmp_path / "ckpt"
    command = [sys.executable, "-m", "polyrelu", "regions", str(net_file), "--box", "-1", "1",
               "--checkpoint", str(checkpoint), "--checkpoint-seconds", "0.2",
               "-o", str(tmp_path / "out.npz")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not list(checkpoint.glob("chunk_*.npz")) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(how)
    process.wait(timeout=60)
    assert process.returncode != 0, "the run finished before it could be interrupted"
    stored = len(list(checkpoint.glob("chunk_*.npz")))
    assert stored >= 1
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
    command = [sys.executable, "-m", "polyrelu", "regions", str(net_file), "--box", "-1", "1",
               "--jobs", "2", "--checkpoint", str(checkpoint), "--checkpoint-seconds", "0.2",
               "-o", str(tmp_path / "out.npz")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not list(checkpoint.glob("chunk_*.npz")) and time.monotonic() < deadline:
        time.sleep(0.05)
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    assert children, "no worker process to kill"
    os.kill(int(children[0]), signal.SIGKILL)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2 and b"worker process died" in err
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert "resumed_regions" in finished.stdout
    assert_same_complex(reference, RegionComplex.load(tmp_path / "out.npz"))
