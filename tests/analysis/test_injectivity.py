"""Exact injectivity of ReLU layers: known answers, a sampling oracle, witnesses, errors."""

import json

import numpy as np
import pytest

from polyrelu import Domain, Network, PolyreluError
from polyrelu.analysis.bias import frame_facets
from polyrelu.analysis.injectivity import is_injective, network_injectivity
from polyrelu.cli import main


def relu_layer(W, a, x):
    return np.maximum(np.atleast_2d(x) @ W.T - a, 0.0)


def assert_witness(W, a, domain, witness):
    x, y = witness
    assert np.linalg.norm(x - y) > 1e-6
    assert domain.contains(np.vstack([x, y]), tol=1e-9).all()
    np.testing.assert_allclose(relu_layer(W, a, x), relu_layer(W, a, y), atol=1e-9)


def sampled_collision(W, a, domain, rng, samples=1500):
    """Independent oracle: a pair x != y in K with equal outputs, or None.

    Samples x in K; for its strictly active set I, walks along each kernel
    direction v of W_I the segment {x + t v} inside {y in K : I(y) = I} (exact
    interval from the linear constraints). A segment of positive length is a
    collision: W_I v = 0 keeps the active outputs, the rest stay 0.
    """
    points = domain.sample(samples, rng)
    active = points @ W.T - a > 0
    for pattern in np.unique(active, axis=0):
        x = points[np.flatnonzero((active == pattern).all(axis=1))[0]]
        rows = W[pattern]
        _, sv, vt = np.linalg.svd(rows) if len(rows) else (None, np.zeros(0), np.eye(W.shape[1]))
        kernel = vt[int(np.sum(sv > 1e-9)):]
        for v in kernel:
            # constraints: A (x + t v) <= b, off-pattern rows w (x + t v) <= a
            G = np.vstack([domain.A, W[~pattern]]) @ v
            h = np.concatenate([domain.b - domain.A @ x, a[~pattern] - W[~pattern] @ x])
            hi = np.min(h[G > 1e-12] / G[G > 1e-12], initial=np.inf)
            lo = np.max(h[G < -1e-12] / G[G < -1e-12], initial=-np.inf)
            if hi - lo > 1e-6:
                t = hi if abs(hi) > abs(lo) else lo
                return x, x + t * v
    return None


def polygon(m):
    angles = 2 * np.pi * np.arange(m) / m
    return np.c_[np.cos(angles), np.sin(angles)]


def test_relu_pair_is_injective_without_the_frame_condition():
    r = is_injective([[1.0], [-1.0]], [0.0, 0.0], Domain.box([-2], [3]))
    assert r.injective and not r.frame_condition
    np.testing.assert_allclose(r.frame_point, [0.0], atol=1e-9)


@pytest.mark.parametrize("m", [3, 4, 5, 6, 8])
def test_regular_polygon_on_a_disc_box(m):
    # on the box [-1/sqrt 2, 1/sqrt 2]^2 inside the unit disc: injective iff the
    # threshold is <= r * min(cos(2 pi/m), 0) for a ball holding the box (sufficient),
    # and a positive threshold leaves an inactive neighbourhood of 0 (not injective)
    W = polygon(m)
    box = Domain.box([-0.5, -0.5], [0.5, 0.5])
    certified = np.sqrt(0.5) * min(np.cos(2 * np.pi / m), 0.0)
    assert is_injective(W, np.full(m, certified), box).injective
    r = is_injective(W, np.full(m, 0.05), box)
    assert not r.injective and r.witness_exact
    assert_witness(W, np.full(m, 0.05), box, r.witness)


def test_frame_not_surrounding_zero_is_refused_and_has_witnesses():
    W = np.array([[1.0, 0], [0, 1], [1 / np.sqrt(2), 1 / np.sqrt(2)]])
    with pytest.raises(PolyreluError, match="do not surround 0"):
        frame_facets(W)
    box = Domain.box([-1, -1], [1, 1])
    for a in (np.zeros(3), np.full(3, -0.5), np.array([-0.9, -0.1, -2.0])):
        r = is_injective(W, a, box)
        assert not r.injective and not r.frame_condition and r.witness_exact
        assert_witness(W, a, box, r.witness)


def random_instance(rng):
    n = int(rng.integers(1, 5))
    m = int(rng.integers(n, 3 * n + 2))
    W = rng.normal(size=(m, n))
    a = rng.normal(scale=0.7, size=m)
    if rng.random() < 0.5:
        lo = rng.uniform(-1.5, 0.0, n)
        return W, a, Domain.box(lo, lo + rng.uniform(0.3, 2.0, n))
    A = rng.normal(size=(n + 3, n))
    return W, a, Domain.polytope(np.vstack([A, np.eye(n), -np.eye(n)]),
                                 np.concatenate([rng.uniform(0.3, 1.0, n + 3), np.ones(2 * n)]))


def test_exact_decision_agrees_with_sampling_on_200_random_layers():
    rng = np.random.default_rng(7)
    verdicts = []
    for _ in range(200):
        W, a, domain = random_instance(rng)
        r = is_injective(W, a, domain)
        found = sampled_collision(W, a, domain, rng)
        if r.injective:
            assert found is None, "the oracle found a collision in a layer certified injective"
        else:
            assert_witness(W, a, domain, r.witness)
            assert not r.frame_condition
        if found is not None:
            assert_witness(W, a, domain, found)
        verdicts.append(r.injective)
    assert 40 < sum(verdicts) < 160  # both answers well represented


def test_frame_condition_implies_injective_and_agrees_with_sampled_ranks():
    rng = np.random.default_rng(3)
    for _ in range(40):
        W, a, domain = random_instance(rng)
        r = is_injective(W, a, domain)
        assert r.injective or not r.frame_condition
        points = domain.sample(2000, rng)
        ranks = [np.linalg.matrix_rank(W[p]) if p.any() else 0
                 for p in np.unique(points @ W.T - a > 0, axis=0)]
        if r.frame_condition:
            assert min(ranks) == W.shape[1]
        else:
            x = r.frame_point
            assert domain.contains(x, tol=1e-9).all()
            assert np.linalg.matrix_rank(W[x @ W.T - a > 1e-9]) < W.shape[1]


def test_pytorch_convention_is_the_negated_threshold():
    box = Domain.box([-1], [1])
    assert is_injective([[1.0], [-1.0]], [0.5, 0.5], box, convention="pytorch").injective
    assert not is_injective([[1.0], [-1.0]], [0.5, 0.5], box).injective


def test_bad_input_is_named():
    box = Domain.box([-1, -1], [1, 1])
    with pytest.raises(PolyreluError, match="convention"):
        is_injective(np.eye(2), [0, 0], box, convention="torch")
    with pytest.raises(PolyreluError, match="bias has shape"):
        is_injective(np.eye(2), [0, 0, 0], box)
    with pytest.raises(PolyreluError, match="dimension 2"):
        is_injective(np.ones((3, 3)), np.zeros(3), box)
    with pytest.raises(PolyreluError, match="non-finite"):
        is_injective([[np.nan, 1.0]], [0.0], box)


def test_network_first_failing_layer_and_witness():
    # layer 0 is always active (an injective affine map); layer 1 keeps relu(x_0), x_1 + 5
    W0, b0 = np.array([[1.0, 0], [0, 1], [-1, -1]]), np.full(3, 5.0)
    W1, b1 = np.array([[1.0, 0, 0], [0, 1, 0]]), np.array([-5.0, 0.0])
    W2, b2 = np.ones((1, 2)), np.zeros(1)
    box = Domain.box([-1, -1], [1, 1])
    r = network_injectivity(Network([W0, W1, W2], [b0, b1, b2]), box)
    assert not r.injective and r.layer == 1 and r.frame_condition
    x, y = r.witness
    assert box.contains(np.vstack([x, y]), tol=1e-9).all()
    h0 = np.maximum(np.vstack([x, y]) @ W0.T + b0, 0)
    assert np.linalg.norm(h0[0] - h0[1]) > 1e-6
    h1 = np.maximum(h0 @ W1.T + b1, 0)
    np.testing.assert_allclose(h1[0], h1[1], atol=1e-9)
    assert max(x[0], y[0]) <= 1e-9  # the collision lies where x_0 is cut off
    # with threshold 4 the first row is active on the whole image: injective
    assert network_injectivity(Network([W0, W1, W2], [b0, [-4.0, 0.0], b2]), box).injective


def test_network_layer_zero_matches_the_single_layer_decision():
    rng = np.random.default_rng(11)
    for _ in range(10):
        W0, b0 = rng.normal(size=(5, 2)), rng.normal(size=5)
        net = Network([W0, rng.normal(size=(1, 5))], [b0, np.zeros(1)])
        box = Domain.box([-1, -1], [1, 1])
        r = network_injectivity(net, box)
        assert r.injective == is_injective(W0, b0, box, convention="pytorch").injective


def test_cli_injectivity(tmp_path, capsys):
    path = tmp_path / "net.npz"
    np.savez(path, W0=np.array([[1.0], [-1.0]]), b0=np.array([-0.5, -0.5]),
             W1=np.ones((1, 2)), b1=np.zeros(1))
    assert main(["injectivity", str(path), "--layer", "0", "--box", "-1", "1"]) == 0
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert lines["injective"] == "no" and lines["frame_condition"] == "fails"
    x, y = json.loads(lines["witness_x"]), json.loads(lines["witness_y"])
    assert abs(x[0]) <= 0.5 + 1e-9 and abs(y[0]) <= 0.5 + 1e-9 and x != y
    assert lines["witness_exact"] == "True"
    assert main(["injectivity", str(path), "--box", "-1", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["injective"] == "no"
    assert main(["injectivity", str(path), "--layer", "3", "--box", "-1", "1"]) == 2
    assert "not a hidden layer" in capsys.readouterr().err


def test_sets_the_solver_cannot_decide_make_the_answer_undecided(monkeypatch):
    """An injective layer (relu(x + 2) on [-1, 1]^2: every unit active, an affine
    bijection) whose LPs all fail even after the solver's retries: the answer is
    'undecided' with the reason, never 'injective'; with a working solver, injective."""
    from polyrelu import SolverError
    from polyrelu.geometry.lp import LPSolver

    W, a = np.eye(2), np.array([-2.0, -2.0])
    box = Domain.box([-1, -1], [1, 1])
    assert is_injective(W, a, box).injective is True

    def fails(self, *args, **kwargs):
        raise SolverError("HiGHS could not solve an LP (statuses Unknown, after retrying)")

    monkeypatch.setattr(LPSolver, "maximize", fails)
    result = is_injective(W, a, box)
    assert result.injective is None and result.frame_condition is None
    assert result.undecided and "after retrying" in result.undecided[0]
