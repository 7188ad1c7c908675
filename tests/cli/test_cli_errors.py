"""Every CLI error is one line on stderr with exit status 2; nothing computed is lost
(output paths checked before the work, failed writes rescued); optional packages missing
give a one-line message before the work."""

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from oracles import assert_same_complex, random_network
from polyrelu import Domain, RegionComplex, enumerate_regions
from polyrelu.cli import main
from polyrelu.network.loaders import load_network
from polyrelu.regions import parallel
from polyrelu.regions.checkpoint import StreamedComplex

MOONS = str(Path(__file__).resolve().parents[2] / "examples" / "nets" / "moons_2_16_16_2.npz")
BOX = ["--box", "-2,-1.5", "3,2"]


def one_line_error(capsys, status, code, *fragments):
    """The run failed with exit ``code`` and exactly one line on stderr holding every
    fragment."""
    err = capsys.readouterr().err
    assert status == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("polyrelu"), err
    for fragment in fragments:
        assert fragment in lines[0], err
    return lines[0]


def prop_file(path, dim=2, bound=1e6):
    names = [f"(declare-const X_{i} Real)" for i in range(dim)] + ["(declare-const Y_0 Real)"]
    box = [f"(assert (>= X_{i} -1)) (assert (<= X_{i} 1))" for i in range(dim)]
    path.write_text(" ".join(names + box + [f"(assert (>= Y_0 {bound}))"]))
    return path


@pytest.mark.parametrize("box, message", [
    (["-inf", "inf"], "finite"), (["-1,nan", "1,1"], "finite"), (["nan", "1"], "finite"),
    (["-1e300", "1e300"], "too large"), (["1", "-1"], "empty or degenerate"),
    (["-1,x", "1"], "numbers separated by commas"),
])
def test_bad_numbers_in_box(capsys, box, message):
    one_line_error(capsys, main(["regions", MOONS, "--box", *box]), 2, message)


@pytest.mark.parametrize("extra, message", [
    (["--jobs", "0"], "at least 1"), (["--jobs", "two"], "whole number"),
    (["--timeout", "-5"], ">= 0"), (["--timeout", "nan"], ">= 0"),
    (["--count-only", "--cross-check"], "--cross-check cannot be used"),
    (["--count-only", "-o", "x.npz"], "-o cannot be used"),
])
def test_bad_or_ignored_options(capsys, extra, message):
    one_line_error(capsys, main(["regions", MOONS, *BOX, *extra]), 2, message)


@pytest.mark.parametrize("command", [
    ["verify", MOONS, "P", "--jobs", "0"], ["verify", MOONS, "P", "--timeout", "-1"],
    ["verify-instances", "I", "-o", "r.csv", "--timeout-cap", "-3"],
    ["lipschitz", MOONS, *BOX, "--timeout", "-5"], ["no-such-command"],
])
def test_bad_options_of_other_commands(capsys, command):
    one_line_error(capsys, main(command), 2, "error")


@pytest.mark.parametrize("options, message", [
    (["--no-sdp"], "--no-sdp applies to --enumerate only"),
    (["--enumerate", "--direction", "1,0"], "need the search"),
    (["--enumerate", "--layer", "1"], "need the search"),
])
def test_lipschitz_options_that_would_be_ignored_are_refused(capsys, options, message):
    one_line_error(capsys, main(["lipschitz", MOONS, *BOX, *options]), 2, message)


def test_lipschitz_on_a_tiny_box(capsys):
    line = one_line_error(capsys, main(["lipschitz", MOONS, "--box", "0", "1e-300"]), 2)
    assert "no region" in line or "resolvable scale" in line  # the domain check may come first


def test_corrupt_zip_and_unreadable_paths(tmp_path, capsys):
    data = open(MOONS, "rb").read()
    for name, content in (("cut.npz", data[:len(data) // 2]), ("junk.npz", b"PK\x03\x04junk")):
        (tmp_path / name).write_bytes(content)
        one_line_error(capsys, main(["regions", str(tmp_path / name), *BOX]), 2)
    (tmp_path / "folder.npz").mkdir()
    one_line_error(capsys, main(["regions", str(tmp_path / "folder.npz"), *BOX]), 2)
    one_line_error(capsys, main(["verify", MOONS, str(tmp_path / "missing.vnnlib")]), 2)


def test_unreachable_scheduler(capsys, monkeypatch):
    monkeypatch.setattr(parallel, "CONNECT_SECONDS", 1)  # the message, not the wait, is tested
    one_line_error(capsys, main(["regions", MOONS, *BOX, "--scheduler", "tcp://127.0.0.1:9"]),
                   2, "cannot reach the Dask scheduler")


def test_truncated_checkpoint_chunk(tmp_path, capsys):
    checkpoint = tmp_path / "ckpt"
    assert main(["regions", MOONS, *BOX, "--checkpoint", str(checkpoint)]) == 0
    capsys.readouterr()
    chunk = sorted(checkpoint.glob("chunk_*.npz"))[0]
    chunk.write_bytes(chunk.read_bytes()[:300])
    one_line_error(capsys, main(["regions", MOONS, *BOX, "--checkpoint", str(checkpoint)]), 2,
                   "not a readable polyrelu checkpoint chunk")


# ---------------------------------------------------------------- output paths, before work

@pytest.mark.parametrize("make_command, option", [
    (lambda t, net: ["regions", net, *BOX, "-o", str(t / "missing" / "out.npz")], "-o"),
    (lambda t, net: ["regions", net, *BOX, "-o", str(t)], "-o"),
    (lambda t, net: ["regions", net, *BOX, "--checkpoint", str(t / "file.txt")],
     "--checkpoint"),
    (lambda t, net: ["regions", net, *BOX, "--checkpoint", str(t / "missing" / "c")],
     "--checkpoint"),
    (lambda t, net: ["verify", net, str(prop_file(t / "p.vnnlib")), "--certificate",
                     str(t / "missing" / "c.npz")], "--certificate"),
    (lambda t, net: ["verify", net, str(prop_file(t / "p.vnnlib")), "--result",
                     str(t / "missing" / "r.txt")], "--result"),
    (lambda t, net: ["verify-instances", str(t / "no-such.csv"), "-o",
                     str(t / "missing" / "r.csv")], "-o"),
    (lambda t, net: ["slice", net, *BOX, "-o", str(t / "missing" / "pic.png")], "-o"),
])
def test_output_paths_are_checked_before_the_work(tmp_path, capsys, make_command, option):
    """The network (or instances file) does not exist: the error names the output path,
    so the path was checked before anything was loaded."""
    (tmp_path / "file.txt").write_text("x")
    line = one_line_error(capsys, main(make_command(tmp_path, str(tmp_path / "no-net.npz"))),
                          2, option)
    assert "no-net" not in line and "no-such" not in line


def test_a_failed_write_is_rescued_in_the_current_directory(tmp_path, capsys, monkeypatch):
    target = tmp_path / "out.npz"

    def refusing(original):
        def save(self, path):
            if str(path) == str(target):
                raise PermissionError(13, "Permission denied", str(path))
            original(self, path)
        return save

    for complex_class in (RegionComplex, StreamedComplex):  # in memory, or streamed to disk
        monkeypatch.setattr(complex_class, "save", refusing(complex_class.save))
    monkeypatch.chdir(tmp_path)
    status = main(["regions", MOONS, *BOX, "-o", str(target)])
    out = capsys.readouterr()
    assert status == 2 and "regions: 256" in out.out
    line = out.err.strip()
    assert len(line.splitlines()) == 1 and "Permission denied" in line
    rescued = list(tmp_path.glob("polyrelu-rescued-*-out.npz"))
    assert len(rescued) == 1 and str(rescued[0]) in line and f"saved: {rescued[0]}" in out.out
    reference = enumerate_regions(load_network(MOONS), Domain.box([-2, -1.5], [3, 2]))
    assert_same_complex(reference, RegionComplex.load(rescued[0]))


def test_slice_picture_without_matplotlib_is_refused_before_the_work(capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    # the network does not exist: the message about matplotlib comes before loading it
    one_line_error(capsys, main(["slice", "no-net.npz", *BOX, "-o", "pic.png"]), 2,
                   "polyrelu[plots]")


def test_verify_without_onnxruntime_says_skipped(acasxu_dir, capsys, monkeypatch):
    def missing(*args):
        raise ModuleNotFoundError("No module named 'onnxruntime'")

    monkeypatch.setattr("polyrelu.cli.verify.check_counterexample_onnx", missing)
    net = acasxu_dir / "ACASXU_run2a_2_1_batch_2000.onnx"
    assert main(["verify", str(net), str(acasxu_dir / "prop_2.vnnlib")]) == 0
    out = capsys.readouterr().out
    assert "result: violated" in out and "onnxruntime_check: skipped (install" in out


# ------------------------------------------------------------------- verify-instances identity

def test_instances_are_identified_by_path_and_hash(tmp_path, capsys):
    """Two networks named perturbations_0.npz in different folders: both are run (the
    second was skipped as "done" when instances were identified by file name)."""
    rng = np.random.default_rng(3)
    for folder, scale in (("a", 1.0), ("b", -1.0)):
        (tmp_path / folder).mkdir()
        weights, biases = random_network((2, 6, 1), rng)
        np.savez(tmp_path / folder / "perturbations_0.npz",
                 **{f"W{i}": w * scale for i, w in enumerate(weights)},
                 **{f"b{i}": b for i, b in enumerate(biases)})
    prop_file(tmp_path / "p.vnnlib")
    instances = tmp_path / "instances.csv"
    instances.write_text("a/perturbations_0.npz,p.vnnlib,10\nb/perturbations_0.npz,p.vnnlib,10\n")
    results = tmp_path / "results.csv"
    assert main(["verify-instances", str(instances), "-o", str(results), "--no-progress"]) == 0
    rows = list(csv.DictReader(open(results)))
    assert [r["network_path"] for r in rows] == [
        str((tmp_path / f / "perturbations_0.npz").resolve()) for f in "ab"]
    assert rows[0]["network_sha256"] != rows[1]["network_sha256"]
    # a rerun skips both; an edited network is a new instance
    assert main(["verify-instances", str(instances), "-o", str(results), "--no-progress"]) == 0
    assert len(list(csv.DictReader(open(results)))) == 2
    shutil.copy(tmp_path / "a" / "perturbations_0.npz", tmp_path / "b" / "perturbations_0.npz")
    assert main(["verify-instances", str(instances), "-o", str(results), "--no-progress"]) == 0
    assert len(list(csv.DictReader(open(results)))) == 3
    capsys.readouterr()
