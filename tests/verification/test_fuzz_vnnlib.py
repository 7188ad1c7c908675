"""Fuzzing the VNN-LIB reader with random token soups and mutated real properties: no
exception other than a PolyreluError escapes, nothing hangs, memory stays bounded."""

from pathlib import Path

from fuzzing import MUTATIONS, bounded, mutate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyrelu.verification.vnnlib import read_vnnlib

ACAS = Path(__file__).resolve().parents[3] / "shared" / "data" / "acasxu"
PROPERTIES = [p.read_bytes() for p in sorted(ACAS.glob("prop_*.vnnlib"))] or [
    b"(declare-const X_0 Real)(declare-const Y_0 Real)(assert (>= X_0 0))(assert (<= X_0 1))"
    b"(assert (or (and (<= Y_0 1)) (and (>= Y_0 2))))"]
FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

_NUMBERS = st.one_of(
    st.integers(-10 ** 30, 10 ** 30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.tuples(st.integers(-99, 99), st.integers(-10 ** 9, 10 ** 9)).map(
        lambda p: f"{p[0]}e{p[1]}"),
    st.sampled_from(["1/0", "1/3", "-.5", "1_000", "0x10", "1e", "--1", ".", "1.2.3", "nan"]),
)
_TOKENS = st.one_of(
    st.sampled_from(["(", ")", "(", ")", "assert", "declare-const", "Real", "Int", "and", "or",
                     "<=", ">=", "=", "not", "+", ";", "\n", " ", "X_0", "X_1", "Y_0", "Y_1",
                     "X_99999999", "X_", "Y_-1", "X_0x"]),
    _NUMBERS,
    st.text(max_size=6),
)


@FUZZ
@given(tokens=st.lists(_TOKENS, max_size=80))
def test_random_token_soup(tokens):
    with bounded(seconds=10, megabytes=100):
        read_vnnlib("(" + " ".join(tokens))


@st.composite
def _properties(draw):
    """Well-formed headers with random assertions of random depth and operands."""
    d, m = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    lines = [f"(declare-const X_{i} Real)" for i in range(d)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(m)]
    lines += [f"(assert (>= X_{i} -1)) (assert (<= X_{i} 1))" for i in range(d)]
    operand = st.one_of(st.sampled_from([f"X_{i}" for i in range(d + 1)]
                                        + [f"Y_{j}" for j in range(m + 1)]), _NUMBERS)
    comparison = st.tuples(st.sampled_from(["<=", ">=", "="]), operand, operand).map(
        lambda c: f"({c[0]} {c[1]} {c[2]})")
    formula = st.recursive(
        comparison,
        lambda inner: st.tuples(st.sampled_from(["and", "or"]),
                                st.lists(inner, max_size=4)).map(
            lambda f: f"({f[0]} {' '.join(f[1])})"),
        max_leaves=30)
    lines += [f"(assert {draw(formula)})" for _ in range(draw(st.integers(0, 4)))]
    return "\n".join(lines)


@FUZZ
@given(text=_properties())
def test_random_properties(text):
    with bounded(seconds=10, megabytes=200):
        read_vnnlib(text)


@FUZZ
@given(seed=st.sampled_from(range(len(PROPERTIES))), mutations=MUTATIONS)
def test_mutated_acas_properties(seed, mutations):
    text = mutate(PROPERTIES[seed], mutations).decode("latin-1")
    with bounded(seconds=10, megabytes=100):
        read_vnnlib(text if "(" in text else "(" + text)
