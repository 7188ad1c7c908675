"""The attack before the proof (verification/falsify.py): a counterexample hidden in a
region of radius 1e-6 in 20 dimensions, every point it proposes checked by an independent
forward pass, and verify with the attack against a brute-force oracle (all patterns, one
scipy LP each) on random networks with up to 20 inputs."""

import numpy as np
import pytest

from oracles import random_network
from polyrelu import Network
from polyrelu.deadline import Deadline
from polyrelu.geometry.lp import LPSolver
from polyrelu.verification import search as search_module
from polyrelu.verification import verify
from polyrelu.verification.counterexample import check_counterexample_exact
from polyrelu.verification.falsify import attack, inner_box, input_gradients
from polyrelu.verification.vnnlib import read_vnnlib
from tests.verification.test_verify import oracle_violated, property_text


def plain_forward(weights, biases, x):
    """The network's output by a plain loop (not polyrelu's forward pass)."""
    h = np.asarray(x, dtype=float)
    for w, b in zip(weights[:-1], biases[:-1]):
        h = np.maximum(np.asarray(w) @ h + b, 0.0)
    return np.asarray(weights[-1]) @ h + biases[-1]


def hidden_bump(d, eps, centre):
    """``y = relu(eps - |x - c|_1) - 0.001 |x - c|_1``: ``y >= eps / 2`` only where
    ``|x - c|_1 <= eps / 2.002``, inside the region ``|x - c|_1 < eps`` (radius about
    ``eps / sqrt(d)``); outside, the slope ``0.001`` leads towards ``c``, but sign steps
    of the gradient phase stop far coarser than ``eps``."""
    first = np.vstack([np.eye(d), -np.eye(d)])
    bias1 = np.concatenate([-centre, centre])
    second = np.vstack([-np.ones(2 * d), np.ones(2 * d)])
    weights = [first, second, np.array([[1.0, -0.001]])]
    biases = [bias1, np.array([eps, 0.0]), np.array([0.0])]
    return weights, biases


def test_counterexample_in_a_region_of_radius_1e_6_is_found():
    d, eps = 20, 1e-6
    rng = np.random.default_rng(4)
    centre = rng.uniform(-0.7, 0.7, size=d)
    weights, biases = hidden_bump(d, eps, centre)
    net = Network(weights, biases)
    prop = read_vnnlib(property_text(-np.ones(d), np.ones(d), [[(">=", "Y_0", eps / 2)]], 1))
    result = verify(net, prop, timeout=60)
    assert result.status == "violated"
    x = result.counterexample.x
    assert np.all(np.abs(x) <= 1) and plain_forward(weights, biases, x)[0] >= eps / 2
    assert np.abs(x - centre).sum() <= eps / 2
    assert check_counterexample_exact(net, prop.cases[0], 0, result.counterexample.x_exact)
    assert result.stats["falsify_seconds"] < 2.0


def test_the_tiny_region_escapes_the_proof_search_alone(monkeypatch):
    """Without the attack, bisecting 20 inputs does not reach the region in 2 s: the
    attack is what finds it (the test above)."""
    d, eps = 20, 1e-6
    centre = np.random.default_rng(4).uniform(-0.7, 0.7, size=d)
    net = Network(*hidden_bump(d, eps, centre))
    prop = read_vnnlib(property_text(-np.ones(d), np.ones(d), [[(">=", "Y_0", eps / 2)]], 1))
    monkeypatch.setattr(search_module, "FALSIFY_SHARE", 0.0)
    assert verify(net, prop, timeout=2).status == "timeout"


def test_gradients_match_finite_differences_on_the_region():
    """Inside a region the network is affine: the gradient equals the difference quotient
    (a step small enough not to cross a kink, checked by the pattern)."""
    rng = np.random.default_rng(2)
    weights, biases = random_network([6, 8, 7, 3], rng)
    net = Network(weights, biases)
    x = rng.uniform(-1, 1, size=(5, 6))
    directions = rng.normal(size=(5, 3))
    gradient = input_gradients(net, x, directions)
    for i in range(5):
        for j in range(6):
            step = np.zeros(6)
            step[j] = 1e-7
            assert np.array_equal(net.activation_pattern(x[i] + step), net.activation_pattern(x[i]))
            quotient = directions[i] @ (plain_forward(weights, biases, x[i] + step)
                                        - plain_forward(weights, biases, x[i])) / 1e-7
            assert abs(quotient - gradient[i, j]) <= 1e-5 * (1 + abs(gradient[i, j]))


def random_case(d, rng, quantile):
    """A random net with ``d`` inputs and the property ``y_0 >= t`` on [-1, 1]^d, with
    ``t`` a sampled quantile of ``y_0`` (above 1: likely to hold)."""
    weights, biases = random_network([d, 5, 3, 2], rng)
    net = Network(weights, biases)
    samples = net.forward(rng.uniform(-1, 1, size=(4000, d)))[:, 0]
    t = float(np.quantile(samples, min(quantile, 1.0)) + max(quantile - 1.0, 0.0))
    prop = read_vnnlib(property_text(-np.ones(d), np.ones(d), [[(">=", "Y_0", t)]], 2))
    return weights, biases, net, prop, t


@pytest.mark.parametrize("d", [2, 8, 20])
def test_every_attack_point_is_a_counterexample(d):
    """Every point the attack yields (all rounds' worth, not only the first) lies in the
    box and maps into the unsafe set, by an independent forward pass."""
    rng = np.random.default_rng(d)
    yielded = 0
    for _ in range(4):
        weights, biases, net, prop, t = random_case(d, rng, 0.99)
        case = prop.cases[0]
        lower, upper = inner_box(case)
        for candidate in attack(net, case, LPSolver(), Deadline(5.0)):
            assert np.all(candidate.x >= lower) and np.all(candidate.x <= upper)
            assert plain_forward(weights, biases, candidate.x)[0] >= t - 1e-12 * (1 + abs(t))
            yielded += 1
    assert yielded > 0


def agree_with_brute_force(dims, trials, seed):
    """verify (attack first) on random nets against the brute-force oracle: the answer,
    and how many robustly violated cases the attack alone decided."""
    rng = np.random.default_rng(seed)
    by_attack = violated = 0
    for trial in range(trials):
        d = dims[trial % len(dims)]
        quantile = [0.95, 0.999, 1.05][trial % 3]
        weights, biases, net, prop, t = random_case(d, rng, quantile)
        margin = oracle_violated(weights, biases, -np.ones(d), np.ones(d),
                                 (np.array([[-1.0, 0.0]]), np.array([-t])))
        if abs(margin) < 1e-7:
            continue  # too close to call for a float oracle
        result = verify(net, prop, timeout=120)
        assert result.status == ("violated" if margin > 0 else "holds"), (trial, d, margin)
        if result.status == "violated":
            violated += 1
            by_attack += result.stats["boxes"] == 0
            assert plain_forward(weights, biases, result.counterexample.x)[0] >= t
    return by_attack, violated


def test_verify_with_the_attack_agrees_with_brute_force_up_to_20_inputs():
    by_attack, violated = agree_with_brute_force([3, 10, 20], 9, seed=11)
    assert violated >= 3 and by_attack >= violated - 1


@pytest.mark.slow
def test_verify_with_the_attack_agrees_with_brute_force_many_nets():
    by_attack, violated = agree_with_brute_force([2, 5, 12, 16, 20], 45, seed=12)
    assert violated >= 15 and by_attack >= 0.8 * violated
