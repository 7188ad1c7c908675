"""Reading VNN-LIB property files.

VNN-LIB is an SMT-LIB subset. This reader accepts what the VNN-COMP benchmarks
(ACAS Xu among them) use: ``(declare-const X_i Real)`` for inputs,
``(declare-const Y_j Real)`` for outputs, and ``(assert F)`` where F is built from
``and``, ``or`` and the comparisons ``<=``, ``>=`` between a variable or a
number and a variable or a number. Every other construct is refused with an
error that names it.

The assertions describe the *unsafe* set: a property is **violated** (``sat`` in
VNN-COMP) when some input satisfies all of them, and **holds** (``unsat``)
otherwise. The conjunction of the assertions is put in disjunctive normal form;
comparisons that mention only inputs give an input box, the others give linear
constraints ``C y <= d`` on the outputs. A :class:`Property` is a list of
:class:`Case` objects, one per distinct input box, each with the disjunction of
output polyhedra that are unsafe there.

Numbers are kept exactly (as :class:`fractions.Fraction` of the decimal text)
next to their float64 values, so counterexamples can be re-checked exactly.
"""

import itertools
import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..errors import InvalidFileError

__all__ = ["parse_sexpressions", "read_vnnlib", "Property", "Case", "OutputPolytope",
           "input_box"]

_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_VARIABLE = re.compile(r"^([XY])_(\d+)$")
_MAX_TERMS = 100_000


def parse_sexpressions(text):
    """Parse SMT-LIB text (comments ``;`` removed) into nested Python lists of strings."""
    text = "\n".join(line.split(";", 1)[0] for line in text.splitlines())
    stack, current = [], []
    for token in _TOKEN.findall(text):
        if token == "(":
            stack.append(current)
            current = []
        elif token == ")":
            if not stack:
                raise InvalidFileError("unbalanced ')' in VNN-LIB text")
            finished, current = current, stack.pop()
            current.append(finished)
        else:
            current.append(token)
    if stack:
        raise InvalidFileError("unbalanced '(' in VNN-LIB text")
    return current


@dataclass(frozen=True)
class OutputPolytope:
    """The output set ``{y : C y <= d}`` (one disjunct of the unsafe set).

    ``d_exact`` holds the right-hand sides as Fractions; ``C`` has small integer
    entries (from comparisons of variables), so it is exact as floats.
    """

    C: np.ndarray
    d: np.ndarray
    d_exact: tuple

    def contains(self, y, tol=0.0):
        """Whether ``C y <= d + tol`` (float check; see :mod:`polyrelu.verification.search` for exact)."""
        return bool(np.all(self.C @ np.asarray(y, dtype=float) <= self.d + tol))


@dataclass(frozen=True)
class Case:
    """An input box ``lower <= x <= upper`` and the unsafe output polytopes there."""

    lower: np.ndarray
    upper: np.ndarray
    lower_exact: tuple
    upper_exact: tuple
    unsafe: tuple


@dataclass(frozen=True)
class Property:
    """A VNN-LIB property: violated iff some case has an input mapped into an unsafe polytope."""

    input_dim: int
    output_dim: int
    cases: tuple
    source: str = ""


def read_vnnlib(path_or_text):
    """Read a VNN-LIB property from a file path or from the text itself.

    Examples
    --------
    >>> prop = read_vnnlib('''
    ...   (declare-const X_0 Real) (declare-const Y_0 Real) (declare-const Y_1 Real)
    ...   (assert (>= X_0 -1)) (assert (<= X_0 1))
    ...   (assert (or (and (<= Y_0 Y_1)) (and (>= Y_0 3))))''')
    >>> len(prop.cases), len(prop.cases[0].unsafe)
    (1, 2)
    >>> prop.cases[0].unsafe[1].C.tolist(), prop.cases[0].unsafe[1].d.tolist()
    ([[-1.0, 0.0]], [-3.0])
    """
    text, source = _read_text(path_or_text)
    expressions = parse_sexpressions(text)
    names = {"X": set(), "Y": set()}
    assertions = []
    for expression in expressions:
        head = expression[0] if expression else None
        if head == "declare-const":
            names[_declared_kind(expression, source)].add(int(expression[1][2:]))
        elif head == "assert" and len(expression) == 2:
            assertions.append(expression[1])
        else:
            raise InvalidFileError(f"{source}: unsupported top-level expression "
                                   f"{_show(expression)} (expected declare-const or assert)")
    d, m = _dimension(names["X"], "X", source), _dimension(names["Y"], "Y", source)
    if d == 0:
        raise InvalidFileError(f"{source}: declares no input variable X_i")
    terms = _dnf(["and"] + assertions, source)
    cases = {}
    for term in terms:
        box, rows = _split_term(term, d, m, source)
        cases.setdefault(box, []).append(rows)
    built = tuple(_case(box, disjuncts, d, m, source) for box, disjuncts in cases.items())
    return Property(d, m, built, source)


def input_box(path):
    """Lower and upper bounds of the inputs of a VNN-LIB property with a single input box.

    Raises
    ------
    InvalidFileError
        If the file is malformed, an input is unbounded, or the property has several
        input boxes (a disjunction over inputs).
    """
    prop = read_vnnlib(path)
    if len(prop.cases) != 1:
        raise InvalidFileError(f"{prop.source}: the property has {len(prop.cases)} input boxes, "
                               "not one")
    return prop.cases[0].lower.copy(), prop.cases[0].upper.copy()


def _read_text(path_or_text):
    text = str(path_or_text)
    if "(" in text:
        return text, "<vnnlib text>"
    try:
        with open(text) as handle:
            return handle.read(), text
    except OSError as err:
        raise InvalidFileError(f"{text}: cannot read ({err})") from err


def _declared_kind(expression, source):
    match = _VARIABLE.match(expression[1]) if len(expression) == 3 else None
    if match is None or expression[2] != "Real":
        raise InvalidFileError(f"{source}: unsupported declaration {_show(expression)} "
                               "(expected (declare-const X_i Real) or (declare-const Y_j Real))")
    return match.group(1)


def _dimension(indices, kind, source):
    """Number of ``kind`` variables declared (they must be numbered 0..n-1)."""
    if indices != set(range(len(indices))):
        raise InvalidFileError(
            f"{source}: {kind} variables must be {kind}_0..{kind}_n without gaps")
    return len(indices)


def _dnf(formula, source):
    """The formula as a list of terms, each a list of comparisons ``[op, left, right]``."""
    if not isinstance(formula, list) or not formula:
        raise InvalidFileError(f"{source}: expected a formula, got {_show(formula)}")
    head = formula[0]
    if head in ("<=", ">="):
        if len(formula) != 3:
            raise InvalidFileError(f"{source}: comparison {_show(formula)} needs two operands")
        return [[formula]]
    if head == "and":
        terms = [[]]
        for part in formula[1:]:
            terms = [left + right for left, right in itertools.product(terms, _dnf(part, source))]
            if len(terms) > _MAX_TERMS:
                raise InvalidFileError(f"{source}: more than {_MAX_TERMS} cases after expanding "
                                       "'or' inside 'and'")
        return terms
    if head == "or":
        return [term for part in formula[1:] for term in _dnf(part, source)]
    raise InvalidFileError(f"{source}: unsupported operator {head!r} in {_show(formula)} "
                           "(supported: and, or, <=, >=)")


def _split_term(term, d, m, source):
    """(input box key, output rows) of one conjunction of comparisons."""
    lower, upper = [None] * d, [None] * d
    rows = []
    for op, left, right in term:
        sides = [_operand(left, d, m, source), _operand(right, d, m, source)]
        if op == ">=":
            sides.reverse()  # now: sides[0] <= sides[1]
        kinds = {side[0] for side in sides} - {"const"}
        if kinds == {"X"} and "const" in {side[0] for side in sides}:
            (kind0, value0), (kind1, value1) = sides
            if kind0 == "X":
                upper[value0] = value1 if upper[value0] is None else min(upper[value0], value1)
            else:
                lower[value1] = value0 if lower[value1] is None else max(lower[value1], value0)
        elif kinds == {"Y"}:
            rows.append(_output_row(sides, m))
        else:
            raise InvalidFileError(
                f"{source}: unsupported comparison ({op} {_show(left)} {_show(right)}): "
                "inputs may only be compared with numbers, outputs with outputs or numbers")
    missing = [f"X_{i}" for i in range(d) if lower[i] is None or upper[i] is None]
    if missing:
        raise InvalidFileError(f"{source}: inputs {', '.join(missing)} lack a lower or an upper "
                               "bound in some case")
    return (tuple(lower), tuple(upper)), rows


def _operand(token, d, m, source):
    if isinstance(token, list):
        raise InvalidFileError(f"{source}: unsupported operand {_show(token)} (expected a "
                               "variable or a number)")
    match = _VARIABLE.match(token)
    if match:
        kind, index = match.group(1), int(match.group(2))
        if index >= (d if kind == "X" else m):
            raise InvalidFileError(f"{source}: {token} is not declared")
        return kind, index
    try:
        return "const", Fraction(token)
    except (ValueError, ZeroDivisionError) as err:
        raise InvalidFileError(f"{source}: cannot read {token!r} as a number or a variable") \
            from err


def _output_row(sides, m):
    """Coefficients and right-hand side of ``sides[0] <= sides[1]`` as ``c y <= d``."""
    c, rhs = np.zeros(m), Fraction(0)
    for sign, (kind, value) in zip((1, -1), sides):
        if kind == "Y":
            c[value] += sign
        else:
            rhs -= sign * value
    return c, rhs


def _case(box, disjuncts, d, m, source):
    lower, upper = box
    if any(lo > hi for lo, hi in zip(lower, upper)):
        bad = [f"X_{i}" for i in range(d) if lower[i] > upper[i]]
        raise InvalidFileError(f"{source}: empty input box (lower > upper for {', '.join(bad)})")
    unsafe = []
    for rows in disjuncts:
        if not rows:
            C, rhs = np.zeros((0, m)), ()
        else:
            C, rhs = np.array([row[0] for row in rows]), tuple(row[1] for row in rows)
        unsafe.append(OutputPolytope(C, np.array([float(v) for v in rhs]), rhs))
    return Case(np.array([float(v) for v in lower]), np.array([float(v) for v in upper]),
                tuple(lower), tuple(upper), tuple(unsafe))


def _show(expression):
    if isinstance(expression, list):
        return "(" + " ".join(_show(e) for e in expression) + ")"
    return str(expression)
