"""Time limits are honoured: ``--timeout S`` returns within S + 5 s of wall time (the
process as a whole, from start to exit) on networks where the work runs for minutes,
prints what was found labelled partial, exits with status 3, and resumes from a
checkpoint to exactly the uninterrupted run's regions."""

import subprocess
import sys
import time

import numpy as np
import pytest
from deadlines import ChecksDeadline

from oracles import assert_same_complex, random_network
from polyrelu import Domain, Network, TimeLimitError, enumerate_regions
from polyrelu.analysis.lipschitz import lipschitz
from polyrelu.regions.parallel import enumerate_parallel

LIMIT = 3.0


def save(path, sizes, seed, scale=1.0):
    weights, biases = random_network(sizes, np.random.default_rng(seed))
    np.savez(path, **{f"W{i}": w * scale for i, w in enumerate(weights)},
             **{f"b{i}": b for i, b in enumerate(biases)})
    return str(path)


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    """Networks on which every command below runs for minutes without a limit."""
    folder = tmp_path_factory.mktemp("slow")
    mlp30 = save(folder / "mlp30.npz", (30, 64, 64, 64, 5), 5)
    names = [f"(declare-const X_{i} Real)" for i in range(30)]
    names += [f"(declare-const Y_{j} Real)" for j in range(5)]
    box = [f"(assert (>= X_{i} -1)) (assert (<= X_{i} 1))" for i in range(30)]
    network = Network(*random_network((30, 64, 64, 64, 5), np.random.default_rng(5)))
    top = network.forward(np.random.default_rng(0).uniform(-1, 1, (20000, 30)))[:, 0].max()
    prop = folder / "p30.vnnlib"
    prop.write_text("\n".join(names + box + [f"(assert (>= Y_0 {float(3 * top)!r}))"]))
    return {"deep": save(folder / "deep.npz", (5, 64, 64, 64, 1), 6),
            "wide2": save(folder / "wide2.npz", (2, 400, 400, 400, 2), 7),
            "mlp30": mlp30, "prop": str(prop)}


def run_timed(command):
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "polyrelu", *command], capture_output=True,
                          text=True, timeout=120)
    return done, time.monotonic() - start


@pytest.mark.parametrize("command, expect", [
    (["regions", "deep", "--box", "-1", "1"], "regions_found"),
    (["regions", "deep", "--box", "-1", "1", "--jobs", "2"], "regions_found"),
    (["lipschitz", "deep", "--box", "-1", "1"], "lipschitz_bracket"),
    (["energy", "deep", "--box", "-1", "1"], "null_set: undecided"),
    (["injectivity", "deep", "--box", "-1", "1"], "undecided_layer"),
    (["slice", "wide2", "--box", "-1", "1"], "partial: True"),
    (["verify", "mlp30", "prop"], "result: timeout"),
    (["verify", "mlp30", "prop", "--jobs", "2"], "result: timeout"),
])
def test_timeout_returns_within_the_limit_with_partial_results(slow, command, expect):
    command = [slow.get(word, word) for word in command] + ["--timeout", str(LIMIT)]
    done, seconds = run_timed(command)
    assert done.returncode == 3, done.stderr
    assert seconds <= LIMIT + 5, f"{seconds:.1f} s for a {LIMIT} s limit"
    assert expect in done.stdout
    assert len(done.stderr.strip().splitlines()) == 1 and "time limit" in done.stderr


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_stopped_walk_resumes_to_the_uninterrupted_regions(tmp_path, jobs):
    network = Network(*random_network((3, 12, 10, 1), np.random.default_rng(8)))
    domain = Domain.box(-np.ones(3), np.ones(3))
    reference = enumerate_regions(network, domain)
    with pytest.raises(TimeLimitError) as stopped:
        if jobs == 1:
            enumerate_regions(network, domain, checkpoint=tmp_path / "c",
                              deadline=ChecksDeadline(40))
        else:
            enumerate_parallel(network, domain, jobs=2, checkpoint=tmp_path / "c",
                               deadline=ChecksDeadline(3))
    partial = stopped.value.partial
    assert partial.stats["partial"] and 0 < len(partial) < len(reference)
    keys = {r.key for r in reference}
    assert all(r.key in keys for r in partial)  # every partial region is a true region
    resumed = enumerate_regions(network, domain, checkpoint=tmp_path / "c")
    assert resumed.stats["resumed_regions"] == len(partial)
    assert_same_complex(reference, resumed)


def test_the_partial_lipschitz_bracket_contains_the_exact_value():
    network = Network(*random_network((2, 10, 8, 1), np.random.default_rng(9)))
    domain = Domain.box(-np.ones(2), np.ones(2))
    exact = lipschitz(network, domain, 2).value
    with pytest.raises(TimeLimitError) as stopped:
        lipschitz(network, domain, 2, deadline=ChecksDeadline(20))
    bracket = stopped.value.partial
    assert 0 < bracket["lower"] <= exact <= bracket["upper"]
    assert bracket["regions"] == 20


def test_verify_instances_honours_the_timeout_cap(slow, tmp_path):
    """A row of verify-instances ran 2.5 minutes under --timeout-cap 30."""
    instances = tmp_path / "instances.csv"
    instances.write_text(f"{slow['mlp30']},{slow['prop']},300\n")
    results = tmp_path / "results.csv"
    done, seconds = run_timed(["verify-instances", str(instances), "-o", str(results),
                               "--timeout-cap", str(LIMIT), "--no-progress"])
    assert done.returncode == 0, done.stderr
    assert seconds <= LIMIT + 5
    row = results.read_text().splitlines()[1].split(",")
    assert row[2] == "timeout" and float(row[3]) <= LIMIT + 2


def test_a_timed_out_command_resumes_from_its_checkpoint(slow, tmp_path):
    command = ["regions", slow["deep"], "--box", "-1", "1", "--checkpoint", str(tmp_path / "c"),
               "--timeout", "2"]
    first, _ = run_timed(command)
    assert first.returncode == 3 and "resume: run the same command again" in first.stdout
    found = int(first.stdout.split("regions_found: ")[1].split()[0])
    assert found > 0 and list((tmp_path / "c").glob("chunk_*.npz"))
    second, _ = run_timed(command)
    assert second.returncode == 3
    assert int(second.stdout.split("regions_found: ")[1].split()[0]) > found
