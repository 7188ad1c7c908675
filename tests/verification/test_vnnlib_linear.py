"""VNN-LIB linear terms (``+``, ``-``, ``*`` by constants) as the benchmarks write them:
known answers, random terms against an independent evaluator (Fractions, plain
recursion on small trees), and an adversary's files (deep nesting, absurd coefficients,
products of variables)."""

import re
import time
from fractions import Fraction

import numpy as np
import pytest

from polyrelu.errors import InvalidFileError
from polyrelu.verification.vnnlib import read_vnnlib

HEAD = ("(declare-const X_0 Real) (declare-const X_1 Real) "
        "(declare-const Y_0 Real) (declare-const Y_1 Real) (declare-const Y_2 Real)\n")
BOX = "(assert (>= X_0 0)) (assert (<= X_0 1)) (assert (>= X_1 -1)) (assert (<= X_1 1))\n"


def only_polytope(text):
    (case,) = read_vnnlib(text).cases
    (polytope,) = case.unsafe
    return case, polytope


def test_linear_output_constraints_known_answers():
    _, polytope = only_polytope(HEAD + BOX + "(assert (<= (+ Y_0 (* -0.5 Y_1)) 3))"
                                "(assert (>= (- Y_0 Y_1 1) (* 2 (+ 1 1))))"
                                "(assert (<= (* 3 (- Y_2)) (+ Y_0 0.25)))")
    np.testing.assert_array_equal(polytope.C, [[1, -0.5, 0], [-1, 1, 0], [-1, 0, -3]])
    assert polytope.d_exact == (3, -5, Fraction(1, 4))


def test_linear_input_bounds_known_answers():
    case, _ = only_polytope(HEAD + "(assert (<= (* 2 X_0) 1)) (assert (>= (+ X_0 0.5) 0))"
                            "(assert (<= X_1 (- 1 0.5))) (assert (<= (- X_1) 2))"
                            "(assert (<= Y_0 0))")
    assert case.lower_exact == (Fraction(-1, 2), -2)
    assert case.upper_exact == (Fraction(1, 2), Fraction(1, 2))


def random_term(rng, depth):
    """A random linear term over Y_0..Y_2 as (VNN-LIB text, evaluator)."""
    if depth == 0 or rng.random() < 0.3:
        if rng.random() < 0.5:
            j = int(rng.integers(3))
            return f"Y_{j}", lambda y, j=j: y[j]
        value = Fraction(int(rng.integers(-50, 50)), 10 ** int(rng.integers(0, 3)))
        text = f"{float(value)!r}" if value.denominator in (1, 2, 4, 5) else str(float(value))
        return text, lambda y, v=Fraction(text): v
    head = ["+", "-", "*"][int(rng.integers(3))]
    if head == "*":
        constant = Fraction(int(rng.integers(-9, 10)), 4)
        inner, evaluate = random_term(rng, depth - 1)
        return f"(* {float(constant)!r} {inner})", lambda y: constant * evaluate(y)
    parts = [random_term(rng, depth - 1) for _ in range(int(rng.integers(1, 4)))]
    text = f"({head} " + " ".join(p[0] for p in parts) + ")"
    if head == "+":
        return text, lambda y: sum((p[1](y) for p in parts), Fraction(0))
    if len(parts) == 1:
        return text, lambda y: -parts[0][1](y)
    return text, lambda y: parts[0][1](y) - sum((p[1](y) for p in parts[1:]), Fraction(0))


def test_random_linear_terms_match_an_independent_evaluator():
    """``left <= right`` read as ``c y <= d``: ``c y - d == left(y) - right(y)`` at random
    rational points, exactly (the coefficients are dyadic, so float64 holds them)."""
    rng = np.random.default_rng(5)
    for _ in range(150):
        (left, eval_left), (right, eval_right) = random_term(rng, 4), random_term(rng, 4)
        op = ["<=", ">="][int(rng.integers(2))]
        text = HEAD + BOX + f"(assert ({op} {left} {right}))"
        sign = 1 if op == "<=" else -1
        try:
            _, polytope = only_polytope(text)
        except InvalidFileError as err:  # no variables (two numbers, or terms that cancel)
            assert "without variables" in str(err)
            assert sum(c.d_exact == () for c in []) == 0 and \
                all(eval_left([v] * 3) - eval_right([v] * 3) ==
                    eval_left([0] * 3) - eval_right([0] * 3) for v in (1, -3))
            continue
        for _ in range(3):
            y = [Fraction(int(v), 7) for v in rng.integers(-20, 20, size=3)]
            value = sum((Fraction(c) * v for c, v in zip(polytope.C[0], y)), Fraction(0))
            assert value - polytope.d_exact[0] == sign * (eval_left(y) - eval_right(y))


def test_deep_nesting_is_read_iteratively_and_linearly():
    """``(+ (+ (+ ... Y_0 ...) 1) 1)`` 200,000 deep and ``(* 1 (* 1 ...))`` 200,000 deep:
    no recursion limit, and the time grows about linearly."""
    seconds = []
    for depth in (50_000, 200_000):
        sums = "(+ " * depth + "Y_0" + " 1)" * depth
        products = "(* 1 " * depth + "Y_1" + ")" * depth
        text = HEAD + BOX + f"(assert (<= {sums} {products}))"
        start = time.perf_counter()
        _, polytope = only_polytope(text)
        seconds.append(time.perf_counter() - start)
        np.testing.assert_array_equal(polytope.C, [[1, -1, 0]])
        assert polytope.d_exact == (-depth,)
    assert seconds[1] < 8 * seconds[0] + 0.5


def test_many_variables_merge_in_near_linear_time():
    """A sum nested to the left over 30,000 outputs (each merge adds one term to a
    growing dict): read in near-linear time."""
    n = 30_000
    head = "".join(f"(declare-const Y_{j} Real) " for j in range(n))
    text = ("(declare-const X_0 Real) " + head + "(assert (>= X_0 0)) (assert (<= X_0 1))"
            + "(assert (<= " + "(+ " * (n - 1) + "Y_0 "
            + " ".join(f"(* 2 Y_{j}))" for j in range(1, n)) + " 0))")
    start = time.perf_counter()
    (case,) = read_vnnlib(text).cases
    assert time.perf_counter() - start < 20
    assert case.unsafe[0].C[0, 0] == 1 and np.all(case.unsafe[0].C[0, 1:] == 2)


@pytest.mark.parametrize("assertion, message", [
    ("(<= " + "(* 10 " * 400 + "Y_0" + ")" * 400 + " 1)", "outside the float64 range"),
    ("(<= " + "(* 1e-300 " * 4 + "Y_0" + ")" * 4 + " 1)", "outside the float64 range"),
    ("(<= " + "(* 1.0000001 " * 200 + "Y_0" + ")" * 200 + " 1)", "too precise"),
    ("(<= (* Y_0 Y_1) 1)", "not linear"),
    ("(<= (* (+ Y_0 1) (- Y_1)) 1)", "not linear"),
    ("(<= (+) 1)", "unsupported operand"),
    ("(<= (/ Y_0 2) 1)", "unsupported operand"),
    ("(<= (+ Y_0 (exp Y_1)) 1)", "unsupported operand"),
    ("(<= (+ 1 2) 3)", "without variables"),
    ("(<= (* 1e99999 Y_0) 1)", "refusing the number"),
])
def test_adversarial_linear_terms_are_refused_in_one_short_line(assertion, message):
    with pytest.raises(InvalidFileError, match=re.escape(message)) as caught:
        read_vnnlib(HEAD + BOX + f"(assert {assertion})")
    text = str(caught.value)
    assert "\n" not in text and len(text) < 400
