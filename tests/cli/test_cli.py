"""The command line: key: value output, --json, saving, clear errors."""

import json

import numpy as np
import pytest

from oracles import random_network
from polyrelu import RegionComplex
from polyrelu.cli import main


@pytest.fixture
def net_file(tmp_path):
    weights, biases = random_network((2, 5, 4, 1), np.random.default_rng(51))
    path = tmp_path / "net.npz"
    np.savez(path, **{f"W{i}": w for i, w in enumerate(weights)},
             **{f"b{i}": b for i, b in enumerate(biases)})
    return path


def test_regions_prints_key_value_lines_and_saves(net_file, tmp_path, capsys):
    out = tmp_path / "c.npz"
    assert main(["regions", str(net_file), "--box", "-1", "1", "-o", str(out)]) == 0
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    loaded = RegionComplex.load(out)
    assert int(lines["regions"]) == len(loaded)
    assert int(lines["edges"]) == loaded.graph.number_of_edges()
    assert sum(r.volume() for r in loaded) == pytest.approx(4.0, rel=1e-9)


def test_regions_json_and_per_dimension_box(net_file, capsys):
    assert main(["regions", str(net_file), "--box", "-1,-2", "1,0.5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["regions"] > 1 and result["lps"] >= result["regions"]


def test_vnnlib_box(acasxu_dir, tmp_path, capsys):
    from polyrelu.verification.vnnlib import input_box

    lower, upper = input_box(acasxu_dir / "prop_1.vnnlib")
    np.testing.assert_array_equal(lower, [0.6, -0.5, -0.5, 0.45, -0.5])
    np.testing.assert_array_equal(upper, [0.679857769, 0.5, 0.5, 0.5, -0.45])
    small = tmp_path / "small.vnnlib"
    small.write_text("; a small box\n" + "".join(
        f"(declare-const X_{i} Real)\n(assert (<= X_{i} {hi}))\n(assert (>= X_{i} {lo}))\n"
        for i, (lo, hi) in enumerate(zip([0.6, -0.1, -0.1, 0.45, -0.5],
                                         [0.62, 0.1, 0.0, 0.47, -0.49]))))
    net = acasxu_dir / "ACASXU_run2a_1_1_batch_2000.onnx"
    assert main(["regions", str(net), "--vnnlib", str(small)]) == 0
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert int(lines["regions"]) >= 1
    assert "[0.62, 0.1, 0.0, 0.47, -0.49]" in lines["domain"]


@pytest.mark.parametrize("box,message", [
    (["-1", "1,2,3"], "HI has 3 values but the network has 2 inputs"),
    (["a", "1"], "LO must be numbers"),
    (["1", "-1"], "not below upper bound"),
])
def test_bad_box_gives_a_clear_error(net_file, capsys, box, message):
    assert main(["regions", str(net_file), "--box", *box]) == 2
    assert message in capsys.readouterr().err


def test_missing_network_file(capsys):
    assert main(["regions", "nope.onnx", "--box", "0", "1"]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize("norm", ["1", "2", "inf"])
def test_lipschitz_prints_value_and_a_consistent_table(net_file, capsys, norm):
    assert main(["lipschitz", str(net_file), "--box", "-1", "1", "--norm", norm,
                 "--enumerate"]) == 0
    out = capsys.readouterr().out
    lines = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    assert float(lines["lipschitz"]) > 0
    assert lines["all_bounds_consistent"] == "True"
    assert "norm product" in out and ("LipSDP-neuron" in out) == (norm == "2")


def test_lipschitz_json(net_file, capsys):
    assert main(["lipschitz", str(net_file), "--box", "-1", "1", "--json", "--no-sdp",
                 "--enumerate"]) == 0
    enumerated = json.loads(capsys.readouterr().out)
    low, high = enumerated["exact_bracket"]
    assert low <= enumerated["lipschitz"] <= high
    assert [row["method"] for row in enumerated["table"]][0] == "exact (polyrelu)"
    assert main(["lipschitz", str(net_file), "--box", "-1", "1", "--json"]) == 0
    searched = json.loads(capsys.readouterr().out)
    assert searched["method"] == "branch and bound" and searched["witness_pattern_exact"]
    assert searched["lipschitz"] == pytest.approx(enumerated["lipschitz"], rel=1e-12)
    assert searched["regions_reached"] <= enumerated["regions"]


def test_cli_runs_as_a_module():
    """``python -m polyrelu.cli`` reaches every command (the module's entry point runs
    after all its definitions)."""
    import subprocess
    import sys

    for command in ("verify", "check-certificate", "verify-instances", "regions"):
        done = subprocess.run([sys.executable, "-m", "polyrelu.cli", command, "--help"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "usage" in done.stdout


def test_count_only_in_worker_processes_equals_the_walk(net_file, capsys):
    """``--count-only --jobs 2`` (work units counted by two processes) against the walk's
    region count, both from the command line."""
    box = ["--box", "-1", "1"]
    assert main(["regions", str(net_file), *box, "--json"]) == 0
    walked = json.loads(capsys.readouterr().out)["regions"]
    assert main(["regions", str(net_file), *box, "--count-only", "--jobs", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["regions"] == walked


def test_a_closed_pipe_is_not_an_error(net_file):
    """``polyrelu ... | head -1``: the reader leaves early; no traceback, exit 0."""
    import subprocess
    import sys

    command = [sys.executable, "-c", "from polyrelu.cli.main import entry; entry()",
               "regions", str(net_file), "--box", "-1", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # nobody reads the output
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0 and b"Traceback" not in err, err


def test_blas_threads_option(net_file, capsys):
    assert main(["--blas-threads", "2", "regions", str(net_file), "--box", "-1", "1",
                 "--json"]) == 0
    two = json.loads(capsys.readouterr().out)["regions"]
    assert main(["regions", str(net_file), "--box", "-1", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["regions"] == two
    assert main(["--blas-threads", "0", "regions", str(net_file), "--box", "-1", "1"]) == 2
