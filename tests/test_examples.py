"""The README's first command: the quickstart example runs on a fresh checkout and its
outputs hold what the README says (checked here independently of the example's own
checks)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from polyrelu import Domain, RegionComplex, count_regions, load_network

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_runs_and_writes_what_the_readme_says(tmp_path):
    pytest.importorskip("matplotlib")
    copy = tmp_path / "examples"
    shutil.copytree(EXAMPLES / "nets", copy / "nets")
    shutil.copy(EXAMPLES / "quickstart.py", copy)
    env = {**os.environ, "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, str(copy / "quickstart.py")], capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    assert lines["regions"] == "256"
    assert lines["check_points_located"] == "10000 of 10000"
    assert float(lines["check_area_relative_error"]) < 1e-12
    network = load_network(copy / "nets" / "moons_2_16_16_2.npz")
    saved = RegionComplex.load(copy / "out" / "moons_complex.npz", network=network)
    domain = Domain.box([-2.0, -1.5], [3.0, 2.0])
    assert len(saved) == count_regions(network, domain)[0] == 256  # the second enumerator
    assert (copy / "out" / "moons_regions.png").stat().st_size > 10_000
