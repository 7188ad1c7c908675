"""The splitting enumerator's LP-free tests, each against scipy's LP solver as oracle,
and its leaves' interior points against their definition."""

import numpy as np
import pytest
from scipy.optimize import linprog

from oracles import random_network
from polyrelu import Domain, Network
from polyrelu.geometry.boxes import contract, cut_bound, lp_bound, tighten
from polyrelu.regions.splitting import count_regions, iter_leaves


def _lp_max(g, low, high, H, beta):
    """max g @ x over the box [low, high] and H x <= beta, by scipy (None if empty)."""
    result = linprog(-g, A_ub=H if len(H) else None, b_ub=beta if len(H) else None,
                     bounds=list(zip(low, high)), method="highs")
    return -result.fun if result.status == 0 else None


def _random_case(rng, d, m):
    low = rng.uniform(-2, 0, d)
    high = low + rng.uniform(0.5, 2, d)
    H = rng.normal(size=(m, d))
    H /= np.linalg.norm(H, axis=1)[:, None]
    inside = rng.uniform(low, high)  # keep the polytope non-empty
    beta = H @ inside + rng.uniform(0, 0.5, m)
    return low, high, H, beta


@pytest.mark.parametrize("d", [1, 2, 3, 5])
def test_cut_bound_is_exact_for_one_cut_and_sound_for_several(d):
    rng = np.random.default_rng(d)
    for _ in range(40):
        low, high, H, beta = _random_case(rng, d, 4)
        G = rng.normal(size=(3, d))
        several = cut_bound(G, low, high, H, beta)
        for k, g in enumerate(G):
            assert several[k] >= _lp_max(g, low, high, H, beta) - 1e-9
            box = _lp_max(g, low, high, H[:0], beta[:0])
            assert several[k] <= box + 1e-9
            singles = [_lp_max(g, low, high, H[i:i + 1], beta[i:i + 1]) for i in range(4)]
            assert several[k] == pytest.approx(min(singles + [box]), abs=1e-9)


def _degenerate_case(rng, d, m, kind):
    """A box cut by m unit rows around a point ``inside`` it: ``kind`` 0 plain, 1 with
    repeated rows and a third of the rows through ``inside``, 2 with a slab of width 1e-7
    through it; the last two rows are all-zero padding."""
    low = rng.uniform(-2, 0, d)
    high = low + rng.uniform(0.5, 2, d)
    inside = rng.uniform(low, high)
    H = rng.normal(size=(m, d))
    H /= np.linalg.norm(H, axis=1)[:, None]
    beta = H @ inside + rng.uniform(0, 0.5, m)
    if kind == 1:
        half = m // 2
        H[half:2 * half], beta[half:2 * half] = H[:half], beta[:half]
        beta[:m // 3] = H[:m // 3] @ inside
    if kind == 2:
        H[1], beta[0] = -H[0], H[0] @ inside + 1e-8
        beta[1] = -beta[0] + 1e-7
    H[-2:], beta[-2:] = 0.0, 0.0
    return low, high, H, beta


@pytest.mark.parametrize("d, m", [(1, 4), (2, 6), (5, 20), (8, 30), (16, 40), (64, 80)])
def test_lp_bound_is_the_lp_maximum(d, m):
    """Against scipy's LP: the bound is never below the maximum, and equal to it to 1e-9
    (the dual simplex reaches the optimum on these, and the vertex is feasible and
    optimal), also with degenerate cuts (repeated
    rows, rows through one point, a slab of width 1e-7, all-zero padding rows)."""
    rng = np.random.default_rng(d)
    problems = [(rng.normal(size=d), *_degenerate_case(rng, d, m, case % 3))
                for case in range(12)]
    G, low, high, H, beta = (np.array(column) for column in zip(*problems))
    bound, vertex = lp_bound(G, low, high, H, beta)
    for k, (g, *piece) in enumerate(problems):
        exact = _lp_max(g, *piece)
        assert bound[k] >= exact - 1e-12
        assert bound[k] == pytest.approx(exact, abs=1e-9)
        assert g @ vertex[k] == pytest.approx(exact, abs=1e-9)  # an optimal vertex
        assert np.all(H[k] @ vertex[k] <= beta[k] + 1e-9)
        assert np.all((low[k] - 1e-9 <= vertex[k]) & (vertex[k] <= high[k] + 1e-9))


def test_lp_bound_stops_once_below_the_bound_asked_for():
    """A problem whose bound is asked below its box bound stops there: the result is then
    only an upper bound (still above the LP's maximum, and below ``below``)."""
    rng = np.random.default_rng(5)
    low, high, H, beta = _degenerate_case(rng, 6, 25, 0)
    g = rng.normal(size=6)
    exact = _lp_max(g, low, high, H, beta)
    box = np.maximum(g * low, g * high).sum()
    args = (g[None], low[None], high[None], H[None], beta[None])
    asked = (exact + box) / 2
    stopped, vertex = lp_bound(*args, below=np.array([asked]))
    assert exact - 1e-12 <= stopped[0] < asked
    assert np.isnan(vertex).all()  # stopped before the optimum
    assert lp_bound(*args, below=np.array([box + 1.0]))[0][0] == pytest.approx(box)


def test_cut_bound_with_axis_parallel_and_zero_entries():
    low, high = np.array([0.0, 0.0]), np.array([1.0, 1.0])
    H = np.array([[1.0, 0.0], [0.0, -1.0]])
    beta = np.array([0.25, -0.5])  # x <= 1/4, y >= 1/2
    bound = cut_bound(np.array([[1.0, 1.0], [0.0, -1.0]]), low, high, H, beta)
    assert bound.tolist() == pytest.approx([1.25, -0.5])


@pytest.mark.parametrize("d", [2, 4])
def test_tightened_and_contracted_boxes_contain_the_polytope(d):
    rng = np.random.default_rng(10 + d)
    for _ in range(30):
        low, high, H, beta = _random_case(rng, d, 5)
        new_low, new_high = (x[0] for x in tighten(low[None], high[None], H[None], beta[None]))
        c_low, c_high = (x[0] for x in contract(low[None], high[None], H[:1], beta[:1]))
        for k in range(d):
            e = np.eye(d)[k]
            top, bottom = _lp_max(e, low, high, H, beta), -_lp_max(-e, low, high, H, beta)
            assert new_low[k] - 1e-9 <= bottom and top <= new_high[k] + 1e-9
            assert low[k] - 1e-12 <= new_low[k] and new_high[k] <= high[k] + 1e-12
            one_top = _lp_max(e, low, high, H[:1], beta[:1])
            one_bottom = -_lp_max(-e, low, high, H[:1], beta[:1])
            assert c_low[k] - 1e-9 <= one_bottom and one_top <= c_high[k] + 1e-9


def test_leaves_carry_a_ball_inside_them():
    """Every yielded leaf's centre lies inside it at distance >= its radius from every
    facet, the radius is at most the true Chebyshev radius (scipy), and the pattern is
    the network's at the centre."""
    weights, biases = random_network((3, 8, 8, 1), np.random.default_rng(4))
    network = Network(weights, biases)
    domain = Domain.box(-np.ones(3), np.ones(3))
    leaves = list(iter_leaves(network, domain))
    assert len(leaves) > 20
    for leaf in leaves:
        assert (leaf.b - leaf.A @ leaf.center).min() >= leaf.radius - 1e-12
        cost = np.zeros(4)
        cost[3] = -1.0
        ball = linprog(cost, A_ub=np.hstack([leaf.A, np.ones((len(leaf.b), 1))]),
                       b_ub=leaf.b, bounds=[(None, None)] * 4, method="highs")
        assert leaf.radius <= -ball.fun + 1e-9
        pre = network.preactivations(leaf.center)[0]
        assert np.array_equal(pre > 0, leaf.pattern)


@pytest.mark.parametrize("sizes,seed", [((2, 8, 8, 1), 0), ((3, 6, 6, 6, 1), 1), ((4, 10, 1), 2)])
def test_batched_count_equals_the_leaves_for_any_chunk(sizes, seed):
    """count_regions against the leaves with exact balls (the same engine) and, the oracle,
    the graph walk, on boxes and on a polytope domain, with tiny and large chunks."""
    from polyrelu import enumerate_regions

    weights, biases = random_network(sizes, np.random.default_rng(seed))
    network = Network(weights, biases)
    d = sizes[0]
    simplex = Domain.polytope(np.vstack([-np.eye(d), np.ones((1, d))]),
                              np.concatenate([np.ones(d), [1.0]]))
    for domain in (Domain.box(-np.ones(d), np.ones(d)), simplex):
        leaves = sum(1 for _ in iter_leaves(network, domain))
        assert leaves == len(enumerate_regions(network, domain)) > 5
        for chunk in (3, 4096):
            assert count_regions(network, domain, chunk=chunk)[0] == leaves


def test_a_side_too_thin_to_hold_a_region_is_cut_off_once():
    """Neuron x - (1 - 1e-10) leaves an active sliver thinner than the radius tolerance:
    the piece keeps its inactive side (once: it used to be counted twice). The graph walk
    is the oracle."""
    from polyrelu import enumerate_by_splitting, enumerate_regions

    net = Network([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0]]], [[-(1 - 1e-10), 0.0], [0.0]])
    domain = Domain.box([-1, -1], [1, 1])
    walked = enumerate_regions(net, domain)
    assert len(walked) == 2
    assert count_regions(net, domain)[0] == len(walked)
    split = enumerate_by_splitting(net, domain)
    assert {r.key for r in split} == {r.key for r in walked}
