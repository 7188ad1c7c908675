"""The spectrum and energy commands: closed forms through the command line, clear errors."""

import json

import numpy as np
import pytest

from polyrelu.cli import main


def _save(path, weights, biases):
    np.savez(path, **{f"W{i}": np.array(w, float) for i, w in enumerate(weights)},
             **{f"b{i}": np.array(b, float) for i, b in enumerate(biases)})
    return str(path)


@pytest.fixture
def relu_file(tmp_path):
    return _save(tmp_path / "relu.npz", [[[1.0]], [[1.0]]], [[0.0], [0.0]])


def _lines(capsys):
    return dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())


def test_spectrum_of_relu_of_cosine(relu_file, capsys):
    assert main(["spectrum", relu_file, "--curve", "0", "1", "0", "--harmonics", "4"]) == 0
    lines = _lines(capsys)
    assert float(lines["dc"]) == pytest.approx(1 / np.pi, abs=1e-15)
    assert float(lines["harmonic_1"]) == pytest.approx(0.5, abs=1e-15)
    assert float(lines["harmonic_2"]) == pytest.approx(2 / (3 * np.pi), abs=1e-15)
    assert float(lines["harmonic_3"]) < 1e-15 and int(lines["pieces"]) == 3


def test_spectrum_several_outputs_and_a_segment(tmp_path, capsys):
    # outputs ReLU(x1) and |x2| along the segment from (-1, -1) to (1, 1): means 1/4 and 1/2
    net = _save(tmp_path / "two.npz", [[[1, 0], [0, 1], [0, -1]], [[1, 0, 0], [0, 1, 1]]],
                [[0, 0, 0], [0, 0]])
    assert main(["spectrum", net, "--segment", "-1", "1", "--harmonics", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["output_0_dc"] == pytest.approx(0.25, abs=1e-15)
    assert result["output_1_dc"] == pytest.approx(0.5, abs=1e-15)
    assert result["period"] == 1.0 and "output_1_harmonic_1" in result


def test_energy_command_witness_and_certificate(tmp_path, relu_file, capsys):
    assert main(["energy", relu_file, "--box", "-1", "2", "--extremes", "--signal", "-3"]) == 0
    lines = _lines(capsys)
    assert lines["null_set"] == "non-trivial" and float(lines["witness"][1:-1]) < 0
    assert float(lines["energy_min"]) == pytest.approx(0, abs=1e-7)
    assert float(lines["energy_max"]) == pytest.approx(4.0, rel=1e-12)
    assert lines["layer_energy_discarded"] == "[9.0]"
    absolute = _save(tmp_path / "abs.npz", [[[1.0], [-1.0]], [[1.0, 1.0]]], [[0, 0], [0]])
    assert main(["energy", absolute, "--box", "-1", "2"]) == 0
    assert _lines(capsys)["null_set"] == "trivial"


@pytest.mark.parametrize("argv,message", [
    (["--curve", "0", "1,2", "0"], "--curve U has 2 values but the network has 1 inputs"),
    (["--segment", "a", "1"], "--segment A must be numbers"),
    (["--curve", "0", "1", "0", "--harmonics", "-2"], "non-negative integer"),
    (["--curve", "0", "1", "0", "--layer", "4"], "hidden layer index 0..0, got 4"),
])
def test_spectrum_bad_input(relu_file, capsys, argv, message):
    assert main(["spectrum", relu_file, *argv]) == 2
    assert message in capsys.readouterr().err
