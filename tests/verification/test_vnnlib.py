"""The VNN-LIB reader: ACAS Xu properties against a plain-text reading, DNF expansion,
and clear errors."""

import re
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
    (HEAD + BOX + "(assert (<= (+ Y_0 Y_1) 1))", "unsupported operand"),
    (HEAD + BOX + "(assert (<= X_0 Y_0))", "inputs may only be compared with numbers"),
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
