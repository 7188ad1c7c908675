"""Verification of VNN-LIB properties: known answers, a brute-force oracle, ACAS Xu,
counterexample re-checks and certificate checking (including corrupted ones)."""

import dataclasses

import numpy as np
import pytest
from scipy.optimize import linprog

from oracles import brute_force_regions, pattern_polytope, random_network
from polyrelu import Network, PolyreluError
from polyrelu.errors import SizeLimitError
from polyrelu.network.loaders import load_network, save_npz
from polyrelu.verification import check_certificate, verify
from polyrelu.verification.certificate import BoundPiece, RegionPiece, StarPiece
from polyrelu.verification.counterexample import (
    check_counterexample_exact,
    check_counterexample_onnx,
)
from polyrelu.verification.instances import run_instance
from polyrelu.verification.vnnlib import read_vnnlib


def property_text(lower, upper, disjuncts, outputs):
    """VNN-LIB text: input box, unsafe set = OR of ANDs of (op, output, number) triples."""
    lines = [f"(declare-const X_{i} Real)" for i in range(len(lower))]
    lines += [f"(declare-const Y_{j} Real)" for j in range(outputs)]
    lines += [f"(assert (>= X_{i} {float(lo)!r}))\n(assert (<= X_{i} {float(hi)!r}))"
              for i, (lo, hi) in enumerate(zip(lower, upper))]
    terms = " ".join("(and " + " ".join(f"({op} {left} {right})" for op, left, right in term)
                     + ")" for term in disjuncts)
    lines.append(f"(assert (or {terms}))")
    return "\n".join(lines)


IDENTITY = Network([[[1.0], [-1.0]], [[1.0, -1.0]]], [[0.0, 0.0], [0.0]])


def test_holds_and_violated_on_the_identity():
    holds = verify(IDENTITY, read_vnnlib(property_text([-1], [1], [[(">=", "Y_0", 1.5)]], 1)))
    assert holds.status == "holds"
    check_certificate(IDENTITY, read_vnnlib(property_text([-1], [1], [[(">=", "Y_0", 1.5)]], 1)),
                      holds.certificate)
    prop = read_vnnlib(property_text([-1], [1], [[(">=", "Y_0", 0.5)]], 1))
    violated = verify(IDENTITY, prop)
    assert violated.status == "violated"
    x = violated.counterexample.x
    assert 0.5 <= x[0] <= 1.0 and check_counterexample_exact(IDENTITY, prop.cases[0], 0, x)


def peak_network(x0, y0):
    """1 - |x - x0| - |y - y0| (its maximum 1 is attained only at (x0, y0))."""
    weights = [[[1, 0], [-1, 0], [0, 1], [0, -1]], [[-1, -1, -1, -1]]]
    biases = [[-x0, x0, -y0, y0], [1.0]]
    return Network([np.array(w, float) for w in weights], [np.array(b, float) for b in biases])


@pytest.mark.parametrize("threshold", [None, 0])
def test_violated_only_at_one_interior_point(threshold):
    """The unsafe set y >= 1 is met at the single point (0.25, -0.375) of the box: no sampling
    finds it; with exact_threshold=0 the search must bisect and find it exactly on a region."""
    net = peak_network(0.25, -0.375)
    prop = read_vnnlib(property_text([-1, -1], [0.9, 0.7], [[(">=", "Y_0", 1)]], 1))
    kwargs = {} if threshold is None else {"exact_threshold": threshold}
    result = verify(net, prop, **kwargs)
    assert result.status == "violated"
    assert result.counterexample.x.tolist() == [0.25, -0.375]
    assert check_counterexample_exact(net, prop.cases[0], 0, result.counterexample.x)
    # 2^-25 above the peak the property holds, and the certificate is accepted
    above = read_vnnlib(property_text([-1, -1], [0.9, 0.7],
                                      [[(">=", "Y_0", 1 + 2 ** -25)]], 1))
    result = verify(net, above, **kwargs)
    assert result.status == "holds"
    check_certificate(net, above, result.certificate)
    # 2^-45 above it is below the resolution (1e-9 relative): "unknown", not a guess
    barely = read_vnnlib(property_text([-1, -1], [0.9, 0.7],
                                       [[(">=", "Y_0", 1 + 2 ** -45)]], 1))
    assert verify(net, barely, **kwargs).status == "unknown"


def test_violated_only_at_a_boundary_point():
    """relu(x) + relu(y) on [-1, 1]^2 reaches 2 only at the corner (1, 1)."""
    net = Network([np.eye(2), np.ones((1, 2))], [np.zeros(2), np.zeros(1)])
    prop = read_vnnlib(property_text([-1, -1], [1, 1], [[(">=", "Y_0", 2)]], 1))
    result = verify(net, prop, exact_threshold=0)
    assert result.status == "violated"
    assert result.counterexample.x.tolist() == [1.0, 1.0]


def oracle_violated(weights, biases, lower, upper, unsafe_rows):
    """Whether some region of the box meets {y : C y <= d}: brute force over all
    patterns, one scipy LP per region (independent of polyrelu)."""
    C, d = unsafe_rows
    regions = brute_force_regions(weights, biases, lower, upper, 1e-9)
    margins = []
    for key in regions:
        pattern = np.unpackbits(np.frombuffer(key, np.uint8), count=sum(
            len(b) for b in biases[:-1])).astype(bool)
        A, b, (W, c) = pattern_polytope(weights, biases, pattern, lower, upper)
        # max t s.t. region, C (W x + c) + t <= d: violated iff t >= 0
        A_all = np.vstack([np.hstack([A, np.zeros((len(A), 1))]),
                           np.hstack([C @ W, np.ones((len(C), 1))])])
        b_all = np.concatenate([b, d - C @ c])
        cost = np.zeros(A.shape[1] + 1)
        cost[-1] = -1
        res = linprog(cost, A_ub=A_all, b_ub=b_all, bounds=[(None, None)] * len(cost),
                      method="highs")
        margins.append(-res.fun)
    return max(margins)


@pytest.mark.parametrize("trials", [12, pytest.param(24, marks=pytest.mark.slow)])
def test_random_networks_agree_with_brute_force(trials):
    rng = np.random.default_rng(7)
    decided = {"holds": 0, "violated": 0}
    for trial in range(trials):
        d = int(rng.integers(1, 4))
        weights, biases = random_network([d, 5, 4, 2], rng)
        net = Network(weights, biases)
        lower, upper = -np.ones(d), np.ones(d)
        samples = net.forward(rng.uniform(lower, upper, size=(2000, d)))
        kind = trial % 3
        if kind == 0:    # y0 >= t
            t = float(np.quantile(samples[:, 0], 0.9 + 0.1 * rng.random()))
            terms, C, rhs = [[(">=", "Y_0", t)]], np.array([[-1.0, 0.0]]), np.array([-t])
        elif kind == 1:  # y0 <= y1 and y1 >= t
            t = float(np.quantile(samples[:, 1], 0.95))
            terms = [[("<=", "Y_0", "Y_1"), (">=", "Y_1", t)]]
            C, rhs = np.array([[1.0, -1.0], [0.0, -1.0]]), np.array([0.0, -t])
        else:            # y0 <= t (a low threshold)
            t = float(np.min(samples[:, 0]) - 0.05 * rng.random())
            terms, C, rhs = [[("<=", "Y_0", t)]], np.array([[1.0, 0.0]]), np.array([t])
        margin = oracle_violated(weights, biases, lower, upper, (C, rhs))
        if abs(margin) < 1e-7:
            continue  # too close to call for a float oracle
        prop = read_vnnlib(property_text(lower, upper, terms, 2))
        result = verify(net, prop, exact_threshold=int(rng.integers(0, 8)))
        assert result.status == ("violated" if margin > 0 else "holds"), (trial, margin)
        decided[result.status] += 1
        if result.status == "holds":
            check_certificate(net, prop, result.certificate)
        else:
            assert check_counterexample_exact(net, prop.cases[0], 0, result.counterexample.x)
            y = net.forward(result.counterexample.x[None])[0]
            assert np.all(C @ y <= rhs + 1e-12)
    assert min(decided.values()) >= trials // 6, decided


def certified_small_case():
    """A 2-D net and a property that holds, decided with region pieces and bound pieces."""
    rng = np.random.default_rng(3)
    weights, biases = random_network([2, 6, 6, 2], rng)
    net = Network(weights, biases)
    samples = net.forward(rng.uniform(-1, 1, size=(4000, 2)))
    t = float(samples[:, 0].max() + 0.02)
    prop = read_vnnlib(property_text([-1, -1], [1, 1], [[(">=", "Y_0", t)]], 2))
    result = verify(net, prop, exact_threshold=4)
    assert result.status == "holds"
    return net, prop, result.certificate


def test_corrupted_certificates_are_rejected():
    net, prop, certificate = certified_small_case()
    counts = certificate.counts()
    assert counts["region_pieces"] > 0
    check_certificate(net, prop, certificate)
    pieces = certificate.pieces

    def rejected(new_pieces, network=net, match=None):
        broken = dataclasses.replace(certificate, pieces=new_pieces)
        with pytest.raises(PolyreluError, match=match):
            check_certificate(network, prop, broken)

    regions = [i for i, p in enumerate(pieces) if isinstance(p, RegionPiece)]
    # a region missing from an exactly decided box: the splitting tree is incomplete
    rejected(pieces[:regions[0]] + pieces[regions[0] + 1:], match="piece is missing|covered")
    # Farkas multipliers replaced by zeros
    bad = dataclasses.replace(pieces[regions[0]], multipliers=tuple(
        np.zeros_like(y) for y in pieces[regions[0]].multipliers))
    rejected(pieces[:regions[0]] + [bad] + pieces[regions[0] + 1:], match="Farkas|multipliers")
    # a whole closed box dropped
    bounds = [i for i, p in enumerate(pieces) if isinstance(p, BoundPiece)]
    if bounds:
        rejected(pieces[:bounds[0]] + pieces[bounds[0] + 1:], match="not covered")
    # the certificate of another network
    other = Network([w * 1.001 for w in net.weights], net.biases)
    rejected(pieces, network=other, match="fingerprint")


def test_star_pieces_are_checked_and_corruption_is_rejected():
    """A 2-D net decided with the exact phase from the start: partial pieces closed by the
    remaining layers' bounds (StarPiece) must pass the checker, and fail it when their
    multipliers or their piece are changed."""
    rng = np.random.default_rng(5)
    weights, biases = random_network([2, 8, 8, 8, 1], rng)
    net = Network(weights, biases)
    y = net.forward(rng.uniform(-1, 1, size=(4000, 2)))[:, 0]
    prop = read_vnnlib(property_text([-1, -1], [1, 1], [[(">=", "Y_0", y.max() + 0.3)]], 1))
    result = verify(net, prop, exact_threshold=1000)
    assert result.status == "holds" and result.certificate.counts()["star_pieces"] > 0
    check_certificate(net, prop, result.certificate)
    pieces = result.certificate.pieces
    i = next(i for i, p in enumerate(pieces) if isinstance(p, StarPiece))
    # the same piece claimed one layer earlier (its last fixed layer's bits dropped)
    bits = np.unpackbits(pieces[i].pattern)
    bits[sum(net.hidden_sizes[:pieces[i].layer - 1]):] = 0
    truncated = np.packbits(bits)
    for bad in (dataclasses.replace(pieces[i], multipliers=(np.zeros(1),)),
                dataclasses.replace(pieces[i], layer=pieces[i].layer - 1, pattern=truncated)):
        broken = dataclasses.replace(result.certificate, pieces=pieces[:i] + [bad] + pieces[i + 1:])
        with pytest.raises(PolyreluError):
            check_certificate(net, prop, broken)


def test_inputs_fixed_by_the_property_are_folded_into_the_network():
    """ACAS properties 3 and 4 fix inputs (lower = upper); the exact phase works on the
    free inputs. Oracle: brute force over the 2-D slice x_1 = 0.25 of a 2-input net."""
    rng = np.random.default_rng(2)
    weights, biases = random_network([2, 6, 6, 1], rng)
    net = Network(weights, biases)
    line = net.forward(np.column_stack([np.linspace(-1, 1, 20001), np.full(20001, 0.25)]))
    for threshold, expected in ((line.max() - 1e-3, "violated"), (line.max() + 1e-3, "holds")):
        prop = read_vnnlib(property_text([-1, 0.25], [1, 0.25], [[(">=", "Y_0", threshold)]], 1))
        result = verify(net, prop, exact_threshold=1000)
        assert result.status == expected
        if expected == "holds":
            check_certificate(net, prop, result.certificate)
        else:
            assert result.counterexample.x[1] == 0.25


def test_bound_piece_on_a_box_it_does_not_refute_is_rejected():
    prop = read_vnnlib(property_text([-1], [1], [[(">=", "Y_0", 1.5)]], 1))
    certificate = verify(IDENTITY, prop, exact_threshold=-1).certificate  # bounds only
    counts = certificate.counts()
    assert counts["bound_pieces"] >= 1 and counts["star_pieces"] == counts["region_pieces"] == 0
    weaker = read_vnnlib(property_text([-1], [1], [[(">=", "Y_0", 0.5)]], 1))
    with pytest.raises(PolyreluError, match="do not refute"):
        check_certificate(IDENTITY, weaker, certificate)


def test_dimension_mismatch_is_named():
    prop = read_vnnlib(property_text([-1, -1], [1, 1], [[(">=", "Y_0", 1)]], 1))
    with pytest.raises(PolyreluError, match="2 inputs but the network has 1"):
        verify(IDENTITY, prop)


def test_timeout_is_reported():
    rng = np.random.default_rng(0)
    net = Network(*random_network([3, 12, 12, 1], rng))
    y = net.forward(rng.uniform(-1, 1, size=(2000, 3)))
    prop = read_vnnlib(property_text([-1] * 3, [1] * 3, [[(">=", "Y_0", y.max() + 1e-6)]], 1))
    result = verify(net, prop, timeout=0.0)
    assert result.status == "timeout" and result.certificate is None


@pytest.fixture(scope="module")
def acas(acasxu_dir):
    return lambda name: load_network(acasxu_dir / f"ACASXU_run2a_{name}_batch_2000.onnx")


def test_acas_violated_counterexample_passes_onnxruntime(acas, acasxu_dir):
    prop = read_vnnlib(acasxu_dir / "prop_2.vnnlib")
    result = verify(acas("2_1"), prop, timeout=60)
    assert result.status == "violated"
    cex = result.counterexample
    assert check_counterexample_exact(acas("2_1"), prop.cases[cex.case], cex.disjunct, cex.x)
    passes, output, worst = check_counterexample_onnx(
        acasxu_dir / "ACASXU_run2a_2_1_batch_2000.onnx", prop, cex)
    assert passes and np.allclose(output, cex.output, atol=1e-4)


def test_acas_holds_with_a_certificate(acas, acasxu_dir):
    prop = read_vnnlib(acasxu_dir / "prop_1.vnnlib")
    net = acas("1_1")
    result = verify(net, prop, timeout=60)
    assert result.status == "holds"
    summary = check_certificate(net, prop, result.certificate)
    assert summary["boxes"] == result.stats["bound_pieces"] + len(
        {p.path for p in result.certificate.pieces if isinstance(p, RegionPiece)})
    # the maximum of Y_0 over 20000 samples is below the threshold the certificate proves
    rng = np.random.default_rng(1)
    x = rng.uniform(prop.cases[0].lower, prop.cases[0].upper, size=(20000, 5))
    assert net.forward(x)[:, 0].max() < prop.cases[0].unsafe[0].d[0] * -1


def _agree_with_brute_force(d, trials, seed):
    """The search on random nets with ``d`` inputs against the brute-force oracle (every
    pattern, one scipy LP per region): same answer, checked certificate or exact
    counterexample."""
    rng = np.random.default_rng(seed)
    for trial in range(trials):
        weights, biases = random_network([d, 6, 4, 2], rng)
        net = Network(weights, biases)
        lower, upper = -np.ones(d), np.ones(d)
        samples = net.forward(rng.uniform(lower, upper, size=(4000, d)))
        if trial % 2:  # y0 <= y1 and y1 >= t
            t = float(np.quantile(samples[:, 1], 0.95 + 0.05 * rng.random()))
            terms = [[("<=", "Y_0", "Y_1"), (">=", "Y_1", t)]]
            C, rhs = np.array([[1.0, -1.0], [0.0, -1.0]]), np.array([0.0, -t])
        else:          # y0 >= t
            t = float(np.quantile(samples[:, 0], 0.97) + 0.1 * rng.random() * np.ptp(samples))
            terms, C, rhs = [[(">=", "Y_0", t)]], np.array([[-1.0, 0.0]]), np.array([-t])
        margin = oracle_violated(weights, biases, lower, upper, (C, rhs))
        if abs(margin) < 1e-7:
            continue  # too close to call for a float oracle
        prop = read_vnnlib(property_text(lower, upper, terms, 2))
        result = verify(net, prop, timeout=120)
        assert result.status == ("violated" if margin > 0 else "holds"), (d, trial, margin)
        if result.status == "holds":
            assert result.stats["certificate"] == "checked"
        else:
            assert check_counterexample_exact(net, prop.cases[0], 0, result.counterexample.x)


@pytest.mark.parametrize("d", [2, 5])
def test_search_agrees_with_brute_force_in_few_dimensions(d):
    _agree_with_brute_force(d, 2, seed=d)


@pytest.mark.slow
@pytest.mark.parametrize("d", [10, 20])
def test_search_agrees_with_brute_force_up_to_20_dimensions(d):
    _agree_with_brute_force(d, 6, seed=d)


def test_run_instance_passes_the_loaders_size_limit(tmp_path):
    net_path, prop_path = tmp_path / "identity.npz", tmp_path / "prop.vnnlib"
    save_npz(IDENTITY, net_path)
    prop_path.write_text(property_text([-1], [1], [[(">=", "Y_0", 1.5)]], 1))
    assert run_instance(net_path, prop_path, 30)["result"] == "holds"
    with pytest.raises(SizeLimitError, match="max_parameters = 4"):
        run_instance(net_path, prop_path, 30, max_parameters=4)  # the net holds 7 numbers
