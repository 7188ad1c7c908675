"""`polyrelu verify` and `polyrelu verify-instances` on ACAS Xu, checked with onnxruntime
directly; --jobs 2 closes the very same sub-boxes as one process."""

import csv

import numpy as np
import pytest

from polyrelu.cli import main
from polyrelu.network.loaders import load_network
from polyrelu.verification import verify
from polyrelu.verification.vnnlib import read_vnnlib


def onnx_net(acasxu_dir, name):
    return acasxu_dir / f"ACASXU_run2a_{name}_batch_2000.onnx"


def parse_output(text):
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def test_violated_writes_a_result_file_onnxruntime_accepts(acasxu_dir, tmp_path, capsys):
    import onnxruntime

    result = tmp_path / "out.txt"
    net = onnx_net(acasxu_dir, "2_1")
    assert main(["verify", str(net), str(acasxu_dir / "prop_2.vnnlib"),
                 "--result", str(result)]) == 0
    out = parse_output(capsys.readouterr().out)
    assert out["result"] == "violated" and out["onnxruntime_check"].startswith("passed")
    lines = result.read_text().split("\n")
    assert lines[0] == "sat"
    values = {}
    for line in lines[1:]:
        if line.strip():
            name, value = line.strip(" ()").split()
            values[name] = float(value)
    x = np.array([[values[f"X_{i}"] for i in range(5)]], dtype=np.float32)
    session = onnxruntime.InferenceSession(str(net), providers=["CPUExecutionProvider"])
    y = session.run(None, {session.get_inputs()[0].name: x.reshape(1, 1, 1, 5)})[0].ravel()
    # prop_2 is violated when Y_0 is the largest score; the file's Y values match onnxruntime
    assert y[0] >= y[1:].max() - 1e-5
    np.testing.assert_allclose([values[f"Y_{j}"] for j in range(5)], y, atol=1e-4)
    lower, upper = read_vnnlib(acasxu_dir / "prop_2.vnnlib").cases[0].lower, \
        read_vnnlib(acasxu_dir / "prop_2.vnnlib").cases[0].upper
    assert np.all(lower <= x.ravel()) and np.all(x.ravel() <= upper)


def test_holds_prints_a_checked_certificate(acasxu_dir, tmp_path, capsys):
    result = tmp_path / "out.txt"
    assert main(["verify", str(onnx_net(acasxu_dir, "1_1")), str(acasxu_dir / "prop_1.vnnlib"),
                 "--result", str(result)]) == 0
    out = parse_output(capsys.readouterr().out)
    assert out["result"] == "holds" and out["certificate"] == "checked"
    assert result.read_text() == "unsat\n"


def test_two_jobs_close_the_same_boxes(acasxu_dir):
    net = load_network(onnx_net(acasxu_dir, "1_1"))
    prop = read_vnnlib(acasxu_dir / "prop_1.vnnlib")
    one, two = verify(net, prop), verify(net, prop, jobs=2)
    assert one.status == two.status == "holds"
    assert sorted(p.path for p in one.certificate.pieces) == \
        sorted(p.path for p in two.certificate.pieces)


def test_instances_runner_writes_and_resumes(acasxu_dir, tmp_path, capsys):
    instances = tmp_path / "instances.csv"
    rows = [("ACASXU_run2a_1_1_batch_2000.onnx", "prop_1.vnnlib", 116),
            ("ACASXU_run2a_2_1_batch_2000.onnx", "prop_2.vnnlib", 116)]
    for name in {r[0] for r in rows} | {r[1] for r in rows}:
        (tmp_path / name).symlink_to(acasxu_dir / name)
    instances.write_text("".join(f"{a},{b},{t}\n" for a, b, t in rows))
    results = tmp_path / "results.csv"
    assert main(["verify-instances", str(instances), "-o", str(results), "--no-progress"]) == 0
    out = parse_output(capsys.readouterr().out)
    assert (out["holds"], out["violated"], out["decided"]) == ("1", "1", "2")
    written = list(csv.DictReader(open(results)))
    assert [(r["network"], r["result"], r["check"]) for r in written] == [
        (rows[0][0], "holds", "passed"), (rows[1][0], "violated", "passed")]
    # a rerun finds both instances done and verifies nothing again
    assert main(["verify-instances", str(instances), "-o", str(results), "--no-progress"]) == 0
    assert len(list(csv.DictReader(open(results)))) == 2


@pytest.mark.parametrize("lines, message", [
    ("a.onnx,b.vnnlib\n", "expected network,property,timeout"),
    ("a.onnx,b.vnnlib,soon\n", "timeout 'soon' is not a number"),
])
def test_bad_instances_file(tmp_path, capsys, lines, message):
    instances = tmp_path / "instances.csv"
    instances.write_text(lines)
    assert main(["verify-instances", str(instances), "-o", str(tmp_path / "r.csv")]) == 2
    assert message in capsys.readouterr().err


def test_property_of_the_wrong_size(acasxu_dir, tmp_path, capsys):
    prop = tmp_path / "p.vnnlib"
    prop.write_text("(declare-const X_0 Real) (declare-const Y_0 Real)"
                    "(assert (>= X_0 0)) (assert (<= X_0 1)) (assert (>= Y_0 1))")
    assert main(["verify", str(onnx_net(acasxu_dir, "1_1")), str(prop)]) == 2
    assert "1 inputs but the network has 5" in capsys.readouterr().err


def test_saved_certificate_is_rechecked_and_bound_to_its_network(tmp_path, capsys):
    from oracles import random_network
    from polyrelu import Network

    rng = np.random.default_rng(5)
    weights, biases = random_network([2, 8, 8, 8, 1], rng)
    net, other = tmp_path / "net.npz", tmp_path / "other.npz"
    for path, scale in ((net, 1.0), (other, 1.01)):
        np.savez(path, **{f"W{i}": w * scale for i, w in enumerate(weights)},
                 **{f"b{i}": b for i, b in enumerate(biases)})
    top = Network(weights, biases).forward(rng.uniform(-1, 1, size=(4000, 2))).max()
    prop = tmp_path / "p.vnnlib"
    prop.write_text("(declare-const X_0 Real) (declare-const X_1 Real) (declare-const Y_0 Real)"
                    "(assert (>= X_0 -1)) (assert (<= X_0 1)) (assert (>= X_1 -1))"
                    f"(assert (<= X_1 1)) (assert (>= Y_0 {float(top) + 0.3!r}))")
    cert = tmp_path / "cert.npz"
    assert main(["verify", str(net), str(prop), "--exact-threshold", "1000",
                 "--certificate", str(cert)]) == 0
    out = parse_output(capsys.readouterr().out)
    assert out["result"] == "holds" and int(out["star_pieces"]) > 0
    assert main(["check-certificate", str(net), str(prop), str(cert)]) == 0
    checked = parse_output(capsys.readouterr().out)
    assert checked["certificate"] == "valid"
    assert [checked[k] for k in ("bound_pieces", "star_pieces", "region_pieces")] == \
        [out[k] for k in ("bound_pieces", "star_pieces", "region_pieces")]
    assert main(["check-certificate", str(other), str(prop), str(cert)]) == 2
    assert "fingerprint" in capsys.readouterr().err
    (tmp_path / "junk.npz").write_bytes(b"not a certificate")
    assert main(["check-certificate", str(net), str(prop), str(tmp_path / "junk.npz")]) == 2
    assert "not a readable certificate file" in capsys.readouterr().err


def gzipped_copy(source, target):
    import gzip

    target.write_bytes(gzip.compress(source.read_bytes()))


ACAS_ROWS = [("ACASXU_run2a_1_7_batch_2000.onnx", "prop_3.vnnlib", 60),
             ("ACASXU_run2a_1_6_batch_2000.onnx", "prop_3.vnnlib", 60),
             ("ACASXU_run2a_2_1_batch_2000.onnx", "prop_2.vnnlib", 60),
             ("ACASXU_run2a_1_8_batch_2000.onnx", "prop_4.vnnlib", 60),
             ("ACASXU_run2a_2_4_batch_2000.onnx", "prop_3.vnnlib", 60)]


def results_without_times(path):
    """The rows of a results csv without their seconds (the rest must not depend on how
    the instances were scheduled)."""
    return [{k: v for k, v in row.items() if k != "seconds"}
            for row in csv.DictReader(open(path))]


def test_vnncomp_layout_reads_the_gzip_files(acasxu_dir, tmp_path, capsys):
    """An instances csv naming x.onnx and x.vnnlib where only x.onnx.gz and x.vnnlib.gz
    exist (the VNN-COMP benchmark repositories): the same answers as from the plain
    files, and the onnxruntime check runs on the decompressed model."""
    plain, zipped = tmp_path / "plain", tmp_path / "zipped"
    plain.mkdir(), zipped.mkdir()
    rows = ACAS_ROWS[:3]
    for name in {r[0] for r in rows} | {r[1] for r in rows}:
        (plain / name).symlink_to(acasxu_dir / name)
        gzipped_copy(acasxu_dir / name, zipped / (name + ".gz"))
    for folder in (plain, zipped):
        (folder / "instances.csv").write_text("".join(f"{a},{b},{t}\n" for a, b, t in rows))
        assert main(["verify-instances", str(folder / "instances.csv"), "-o",
                     str(folder / "results.csv"), "--no-progress"]) == 0
    capsys.readouterr()
    answers = [[(r["result"], r["check"]) for r in csv.DictReader(open(folder / "results.csv"))]
               for folder in (plain, zipped)]
    assert answers[0] == answers[1]
    assert ("violated", "passed") in answers[1] and ("holds", "passed") in answers[1]
    written = list(csv.DictReader(open(zipped / "results.csv")))
    assert all(r["network_path"].endswith(".onnx.gz") for r in written)


def test_verify_reads_a_gzipped_network_and_property(acasxu_dir, tmp_path, capsys):
    net, prop = tmp_path / "net.onnx.gz", tmp_path / "prop.vnnlib.gz"
    gzipped_copy(onnx_net(acasxu_dir, "2_1"), net)
    gzipped_copy(acasxu_dir / "prop_2.vnnlib", prop)
    assert main(["verify", str(net), str(prop), "--json"]) == 0
    out = capsys.readouterr().out
    assert '"result": "violated"' in out and '"onnxruntime_check": "passed' in out


def test_a_gzip_bomb_is_refused_in_one_line(acasxu_dir, tmp_path, capsys, monkeypatch):
    """A small gzip that decompresses beyond the limit: refused while decompressing, one
    line, exit 2 (the limit lowered to keep the test small)."""
    import gzip

    from polyrelu.network import loaders

    monkeypatch.setattr(loaders, "MAX_DECOMPRESSED_BYTES", 1 << 20)
    bomb = tmp_path / "bomb.onnx.gz"
    bomb.write_bytes(gzip.compress(bytes(8 << 20)))
    assert bomb.stat().st_size < 20_000
    prop = tmp_path / "p.vnnlib.gz"
    prop.write_bytes(gzip.compress(b"(declare-const X_0 Real)" + b" " * (8 << 20)))
    net, good_prop = onnx_net(acasxu_dir, "2_1"), acasxu_dir / "prop_2.vnnlib"
    for arguments in ([str(bomb), str(good_prop)], [str(net), str(prop)]):
        assert main(["verify", *arguments]) == 2
        err = capsys.readouterr().err.strip()
        assert "decompresses to more than 1048576 bytes" in err and len(err.splitlines()) == 1


def test_a_truncated_gzip_is_one_line(acasxu_dir, tmp_path, capsys):
    import gzip

    net = tmp_path / "net.onnx.gz"
    net.write_bytes(gzip.compress(onnx_net(acasxu_dir, "2_1").read_bytes())[:5000])
    assert main(["verify", str(net), str(acasxu_dir / "prop_2.vnnlib")]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot be decompressed" in err and len(err.splitlines()) == 1


def instances_csv(acasxu_dir, tmp_path, rows):
    """An instances csv of ``rows`` (network, property, limit) in ``tmp_path``, its files
    linked from the ACAS Xu data."""
    for name in {r[0] for r in rows} | {r[1] for r in rows}:
        (tmp_path / name).symlink_to(acasxu_dir / name)
    instances = tmp_path / "instances.csv"
    instances.write_text("".join(f"{a},{b},{t}\n" for a, b, t in rows))
    return instances


def assert_serial_rows(instances, tmp_path, rows, *options):
    """verify-instances with ``options`` writes a serial run's rows, in the csv's order."""
    serial, other = tmp_path / "serial.csv", tmp_path / "other.csv"
    assert main(["verify-instances", str(instances), "-o", str(serial), "--no-progress"]) == 0
    assert main(["verify-instances", str(instances), "-o", str(other), "--no-progress",
                 *options]) == 0
    assert results_without_times(serial) == results_without_times(other)
    assert [(r["network"], r["property"]) for r in results_without_times(other)] == \
        [(a, b) for a, b, _ in rows]


def test_instances_in_parallel_give_the_serial_results_in_order(acasxu_dir, tmp_path):
    """verify-instances --jobs 2 (two instances at a time, in worker processes): the same
    rows as one at a time, in the csv's order."""
    instances = instances_csv(acasxu_dir, tmp_path, ACAS_ROWS)
    assert_serial_rows(instances, tmp_path, ACAS_ROWS, "--jobs", "2")


def test_instances_in_parallel_each_honour_their_own_limit(acasxu_dir, tmp_path, capsys):
    """Two instances that run for minutes, 2 s each, two at a time: both rows say
    timeout within their own limit (plus the search's one-second grace)."""
    rows = [("ACASXU_run2a_1_1_batch_2000.onnx", "prop_6.vnnlib", 2),
            ("ACASXU_run2a_3_3_batch_2000.onnx", "prop_9.vnnlib", 2)]
    instances = instances_csv(acasxu_dir, tmp_path, rows)
    results = tmp_path / "results.csv"
    assert main(["verify-instances", str(instances), "-o", str(results), "--no-progress",
                 "--jobs", "2"]) == 0
    capsys.readouterr()
    written = list(csv.DictReader(open(results)))
    assert [r["result"] for r in written] == ["timeout", "timeout"]
    assert all(float(r["seconds"]) <= 3.5 for r in written)


def test_instances_on_a_dask_cluster_give_the_serial_results_in_order(acasxu_dir, tmp_path,
                                                                       capsys):
    """verify-instances --scheduler ADDRESS: the rows of a serial run, in the csv's order."""
    distributed = pytest.importorskip("dask.distributed")
    rows = ACAS_ROWS[:3]
    instances = instances_csv(acasxu_dir, tmp_path, rows)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        assert_serial_rows(instances, tmp_path, rows, "--scheduler", cluster.scheduler_address)
    capsys.readouterr()
    assert main(["verify-instances", str(instances), "-o", str(tmp_path / "x.csv"),
                 "--scheduler", "tcp://127.0.0.1:9", "--jobs", "2"]) == 2
    assert "exclude each other" in capsys.readouterr().err
