"""``polyrelu lipschitz --certificate`` and ``polyrelu check-lipschitz-certificate``: the
saved certificate re-checks, its bracket holds the enumerated constant, a tampered or
foreign one exits with status 2 and one line."""

import json

import numpy as np
import pytest

from oracles import random_network
from polyrelu import Domain, Network, enumerate_regions
from polyrelu.analysis.lipschitz import operator_norms
from polyrelu.cli import main


@pytest.fixture
def net_file(tmp_path):
    weights, biases = random_network((2, 6, 5, 2), np.random.default_rng(61))
    path = tmp_path / "net.npz"
    np.savez(path, **{f"W{i}": w for i, w in enumerate(weights)},
             **{f"b{i}": b for i, b in enumerate(biases)})
    return path, Network(weights, biases)


@pytest.mark.parametrize("norm", ["1", "2", "inf"])
def test_save_then_check(net_file, tmp_path, capsys, norm):
    path, network = net_file
    certificate = tmp_path / "lipschitz.npz"
    assert main(["lipschitz", str(path), "--box", "-1", "1", "--norm", norm,
                 "--certificate", str(certificate), "--json"]) == 0
    searched = json.loads(capsys.readouterr().out)
    assert searched["certificate_file"] == str(certificate)
    assert main(["check-lipschitz-certificate", str(path), str(certificate), "--json",
                 "--norm", norm]) == 0
    checked = json.loads(capsys.readouterr().out)
    assert checked["certificate"] == "valid" and checked["norm"] == norm
    W = np.array([r.W_eff for r in enumerate_regions(network, Domain.box([-1, -1], [1, 1]))])
    expected = float(operator_norms(W, float(norm)).max())
    low, high = checked["lipschitz_bracket"]
    assert low <= expected * (1 + 1e-12) and expected <= high * (1 + 1e-12)


def test_a_foreign_or_damaged_certificate_exits_2(net_file, tmp_path, capsys):
    path, network = net_file
    certificate = tmp_path / "lipschitz.npz"
    assert main(["lipschitz", str(path), "--box", "-1", "1", "--certificate",
                 str(certificate)]) == 0
    capsys.readouterr()
    other = tmp_path / "other.npz"
    np.savez(other, **{f"W{i}": w * 1.5 for i, w in enumerate(network.weights)},
             **{f"b{i}": b for i, b in enumerate(network.biases)})
    assert main(["check-lipschitz-certificate", str(other), str(certificate)]) == 2
    assert "different network" in capsys.readouterr().err
    assert main(["check-lipschitz-certificate", str(path), str(certificate),
                 "--norm", "1"]) == 2
    assert "l2 norm" in capsys.readouterr().err
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(certificate.read_bytes()[:200])
    assert main(["check-lipschitz-certificate", str(path), str(damaged)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_the_certificate_path_is_checked_before_the_search(net_file, tmp_path, capsys):
    path, _ = net_file
    missing = tmp_path / "no-such-folder" / "c.npz"
    assert main(["lipschitz", str(path), "--box", "-1", "1", "--certificate",
                 str(missing)]) == 2
    assert "--certificate" in capsys.readouterr().err
    assert main(["lipschitz", str(path), "--box", "-1", "1", "--enumerate", "--certificate",
                 str(tmp_path / "c.npz")]) == 2
    assert "needs the search" in capsys.readouterr().err


def test_a_timeout_bracket_is_saved_and_checks(tmp_path, capsys):
    weights, biases = random_network((4, 12, 12, 12, 1), np.random.default_rng(62))
    path = tmp_path / "deep.npz"
    np.savez(path, **{f"W{i}": w for i, w in enumerate(weights)},
             **{f"b{i}": b for i, b in enumerate(biases)})
    certificate = tmp_path / "bracket.npz"
    assert main(["lipschitz", str(path), "--box", "-1", "1", "--timeout", "1e-6",
                 "--certificate", str(certificate), "--json"]) == 3  # partial results
    partial = json.loads(capsys.readouterr().out)
    assert partial["partial"] and partial["certificate_file"] == str(certificate)
    assert main(["check-lipschitz-certificate", str(path), str(certificate), "--json"]) == 0
    checked = json.loads(capsys.readouterr().out)
    (low, high), (found, bound) = checked["lipschitz_bracket"], partial["lipschitz_bracket"]
    assert high == bound and found * (1 - 1e-12) <= low <= found
