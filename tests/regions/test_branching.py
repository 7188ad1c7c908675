"""The best-first branch and bound against independent enumerations of the regions."""

import numpy as np
import pytest
from deadlines import ChecksDeadline

from oracles import brute_force_regions, random_network
from polyrelu import Domain, Network, Options, enumerate_regions
from polyrelu.geometry.lp import LPSolver
from polyrelu.regions.branching import best_first
from polyrelu.regions.splitting import Splitter


def splitter_for(network, domain):
    return Splitter(network, domain, Options(), LPSolver(Options()), track=True)


def active_count_search(network, domain, **kwargs):
    """Maximise the number of active units over the regions. Bound: the active units of
    the fixed layers plus every unit of the later layers (sound, and loose)."""
    offsets = np.cumsum([0] + list(network.hidden_sizes))

    def bound(batch):
        fixed = batch.pieces.pattern[:, :offsets[batch.layer]].sum(1)
        return fixed + (offsets[-1] - offsets[batch.layer])

    def reach(pieces, map_A, map_c, wide):
        return np.where(wide, pieces.pattern.sum(1), -np.inf)

    return best_first(splitter_for(network, domain), bound, reach, **kwargs)


@pytest.mark.parametrize("seed", range(6))
def test_maximum_equals_the_brute_force_over_all_patterns(seed):
    rng = np.random.default_rng(seed)
    d = int(rng.integers(1, 4))
    weights, biases = random_network((d, 4, 3, 1), rng)
    network = Network(weights, biases)
    domain = Domain.box(-np.ones(d), np.ones(d))
    found = brute_force_regions(weights, biases, domain.lower, domain.upper, 1e-7)
    expected = max(int(np.unpackbits(np.frombuffer(key, np.uint8), count=7).sum())
                   for key in found)
    outcome = active_count_search(network, domain)
    assert outcome.status == "exact"
    assert outcome.incumbent == expected == outcome.upper
    assert outcome.regions <= len(found)


def test_a_bound_that_never_prunes_reaches_every_region():
    network = Network(*random_network((3, 6, 5, 2), np.random.default_rng(3)))
    domain = Domain.box(-np.ones(3), np.ones(3))
    walked = enumerate_regions(network, domain)
    values = {}

    def reach(pieces, map_A, map_c, wide):
        for p in np.flatnonzero(wide):
            values[np.packbits(pieces.pattern[p]).tobytes()] = 1.0
        return np.zeros(pieces.count)

    outcome = best_first(splitter_for(network, domain),
                         lambda batch: np.full(batch.pieces.count, np.inf), reach)
    assert outcome.status == "exact" and outcome.pruned == 0
    assert set(values) == {np.packbits(region.pattern).tobytes() for region in walked}
    assert outcome.regions == len(walked) == outcome.tree.count("region")


def test_pruning_closes_pieces_and_records_them():
    network = Network(*random_network((2, 6, 6, 6, 1), np.random.default_rng(4)))
    domain = Domain.box(-np.ones(2), np.ones(2))
    outcome = active_count_search(network, domain)
    tree = outcome.tree
    assert outcome.pruned == tree.count("bound") > 0
    closed = [value for kind, value in zip(tree.kinds, tree.values) if kind == "bound"]
    assert max(closed) <= outcome.incumbent
    reached = [value for kind, value in zip(tree.kinds, tree.values) if kind == "region"]
    assert max(reached) == outcome.incumbent and min(reached) < outcome.incumbent
    assert all(layer >= 0 for layer in tree.layers)
    assert len(enumerate_regions(network, domain)) > outcome.regions


def test_target_stops_the_search_early():
    network = Network(*random_network((2, 8, 8, 1), np.random.default_rng(5)))
    domain = Domain.box(-np.ones(2), np.ones(2))
    outcome = active_count_search(network, domain, target=1)
    assert outcome.status == "target" and outcome.incumbent >= 1


def test_deadline_gives_a_bracket_of_the_maximum():
    network = Network(*random_network((2, 8, 8, 8, 1), np.random.default_rng(6)))
    domain = Domain.box(-np.ones(2), np.ones(2))
    exact = active_count_search(network, domain).incumbent
    stopped = active_count_search(network, domain, deadline=ChecksDeadline(3), dive=False,
                                   group=1)
    assert stopped.status == "deadline"
    assert stopped.incumbent <= exact <= stopped.upper
    assert stopped.tree.count("open") > 0
