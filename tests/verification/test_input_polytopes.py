"""Input constraints that mix variables (a general input polytope, and constraints
mixing inputs with outputs): read as rows over (y, x), searched on the network extended
by its inputs, certificates re-derived by the checker from the original network;
random nets against a brute-force oracle (all patterns, one scipy LP each)."""

import dataclasses

import numpy as np
import pytest
from scipy.optimize import linprog

from oracles import brute_force_regions, pattern_polytope, random_network
from polyrelu import Network
from polyrelu.verification import check_certificate, verify
from polyrelu.verification.certificate import CertificateError
from polyrelu.verification.counterexample import check_counterexample_exact
from polyrelu.verification.vnnlib import read_vnnlib


def polytope_property(d, rows, threshold):
    """Box [-1, 1]^d, the input rows ``(coefficients, rhs)`` as ``a x <= rhs``, and
    ``y_0 >= threshold``."""
    lines = [f"(declare-const X_{i} Real)" for i in range(d)]
    lines += ["(declare-const Y_0 Real)", "(declare-const Y_1 Real)"]
    lines += [f"(assert (>= X_{i} -1)) (assert (<= X_{i} 1))" for i in range(d)]
    for a, rhs in rows:
        terms = " ".join(f"(* {float(c)!r} X_{i})" for i, c in enumerate(a))
        lines.append(f"(assert (<= (+ {terms}) {float(rhs)!r}))")
    lines.append(f"(assert (>= Y_0 {float(threshold)!r}))")
    return read_vnnlib("\n".join(lines))


def oracle_margin(weights, biases, d, rows, threshold):
    """max over regions of max t with region, a x + t <= rhs, -y_0 + t <= -threshold
    (violated iff > 0), independent of polyrelu."""
    lower, upper = -np.ones(d), np.ones(d)
    best = -np.inf
    n = sum(len(b) for b in biases[:-1])
    for key in brute_force_regions(weights, biases, lower, upper, 1e-9):
        pattern = np.unpackbits(np.frombuffer(key, np.uint8), count=n).astype(bool)
        A, b, (W, c) = pattern_polytope(weights, biases, pattern, lower, upper)
        extra_A = np.vstack([np.array([a for a, _ in rows]), -W[:1]])
        extra_b = np.concatenate([[rhs for _, rhs in rows], [-threshold + c[0]]])
        A_all = np.vstack([np.hstack([A, np.zeros((len(A), 1))]),
                           np.hstack([extra_A, np.ones((len(extra_A), 1))])])
        cost = np.zeros(d + 1)
        cost[-1] = -1
        res = linprog(cost, A_ub=A_all, b_ub=np.concatenate([b, extra_b]),
                      bounds=[(None, None)] * (d + 1), method="highs")
        if res.status == 0:
            best = max(best, -res.fun)
    return best


def test_mixed_rows_are_read_over_outputs_then_inputs():
    prop = read_vnnlib("(declare-const X_0 Real) (declare-const X_1 Real) "
                       "(declare-const Y_0 Real) (assert (>= X_0 0)) (assert (<= X_0 1)) "
                       "(assert (>= X_1 0)) (assert (<= X_1 1)) "
                       "(assert (<= (+ X_0 X_1) 0.5)) (assert (<= X_0 Y_0))")
    assert prop.input_rows and prop.output_dim == 1
    np.testing.assert_array_equal(prop.cases[0].unsafe[0].C, [[0, 1, 1], [-1, 1, 0]])
    assert prop.cases[0].unsafe[0].d_exact == (0.5, 0)


@pytest.mark.parametrize("trials", [8, pytest.param(16, marks=pytest.mark.slow)])
def test_random_nets_with_input_polytopes_agree_with_brute_force(trials):
    rng = np.random.default_rng(21)
    seen = {"holds": 0, "violated": 0}
    for trial in range(trials):
        d = [2, 3, 5][trial % 3]
        weights, biases = random_network([d, 5, 4, 2], rng)
        net = Network(weights, biases)
        rows = [(rng.normal(size=d), float(rng.uniform(-0.5, 0.5))) for _ in range(2)]
        x = rng.uniform(-1, 1, size=(4000, d))
        inside = np.all(np.array([x @ a <= rhs for a, rhs in rows]), axis=0)
        if not inside.any():
            continue
        samples = net.forward(x[inside])[:, 0]
        threshold = float(np.quantile(samples, [0.9, 1.0][trial % 2]) + 0.02 * (trial % 2))
        margin = oracle_margin(weights, biases, d, rows, threshold)
        if abs(margin) < 1e-7:
            continue
        prop = polytope_property(d, rows, threshold)
        result = verify(net, prop, timeout=60)
        assert result.status == ("violated" if margin > 0 else "holds"), (trial, margin)
        seen[result.status] += 1
        if result.status == "violated":
            cex = result.counterexample
            assert all(a @ cex.x <= rhs + 1e-12 for a, rhs in rows)
            assert net.forward(cex.x)[0, 0] >= threshold
            assert check_counterexample_exact(net, prop.cases[0], 0, cex.x_exact)
        else:
            check_certificate(net, prop, result.certificate)
    assert min(seen.values()) >= trials // 5, seen


def holding_case():
    """A net and an input-polytope property that holds only thanks to the polytope (the
    half-plane cuts off the box's maximiser of y_0)."""
    rng = np.random.default_rng(8)
    while True:
        weights, biases = random_network([2, 6, 2], rng)
        net = Network(weights, biases)
        x = rng.uniform(-1, 1, size=(20000, 2))
        y = net.forward(x)[:, 0]
        best = x[np.argmax(y)]
        a = best / np.linalg.norm(best)
        rows = [(a, float(a @ best) - 0.8)]
        inside = x @ a <= rows[0][1]
        threshold = float(y[inside].max() + 0.05)
        if y.max() > threshold + 0.05:
            return net, rows, threshold


def test_the_checker_rederives_the_extended_network_and_rejects_forgeries():
    """The certificate names the extended network; the checker rebuilds it from the
    original network and the property: the same certificate checked against the property
    without its input row, or with its multipliers changed, is rejected."""
    net, rows, threshold = holding_case()
    prop = polytope_property(2, rows, threshold)
    result = verify(net, prop, timeout=60)
    assert result.status == "holds"
    check_certificate(net, prop, result.certificate)
    with pytest.raises(CertificateError):
        check_certificate(net, polytope_property(2, [], threshold), result.certificate)
    for i, piece in enumerate(result.certificate.pieces):
        lam = getattr(piece, "multipliers", None)
        if lam is None:
            continue
        forged = [np.zeros_like(np.asarray(m, dtype=float)) for m in lam]
        pieces = list(result.certificate.pieces)
        pieces[i] = dataclasses.replace(piece, multipliers=tuple(forged))
        with pytest.raises(CertificateError):
            check_certificate(net, prop, dataclasses.replace(result.certificate,
                                                             pieces=pieces))
        break
