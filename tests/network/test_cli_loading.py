"""The loading options on the command line: --trust-pickle, --allow-extreme-numerics,
--max-parameters; refusals are one line with exit status 2 (issue 15)."""

import pickle
import warnings

import numpy as np
import pytest

from polyrelu.cli import main


@pytest.fixture
def mlp_joblib(tmp_path):
    joblib = pytest.importorskip("joblib")
    sklearn = pytest.importorskip("sklearn.neural_network")
    X = np.random.default_rng(0).normal(size=(40, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sklearn.MLPRegressor(hidden_layer_sizes=(4,), max_iter=20,
                                     random_state=0).fit(X, X[:, 0])
    path = tmp_path / "net.joblib"
    joblib.dump(model, path)
    return path


def _error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("polyrelu: error:") and "\n" not in err
    return err


def test_pickle_is_refused_then_trusted_with_a_warning(mlp_joblib, capsys):
    assert main(["regions", str(mlp_joblib), "--box", "-1", "1"]) == 2
    assert "--trust-pickle" in _error(capsys)
    assert main(["regions", str(mlp_joblib), "--box", "-1", "1", "--trust-pickle"]) == 0
    captured = capsys.readouterr()
    assert "regions:" in captured.out
    assert captured.err.strip().startswith("polyrelu: warning: unpickling")


def test_a_pickle_payload_never_runs_from_the_cli(tmp_path, capsys):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "net.pkl"
    path.write_bytes(pickle.dumps(Payload()))
    assert main(["injectivity", str(path), "--box", "0", "1"]) == 2
    assert not marker.exists()
    _error(capsys)


def test_a_tiny_box_is_refused_unless_allowed(tmp_path, capsys):
    path = tmp_path / "net.npz"
    np.savez(path, W0=np.array([[1.0, -1.0], [0.5, 2.0]]), b0=np.array([0.0, 1e-15]),
             W1=np.ones((1, 2)), b1=np.zeros(1))
    assert main(["regions", str(path), "--box", "0", "1e-14"]) == 2
    assert "resolvable scale" in _error(capsys)
    assert main(["regions", str(path), "--box", "0", "1e-14", "--allow-extreme-numerics"]) == 0


def test_huge_weights_are_refused_on_the_cli(tmp_path, capsys):
    path = tmp_path / "net.npz"
    np.savez(path, W0=np.full((3, 2), 1e150), b0=np.zeros(3), W1=np.full((3, 3), 1e150),
             b1=np.zeros(3), W2=np.ones((1, 3)), b2=np.zeros(1))
    assert main(["regions", str(path), "--box", "-1", "1"]) == 2
    assert "forward pass reaches magnitude" in _error(capsys)


def test_max_parameters_option(tmp_path, capsys):
    path = tmp_path / "net.npz"
    np.savez(path, W0=np.eye(2), b0=np.zeros(2), W1=np.ones((1, 2)), b1=np.zeros(1))
    assert main(["regions", str(path), "--box", "-1", "1", "--max-parameters", "8"]) == 2
    assert "--max-parameters" in _error(capsys)
    assert main(["regions", str(path), "--box", "-1", "1", "--max-parameters", "9"]) == 0
