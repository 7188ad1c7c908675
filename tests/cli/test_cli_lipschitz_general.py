"""``polyrelu lipschitz`` on a general network saved as .npz.

The regions come from the LP brute force (tests/analysis/general_complex.py) in place of
the walk, whose general-network support is tested with the walk: this checks the rest of
the command (certificate re-check, baselines, layer norms) on such a network.
"""

import importlib
import json
import sys
from pathlib import Path

import pytest
from networks import residual_pool_network

from polyrelu.cli import main
from polyrelu.network.loaders import save_npz

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))
from general_complex import brute_complex  # noqa: E402


@pytest.fixture
def general_file(tmp_path, monkeypatch):
    module = importlib.import_module("polyrelu.analysis.lipschitz")
    monkeypatch.setattr(module, "enumerate_regions",
                        lambda network, domain, **_: brute_complex(network, domain))
    path = tmp_path / "general.npz"
    save_npz(residual_pool_network(0), path)
    return str(path)


@pytest.mark.parametrize("norm", ["1", "2", "inf"])
def test_lipschitz_of_a_general_network(general_file, capsys, norm):
    assert main(["lipschitz", general_file, "--box", "-1,-1", "1,1", "--norm", norm,
                 "--json", "--enumerate"]) == 0
    result = json.loads(capsys.readouterr().out)
    network = residual_pool_network(0)
    low, high = result["exact_bracket"]
    assert low <= result["lipschitz"] <= high
    assert result["certificate_rechecked"] and result["all_bounds_consistent"]
    assert result["witness_pattern_exact"]
    rows = {row["method"]: row for row in result["table"]}
    assert rows["norm product"]["value"] >= result["lipschitz"]
    if norm == "2":
        assert "Linear + ReLU" in rows["LipSDP-neuron"]["note"]
    assert result["regions"] > 5 and network.input_dim == 2
    assert main(["lipschitz", general_file, "--box", "-1,-1", "1,1", "--norm", norm,
                 "--json"]) == 0
    searched = json.loads(capsys.readouterr().out)
    assert searched["lipschitz"] == pytest.approx(result["lipschitz"], rel=1e-9)
