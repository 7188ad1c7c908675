"""Verification on general networks (LeakyReLU, Abs, Clip, residual additions: ReLU and
linear units) against an independent oracle: every activation region enumerated by brute
force (tests/oracles.py ``general_brute_force``, ``general_rows``), its output map composed
by loops over the layers, and its intersection with the unsafe set decided by a scipy LP.
Every "holds" certificate passes the checker; counterexamples land in the unsafe set."""

import numpy as np
import pytest
from networks import mixed_network, residual_pool_network
from scipy.optimize import linprog

from oracles import general_brute_force, general_forward, general_rows
from polyrelu.network.lowering import GraphBuilder
from polyrelu.verification.checked import verify as checked_verify
from polyrelu.verification.checker import check_certificate
from polyrelu.verification.search import verify
from polyrelu.verification.vnnlib import read_vnnlib
from tests.regions.test_splitting_general import conv_pool_network

MARGIN = 1e-4  # the oracle decides only instances whose unsafe slack is at least this


def leaky_clip_abs(seed, d):
    """Dense, then LeakyReLU, Clip and Abs units, a ReLU layer added to the input
    (residual), and two outputs."""
    rng = np.random.default_rng(seed)
    builder = GraphBuilder((d,))
    x = builder.input
    t = builder.linear(x, rng.normal(size=(5, d)), rng.normal(size=5) * 0.3)
    mixed = builder.stack([builder.leaky_relu(builder.take(t, [0, 1, 2]), 0.2),
                           builder.clip(builder.take(t, [3]), -0.3, 0.4),
                           builder.abs(builder.take(t, [4]))])
    s = builder.linear(mixed, rng.normal(size=(d, 5)), rng.normal(size=d) * 0.3)
    y = builder.add(x, builder.relu(s))
    return builder.network(builder.linear(y, rng.normal(size=(2, d))))


def deep_residual(seed, d):
    """Two Clip layers with the input carried past both (linear units in every layer)."""
    rng = np.random.default_rng(seed)
    builder = GraphBuilder((d,))
    x = builder.input
    h = builder.clip(builder.linear(x, rng.normal(size=(4, d)), rng.normal(size=4) * 0.3),
                     -0.5, 0.5)
    h = builder.leaky_relu(builder.linear(h, rng.normal(size=(3, 4)), rng.normal(size=3) * 0.3),
                           0.1)
    y = builder.add(builder.linear(h, rng.normal(size=(d, 3))), builder.scale(x, 0.5))
    return builder.network(builder.linear(y, rng.normal(size=(2, d))))


def _output_map(network, pattern):
    """``(W, c)`` with ``f(x) = W x + c`` on the region of ``pattern``, by loops (ReLU and
    linear units, kept entries, each window's one-hot argmax)."""
    A, c, k = np.eye(network.input_dim), np.zeros(network.input_dim), 0
    for layer in network.layers[:-1]:
        zA, zc = layer.weight @ A, layer.weight @ c + layer.bias
        for i, unit in enumerate(layer.units):
            if unit == 1:
                if not pattern[k]:
                    zA[i], zc[i] = 0.0, 0.0
                k += 1
        rows = list(layer.keep)
        for window in layer.windows:
            rows.append(window[int(np.argmax(pattern[k:k + len(window)]))])
            k += len(window)
        A, c = zA[rows].reshape(len(rows), -1), zc[rows]
    last = network.layers[-1]
    return last.weight @ A, last.weight @ c + last.bias


def _property(d, m, rows, rhs):
    """Box [-1, 1]^d, unsafe ``rows @ y <= rhs`` over ``m`` outputs (each row ``+-e_i``, or
    ``(1, -1)`` with right-hand side 0)."""
    lines = [f"(declare-const X_{i} Real)" for i in range(d)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(m)]
    lines += [f"(assert (>= X_{i} -1)) (assert (<= X_{i} 1))" for i in range(d)]
    for row, r in zip(rows, rhs):
        if tuple(row) == (1.0, -1.0):
            lines.append("(assert (<= Y_0 Y_1))")
            continue
        i = int(np.flatnonzero(row)[0])
        relation, value = ("<=", r) if row[i] > 0 else (">=", -r)
        lines.append(f"(assert ({relation} Y_{i} {float(value)!r}))")
    return read_vnnlib("\n".join(lines))


def _oracle(network, regions, rows, rhs):
    """The largest slack ``s`` with ``rows @ f(x) + s <= rhs`` at some x of some region
    (> 0: violated), one LP per region."""
    d = network.input_dim
    best = -np.inf
    for packed in regions:
        pattern = np.unpackbits(np.frombuffer(packed, np.uint8), count=network.num_hidden)
        A, b, _ = general_rows(network, pattern.astype(bool))
        W, c = _output_map(network, pattern.astype(bool))
        unsafe = np.asarray(rows) @ W
        A_ub = np.vstack([np.array(A).reshape(-1, d), unsafe])
        A_ub = np.hstack([A_ub, np.r_[np.zeros(len(A)), np.ones(len(rhs))][:, None]])
        b_ub = np.concatenate([b, np.asarray(rhs) - np.asarray(rows) @ c])
        result = linprog(np.r_[np.zeros(d), -1.0], A_ub=A_ub, b_ub=b_ub,
                         bounds=[(-1, 1)] * d + [(None, 10.0)], method="highs")
        if result.status == 0:
            best = max(best, -result.fun)
    return best


def _instances(network, seed):
    """Unsafe polytopes from quantiles of sampled outputs (some met, some not)."""
    rng = np.random.default_rng(seed)
    y = network.forward(rng.uniform(-1, 1, size=(3000, network.input_dim)))
    if network.output_dim == 1:
        return [([(-1.0,)], [-float(np.quantile(y[:, 0], q)) - extra])
                for q, extra in ((0.5, 0.0), (0.9, 0.0), (0.999, 0.0), (1.0, 0.2))]
    out = []
    for q0, q1 in ((0.9, 0.5), (0.999, 0.2), (1.0, 0.0), (0.6, 0.9)):
        t0 = np.quantile(y[:, 0], q0) + (0.2 if q0 == 1.0 else 0.0)
        t1 = np.quantile(y[:, 1], q1)
        out.append(([(-1.0, 0.0), (0.0, 1.0)], [-t0, t1]))  # Y_0 >= t0 and Y_1 <= t1
    out.append(([(1.0, -1.0), (-1.0, 0.0)], [0.0, -float(np.max(y[:, 0])) - 0.1]))
    out.append(([(-1.0, 0.0)], [-float(np.quantile(y[:, 0], 0.5))]))
    return out


def _check_against_the_oracle(network, seed, checked=False):
    """Each instance the oracle decides by a margin: the search's answer equals it, and a
    "holds" certificate passes the checker. With ``checked``, the public (checked)
    ``verify`` may instead answer "unknown" when the checker cannot re-prove a holding
    property (see :func:`test_verify_with_max_windows_equals_the_region_oracle`).
    Returns the answers."""
    d = network.input_dim
    regions = general_brute_force(network, -np.ones(d), np.ones(d), 1e-7)
    answers = []
    for rows, rhs in _instances(network, seed):
        slack = _oracle(network, regions, rows, rhs)
        if abs(slack) < MARGIN:
            continue
        prop = _property(d, network.output_dim, rows, rhs)
        threshold = 1000 if seed else 10
        result = (checked_verify if checked else verify)(network, prop,
                                                         exact_threshold=threshold)
        expected = "violated" if slack > 0 else "holds"
        answers.append(result.status)
        if checked and result.status == "unknown" and expected == "holds":
            assert "certificate_rejected" in result.stats
            continue
        assert result.status == expected, (slack, result.stats)
        if expected == "holds":
            check_certificate(network, prop, result.certificate)
        else:
            x = result.counterexample.x
            y, _ = general_forward(network, x)
            assert np.all(np.abs(x) <= 1) and np.all(np.array(rows) @ y <= np.array(rhs) + 1e-9)
    return answers


@pytest.mark.parametrize("build", [leaky_clip_abs, deep_residual])
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_verify_equals_the_region_oracle(build, d, seed):
    network = build(seed, d)
    assert not network.is_relu_mlp
    assert set(_check_against_the_oracle(network, seed)) == {"holds", "violated"}


WINDOWED = {"mixed": lambda seed: mixed_network(seed, d=2), "pool": residual_pool_network,
            "conv": lambda seed: conv_pool_network(seed, 2, channels=2)}


@pytest.mark.parametrize("name", [pytest.param("mixed", marks=pytest.mark.slow),  # 70 s
                                  pytest.param("conv", marks=pytest.mark.slow), "pool"])
def test_verify_with_max_windows_equals_the_region_oracle(name):
    """Max pooling, verified on the exact rewrite without windows (the oracle enumerates
    the original network's regions, windows and all). The checker re-proves most holding
    properties; where a node's stability proof is degenerate (a unit of the rewrite's
    max tree whose maximum over the node is exactly 0, e.g. the difference of two
    convolution outputs with the same bias at the origin) it cannot, and the checked
    answer is "unknown", never a wrong one."""
    answers = []
    for seed in range(3):
        network = WINDOWED[name](seed)
        assert network.window_pairs.size
        answers += _check_against_the_oracle(network, seed, checked=True)
    assert {"holds", "violated"} <= set(answers)
    assert answers.count("unknown") <= len(answers) // 4, answers
