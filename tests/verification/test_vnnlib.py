"""The VNN-LIB reader: ACAS Xu properties against a plain-text reading, DNF expansion,
and clear errors."""

import re
import time
from fractions import Fraction

import numpy as np
import pytest

from polyrelu import InvalidFileError
from polyrelu.verification.vnnlib import input_box, read_vnnlib


def regex_box(text):
    """Input bounds read with regular expressions (independent of the reader)."""
    bounds = {}
    for op, index, value in re.findall(r"\((<=|>=) X_(\d+) ([-\d.e]+)\)", text):
        bounds.setdefault(int(index), {})[op] = float(value)
    return (np.array([bounds[i][">="] for i in sorted(bounds)]),
            np.array([bounds[i]["<="] for i in sorted(bounds)]))


@pytest.mark.parametrize("number", [1, 2, 3, 4, 5, 7, 8, 9, 10])
def test_acas_properties_boxes(acasxu_dir, number):
    path = acasxu_dir / f"prop_{number}.vnnlib"
    prop = read_vnnlib(path)
    assert (prop.input_dim, prop.output_dim, len(prop.cases)) == (5, 5, 1)
    lower, upper = regex_box(path.read_text())
    np.testing.assert_array_equal(prop.cases[0].lower, lower)
    np.testing.assert_array_equal(prop.cases[0].upper, upper)


def test_prop_6_has_two_boxes_and_four_disjuncts_each(acasxu_dir):
    prop = read_vnnlib(acasxu_dir / "prop_6.vnnlib")
    assert len(prop.cases) == 2 and [len(c.unsafe) for c in prop.cases] == [4, 4]
    # disjunct j: Y_{j+1} <= Y_0, i.e. -Y_0 + Y_{j+1} <= 0
    for j, unsafe in enumerate(prop.cases[0].unsafe):
        expected = np.zeros(5)
        expected[0], expected[j + 1] = -1, 1
        np.testing.assert_array_equal(unsafe.C, [expected])
    with pytest.raises(InvalidFileError, match="2 input boxes"):
        input_box(acasxu_dir / "prop_6.vnnlib")


def test_constants_are_kept_exactly(acasxu_dir):
    prop = read_vnnlib(acasxu_dir / "prop_1.vnnlib")
    assert prop.cases[0].upper_exact[0] == Fraction("0.679857769")
    assert prop.cases[0].unsafe[0].d_exact[0] == -Fraction("3.991125645861615")


HEAD = "(declare-const X_0 Real) (declare-const Y_0 Real) (declare-const Y_1 Real)\n"
BOX = "(assert (>= X_0 0)) (assert (<= X_0 1))\n"


def test_and_inside_or_inside_and_expands():
    prop = read_vnnlib(HEAD + "(assert (or (>= X_0 0) (>= X_0 0.5))) (assert (<= X_0 1))"
                       "(assert (or (and (<= Y_0 Y_1) (<= Y_0 2)) (>= Y_1 3)))")
    assert len(prop.cases) == 2
    assert [len(c.unsafe) for c in prop.cases] == [2, 2]
    assert [c.lower[0] for c in prop.cases] == [0.0, 0.5]
    first = prop.cases[0].unsafe[0]
    np.testing.assert_array_equal(first.C, [[1, -1], [1, 0]])
    np.testing.assert_array_equal(first.d, [0, 2])


@pytest.mark.parametrize("text, message", [
    (HEAD + BOX + "(assert (= Y_0 1))", "unsupported operator '='"),
    (HEAD + BOX + "(assert (<= (/ Y_0 Y_1) 1))", "unsupported operand"),
    (HEAD + BOX + "(assert (<= 1 2))", "comparison without variables"),
    (HEAD + "(assert (>= X_0 0))", "X_0 lack a lower or an upper bound"),
    (HEAD + BOX + "(assert (<= Y_2 1))", "Y_2 is not declared"),
    (HEAD + BOX + "(assert (<= Y_0 abc))", "cannot read 'abc'"),
    (HEAD + BOX + "(define-fun f () Real 1)", "unsupported top-level expression"),
    ("(declare-const X_0 Real) (declare-const X_2 Real)", "without gaps"),
    (HEAD + "(assert (>= X_0 2)) (assert (<= X_0 1))", "empty input box"),
    (HEAD + BOX + "(assert (<= Y_0 1)", "unbalanced"),
])
def test_bad_properties_are_named(text, message):
    with pytest.raises(InvalidFileError, match=re.escape(message)):
        read_vnnlib(text)


# -- hostile input: bounded time, memory and messages (issue 15) ------------------------

def test_deep_nesting_is_read_without_recursion():
    depth = 5000
    text = HEAD + BOX + "(assert " + "(and " * depth + "(<= Y_0 1)" + ")" * depth + ")"
    prop = read_vnnlib(text)
    assert prop.cases[0].unsafe[0].d.tolist() == [1.0]


def test_deeply_nested_error_is_one_short_line():
    depth = 5000
    text = HEAD + BOX + "(assert " + "(and " * depth + "(= Y_0 1)" + ")" * depth + ")"
    with pytest.raises(InvalidFileError, match="unsupported operator") as info:
        read_vnnlib(text)
    assert len(str(info.value)) < 300 and "\n" not in str(info.value)


@pytest.mark.parametrize("number, message", [
    ("-1e99999999", "exponents of magnitude at most"),
    ("1e400", "outside the float64 range"),
    ("1" * 5000, "at most 400 characters"),
])
def test_absurd_numbers_are_refused_quickly(number, message):
    start = time.perf_counter()
    with pytest.raises(InvalidFileError, match=message):
        read_vnnlib(HEAD + BOX + f"(assert (<= Y_0 {number}))")
    assert time.perf_counter() - start < 1.0


def test_tiny_exponents_are_kept_exactly():
    prop = read_vnnlib(HEAD + BOX + "(assert (<= Y_0 1e-400))")
    assert prop.cases[0].unsafe[0].d_exact[0] == Fraction(1, 10 ** 400)


def test_a_huge_token_is_not_echoed():
    token = "a" * 5_000_000
    with pytest.raises(InvalidFileError) as info:
        read_vnnlib(HEAD + BOX + f"(assert (<= Y_0 {token}))")
    assert len(str(info.value)) < 300


def test_a_huge_variable_index_is_an_unsupported_declaration():
    with pytest.raises(InvalidFileError, match="unsupported declaration"):
        read_vnnlib("(declare-const X_" + "9" * 5000 + " Real)")


def test_many_missing_bounds_are_summarised():
    text = "".join(f"(declare-const X_{i} Real)" for i in range(1000)) + "(assert (<= X_0 1))"
    with pytest.raises(InvalidFileError, match="X_0, X_1, X_2, X_3, X_4 and 995 more") as info:
        read_vnnlib(text)
    assert len(str(info.value)) < 300


def test_output_matrix_beyond_the_limit_is_refused():
    outputs = 30_000
    text = ("(declare-const X_0 Real)" + "".join(f"(declare-const Y_{j} Real)"
                                                for j in range(outputs))
            + BOX + "(assert (and" + " (<= Y_0 1)" * 1000 + "))")
    with pytest.raises(InvalidFileError, match="more than 20000000 entries"):
        read_vnnlib(text)


def test_binary_file_is_an_invalid_file(tmp_path):
    path = tmp_path / "prop.vnnlib"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InvalidFileError, match="cannot read"):
        read_vnnlib(path)


def _big_property(inputs):
    """A property with ``inputs`` bounded inputs (about 95 bytes each) and 4 disjuncts."""
    lines = [f"(declare-const X_{i} Real)\n(assert (<= X_{i} 0.{i:09d}))\n"
             f"(assert (>= X_{i} -0.{i:09d}))\n" for i in range(inputs)]
    lines += [f"(declare-const Y_{j} Real)\n" for j in range(3)]
    lines.append("(assert (or (and (<= Y_0 Y_1)) (and (<= Y_0 Y_2)) (and (>= Y_1 -1.5))))")
    return "".join(lines)


def test_reading_time_is_linear_in_the_file_size():
    text = _big_property(21_000)
    assert len(text) > 2_000_000
    start = time.perf_counter()
    prop = read_vnnlib(text)
    assert time.perf_counter() - start < 8.0
    assert prop.input_dim == 21_000 and len(prop.cases[0].unsafe) == 3
    assert prop.cases[0].upper_exact[20_999] == Fraction("0.000020999")


def test_many_short_assertions_are_read_in_linear_time():
    """2 MB of short assertions: the reader that copied the conjunction at each
    assertion (quadratic) took over a minute."""
    text = HEAD + BOX + "(assert (<= Y_0 1.5))\n" * 90_000
    start = time.perf_counter()
    prop = read_vnnlib(text)
    assert time.perf_counter() - start < 8.0
    assert prop.cases[0].unsafe[0].C.shape == (90_000, 2)


def test_dnf_expansion_is_bounded():
    ors = " ".join("(or (<= Y_0 1) (<= Y_1 1))" for _ in range(20))
    with pytest.raises(InvalidFileError, match="after expanding"):
        read_vnnlib(HEAD + BOX + f"(assert (and {ors}))")


def test_equal_boxes_written_differently_are_one_case():
    prop = read_vnnlib(HEAD + "(assert (or (and (>= X_0 0.5) (<= X_0 1) (<= Y_0 1))"
                       "            (and (>= X_0 0.50) (<= X_0 1.0) (>= Y_1 2))))")
    assert len(prop.cases) == 1 and len(prop.cases[0].unsafe) == 2
