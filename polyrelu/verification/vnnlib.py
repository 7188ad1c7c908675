"""Reading VNN-LIB property files.

VNN-LIB is an SMT-LIB subset. This reader accepts what the VNN-COMP benchmarks
(ACAS Xu among them) use: ``(declare-const X_i Real)`` for inputs,
``(declare-const Y_j Real)`` for outputs, and ``(assert F)`` where F is built from
``and``, ``or`` and the comparisons ``<=``, ``>=`` between linear terms: variables,
numbers, ``(+ a b ...)``, ``(- a)``, ``(- a b ...)`` and ``(* c ... a)`` with at most one
factor that is not a constant. A comparison of one input with numbers bounds it
(``(<= (* 2 X_0) 1)``); any other comparison is a linear constraint on the outputs, or
on outputs and inputs together (a general input polytope, see :class:`Property`). Every
other construct is refused with an error that names it.

The assertions describe the *unsafe* set: a property is **violated** (``sat`` in
VNN-COMP) when some input satisfies all of them, and **holds** (``unsat``)
otherwise. The conjunction of the assertions is put in disjunctive normal form;
comparisons that mention only inputs give an input box, the others give linear
constraints ``C y <= d`` on the outputs. A :class:`Property` is a list of
:class:`Case` objects, one per distinct input box, each with the disjunction of
output polyhedra that are unsafe there.

Numbers are kept exactly (as :class:`fractions.Fraction` of the decimal text)
next to their float64 values, so counterexamples can be re-checked exactly. The
coefficients of an output row (``C``) are the float64 roundings of their exact values
(exact for the integers and dyadic fractions benchmarks use): the property polyrelu
decides, and re-checks counterexamples against, is the one with those coefficients.

The text is untrusted: the reader is iterative (any nesting depth) and linear in
the file's size (0.2 to 0.3 s and 10 to 16 MB of memory per MB of text, see
``benchmarks/bench_vnnlib.py``); a number is refused beyond 400 characters, a
decimal exponent beyond 400 in magnitude or the float64 range, a coefficient of a
linear term beyond the float64 range or 4096 bits; the expansion into
cases stops at 100,000 cases or 5e7 comparisons, the output matrices at 2e7
entries; an error message quotes at most 80 characters of the input.
"""

import itertools
import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..errors import InvalidFileError
from ..network.loaders import gzip_fallback, read_gzip

__all__ = ["parse_sexpressions", "read_vnnlib", "Property", "Case", "OutputPolytope",
           "input_box"]

_TOKEN = re.compile(r";[^\n]*|\(([^();]*)\)|\(|\)|[^\s();]+")
_NAME_START = frozenset("XY<>=adRor")
_VARIABLE = re.compile(r"^([XY])_(\d{1,9})$")
_EXPONENT = re.compile(r"[eE]([+-]?\d+)$")
_DECIMAL = re.compile(r"([+-]?)(\d+)(?:\.(\d+))?$")
_ZERO = Fraction(0)
_MAX_TERMS = 100_000
_MAX_COMPARISONS = 50_000_000
_MAX_NUMBER_LENGTH = 400
_MAX_EXPONENT = 400
_QUOTE = 80
_MAX_MATRIX = 20_000_000
_FLOAT_MAX = Fraction(np.finfo(np.float64).max)


def parse_sexpressions(text):
    """Parse SMT-LIB text (comments ``;`` removed) into nested Python lists of strings.

    The parser is iterative (no recursion limit on the nesting depth) and linear in
    the length of the text.

    Raises
    ------
    InvalidFileError
        If the parentheses do not balance.

    Examples
    --------
    >>> parse_sexpressions("(assert (<= X_0 1)) ; a comment")
    [['assert', ['<=', 'X_0', '1']]]
    """
    return list(_expressions(text))


def _expressions(text):
    """The top-level expressions of ``text`` one by one (a token or a nested list).

    An innermost list (no parentheses inside) is matched whole and split, which
    keeps the Python-level work per token small; names and operators are shared
    between their occurrences, which keeps large files small in memory.
    """
    stack, current, names = [], [], {}
    for match in _TOKEN.finditer(text):
        flat = match.group(1)
        if flat is not None:
            finished = [names.setdefault(t, t) if t[0] in _NAME_START else t
                        for t in flat.split()]
            if not stack:
                yield finished
            else:
                current.append(finished)
            continue
        token = match.group()
        if token == "(":
            stack.append(current)
            current = []
        elif token == ")":
            if not stack:
                raise InvalidFileError("unbalanced ')' in VNN-LIB text")
            finished, current = current, stack.pop()
            if stack:
                current.append(finished)
            else:
                yield finished
        elif token[0] != ";":
            if stack:
                current.append(token)
            else:
                yield token
    if stack:
        raise InvalidFileError("unbalanced '(' in VNN-LIB text")


@dataclass(frozen=True)
class OutputPolytope:
    """The output set ``{y : C y <= d}`` (one disjunct of the unsafe set).

    ``d_exact`` holds the right-hand sides as Fractions; ``C`` holds the float64
    coefficients (small integers from comparisons of variables; linear terms' coefficients
    rounded to float64, see the module's notes). Its columns are the outputs, then, for a
    property with ``input_rows``, the inputs.
    """

    C: np.ndarray
    d: np.ndarray
    d_exact: tuple

    def contains(self, y, tol=0.0):
        """Whether ``C y <= d + tol`` (float check; see :mod:`polyrelu.verification.search`
        for exact)."""
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
    """A VNN-LIB property: violated iff some case has an input mapped into an unsafe polytope.

    With ``input_rows`` some constraints mix inputs (several inputs, or inputs and
    outputs): then every unsafe polytope is over ``(y, x)``, the outputs followed by the
    inputs (``C`` has ``output_dim + input_dim`` columns), and the case's box is the
    bounding box its one-input bounds give; the search and the checker work on the
    network extended to output its inputs too
    (:func:`polyrelu.verification.certificate.verification_network`).
    """

    input_dim: int
    output_dim: int
    cases: tuple
    source: str = ""
    input_rows: bool = False


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
    names = {"X": set(), "Y": set()}
    conjunction, classify = _Open(["and"]), _Comparisons(source).classify
    for expression in _expressions(text):  # each assertion expanded as it is read
        head = expression[0] if isinstance(expression, list) and expression else None
        if head == "declare-const":
            names[_declared_kind(expression, source)].add(int(expression[1][2:]))
        elif head == "assert" and len(expression) == 2:
            part = _dnf(expression[1], source, classify)
            conjunction.combine(part, sum(map(len, part)), source)
        else:
            raise InvalidFileError(f"{source}: unsupported top-level expression "
                                   f"{_show(expression)} (expected declare-const or assert)")
    d, m = _dimension(names["X"], "X", source), _dimension(names["Y"], "Y", source)
    if d == 0:
        raise InvalidFileError(f"{source}: declares no input variable X_i")
    cases = _group_by_box(_split_term(term, d, source) for term in conjunction.terms)
    input_rows = any(isinstance(key, tuple) for _, disjuncts in cases for rows in disjuncts
                     for row in rows for key, _ in row[0])
    columns = m + d if input_rows else m
    built = tuple(_case(box, disjuncts, d, m, columns, source) for box, disjuncts in cases)
    return Property(d, m, built, source, input_rows)


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
    """The text and its source's name: the text itself, a file, or a gzip file
    (``x.vnnlib.gz``, also read for ``x.vnnlib`` when only it exists; decompressed up to
    :data:`polyrelu.network.loaders.MAX_DECOMPRESSED_BYTES`)."""
    text = str(path_or_text)
    if "(" in text:
        return text, "<vnnlib text>"
    path = gzip_fallback(text)
    try:
        if path.name.endswith(".gz"):
            return read_gzip(path).decode("utf-8"), str(path)
        with open(text, encoding="utf-8") as handle:
            return handle.read(), text
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidFileError(f"{_show(text)}: cannot read ({_show(str(err))})") from err


def _declared_kind(expression, source):
    match = (_VARIABLE.match(expression[1])
             if len(expression) == 3 and isinstance(expression[1], str) else None)
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


def _dnf(formula, source, classify):
    """The formula as a list of terms, each a list of comparisons ``classify([op, left,
    right])``.

    Iterative (an explicit stack of open ``and``/``or`` nodes), so any nesting depth
    is read; the expansion is refused beyond ``_MAX_TERMS`` terms or
    ``_MAX_COMPARISONS`` comparisons in all, so its cost stays bounded.
    """
    result = _formula_leaf(formula, source, classify)
    if result is not None:
        return result
    stack = [_Open(formula)]
    while True:
        frame = stack[-1]
        if frame.index < len(frame.node):
            child = frame.node[frame.index]
            frame.index += 1
            part = _formula_leaf(child, source, classify)
            if part is None:
                stack.append(_Open(child))
                continue
            size = 1
        else:
            stack.pop()
            if not stack:
                return frame.terms
            part, size = frame.terms, frame.size
            frame = stack[-1]
        frame.combine(part, size, source)


class _Open:
    """An ``and``/``or`` node being expanded: its children read so far, as a DNF."""

    def __init__(self, node):
        self.node, self.index = node, 1
        self.terms = [[]] if node[0] == "and" else []
        self.size = 0  # comparisons in all terms

    def combine(self, part, size, source):
        """Take in the DNF ``part`` (``size`` comparisons in all) of the next child."""
        if self.node[0] == "or":
            self.terms.extend(part)
            self.size += size
        elif len(part) == 1:  # a conjunction, the common case: extend in place (linear)
            for term in self.terms:
                term.extend(part[0])
            self.size += len(self.terms) * size
        else:
            self.size = len(part) * self.size + len(self.terms) * size
            self._check(source)
            self.terms = [left + right for left, right in itertools.product(self.terms, part)]
        self._check(source)

    def _check(self, source):
        if len(self.terms) > _MAX_TERMS or self.size > _MAX_COMPARISONS:
            raise InvalidFileError(
                f"{source}: more than {_MAX_TERMS} cases or {_MAX_COMPARISONS} comparisons "
                "after expanding 'or' inside 'and'")


def _formula_leaf(formula, source, classify):
    """``[[classify(formula)]]`` for a comparison, None for an ``and``/``or`` node; else an
    error."""
    if not isinstance(formula, list) or not formula:
        raise InvalidFileError(f"{source}: expected a formula, got {_show(formula)}")
    head = formula[0]
    if head in ("<=", ">="):
        if len(formula) != 3:
            raise InvalidFileError(f"{source}: comparison {_show(formula)} needs two operands")
        return [[classify(formula)]]
    if head in ("and", "or"):
        return None
    raise InvalidFileError(f"{source}: unsupported operator {_show(head)!r} in "
                           f"{_show(formula)} (supported: and, or, <=, >=)")


def _split_term(term, d, source):
    """(input box, output rows) of one conjunction of classified comparisons."""
    lower, upper = [None] * d, [None] * d
    rows = []
    for kind, index, value in term:
        if index is not None and index >= d:
            raise InvalidFileError(f"{source}: X_{index} is not declared")
        if kind == "upper":
            old = upper[index]
            upper[index] = value if old is None or value < old else old
        elif kind == "lower":
            old = lower[index]
            lower[index] = value if old is None or value > old else old
        else:
            rows.append(value)
    missing = [i for i in range(d) if lower[i] is None or upper[i] is None]
    if missing:
        raise InvalidFileError(f"{source}: inputs {_names(missing)} lack a lower or an upper "
                               "bound in some case")
    return (tuple(lower), tuple(upper)), rows


class _Comparisons:
    """Reads comparisons (their variables once each).

    ``classify`` gives ``("upper", i, value)`` for ``X_i <= value``, ``("lower", i,
    value)`` for ``X_i >= value`` and ``("row", None, (c, rhs))`` for a constraint
    ``c y <= rhs`` on the outputs (``c``: pairs of an output index and a coefficient) or
    on outputs and inputs (an input's index is the pair ``("X", i)``).
    """

    def __init__(self, source):
        self.source = source
        self.variables = {}

    def classify(self, comparison):
        """What ``comparison`` (``[op, left, right]``) says, see the class."""
        op, left, right = comparison
        if isinstance(left, list) or isinstance(right, list):
            return self._linear(comparison)
        sides = [self._operand(left), self._operand(right)]
        if op == ">=":
            sides.reverse()  # now: sides[0] <= sides[1]
        kinds = (sides[0][0], sides[1][0])
        if kinds == ("X", "const"):
            return "upper", sides[0][1], sides[1][1]
        if kinds == ("const", "X"):
            return "lower", sides[1][1], sides[0][1]
        if "X" not in kinds and kinds != ("const", "const"):
            return "row", None, _output_row(sides)
        return self._linear(comparison)

    def _linear(self, comparison):
        """A comparison of linear terms: ``e <= 0`` with ``e`` the difference of its sides,
        a bound when ``e`` has one input variable, else a row (see the class)."""
        op, left, right = comparison
        small, large = (left, right) if op == "<=" else (right, left)
        terms, constant = _difference(_linear_form(small, self.source),
                                      _linear_form(large, self.source))
        if not terms:
            raise InvalidFileError(f"{self.source}: comparison without variables "
                                   f"{_show(comparison)}")
        if len(terms) == 1 and next(iter(terms))[0] == "X":
            ((_, index), a), = terms.items()
            return ("upper" if a > 0 else "lower"), index, -constant / a
        return "row", None, (tuple((j if kind == "Y" else (kind, j), a)
                                   for (kind, j), a in terms.items()), -constant)

    def _operand(self, token):
        known = self.variables.get(token)
        if known is not None:
            return known
        kind, value = _read_operand(token, self.source)
        if kind == "const":
            return kind, value
        known = self.variables[token] = (kind, value)
        return known


def _group_by_box(terms):
    """``[(box, [rows, ...]), ...]``: the terms' output rows grouped by equal input box.

    Terms that share their bound comparisons share the bound objects, so they are
    grouped by the ids of the bounds first (cheap); only if that leaves several
    groups are those merged by value (exact, from numerators and denominators).
    """
    groups = {}
    for box, rows in terms:
        key = (tuple(map(id, box[0])), tuple(map(id, box[1])))
        groups.setdefault(key, (box, []))[1].append(rows)
    if len(groups) <= 1:
        return list(groups.values())
    merged = {}
    for box, disjuncts in groups.values():
        key = tuple((v.numerator, v.denominator) for v in box[0] + box[1])
        merged.setdefault(key, (box, []))[1].extend(disjuncts)
    return list(merged.values())


def _names(indices):
    """``X_i, X_j, ...`` for the first few indices (and how many more)."""
    shown = ", ".join(f"X_{i}" for i in indices[:5])
    return shown + (f" and {len(indices) - 5} more" if len(indices) > 5 else "")


def _read_operand(token, source):
    """``("X", i)``, ``("Y", j)`` or ``("const", Fraction)`` for one token.

    Numbers are refused when longer than ``_MAX_NUMBER_LENGTH`` characters, with a
    decimal exponent beyond ``_MAX_EXPONENT`` in magnitude (``1e99999999`` would
    build a Fraction of 10^8 digits), or outside the float64 range.
    """
    match = _VARIABLE.match(token)
    if match:
        return match.group(1), int(match.group(2))
    exponent = _EXPONENT.search(token)
    if len(token) > _MAX_NUMBER_LENGTH or (
            exponent and abs(int(exponent.group(1))) > _MAX_EXPONENT):
        raise InvalidFileError(f"{source}: refusing the number {_show(token)!r}: at most "
                               f"{_MAX_NUMBER_LENGTH} characters and exponents of magnitude "
                               f"at most {_MAX_EXPONENT}")
    decimal = _DECIMAL.match(token)
    try:
        value = (Fraction(int(decimal[1] + decimal[2] + (decimal[3] or "")),
                          10 ** len(decimal[3] or "")) if decimal else Fraction(token))
    except (ValueError, ZeroDivisionError) as err:
        raise InvalidFileError(f"{source}: cannot read {_show(token)!r} as a number or a "
                               "variable") from err
    magnitude = len(token) + (int(exponent.group(1)) if exponent else 0)
    if magnitude > 300 and abs(value) > _FLOAT_MAX:  # else at most 10^300
        raise InvalidFileError(f"{source}: the number {_show(token)!r} is outside the float64 "
                               "range")
    return "const", value


_LINEAR_HEADS = frozenset("+-*")
_MAX_COEFFICIENT_BITS = 4096


class _Form:
    """A linear term ``scale * sum(terms) + constant`` being built: ``terms`` maps
    ``(kind, index)`` to a Fraction. The lazy ``scale`` keeps ``(* c (* c ...))`` linear."""

    def __init__(self, terms=None, constant=_ZERO):
        self.terms, self.scale, self.constant = terms or {}, Fraction(1), constant

    def coefficients(self):
        return {key: value * self.scale for key, value in self.terms.items() if value}


def _linear_form(expression, source):
    """The :class:`_Form` of a linear term built from variables, numbers, ``+``, ``-`` and
    ``*`` (by constants), read iteratively (any nesting depth, linear in its size)."""
    if not isinstance(expression, list):
        return _leaf_form(expression, source)
    frames = [_open_term(expression, source)]
    while True:
        node, parts = frames[-1]
        if len(parts) + 1 < len(node):
            child = node[len(parts) + 1]
            if isinstance(child, list):
                frames.append(_open_term(child, source))
            else:
                parts.append(_leaf_form(child, source))
            continue
        frames.pop()
        form = _combine(node, parts, source)
        if not frames:
            return form
        frames[-1][1].append(form)


def _open_term(node, source):
    if not node or node[0] not in _LINEAR_HEADS or len(node) < 2:
        raise InvalidFileError(f"{source}: unsupported operand {_show(node)} (expected a "
                               "variable, a number, or +, - or * of those)")
    return node, []


def _leaf_form(token, source):
    kind, value = _read_operand(token, source)
    return _Form(constant=value) if kind == "const" else _Form({(kind, value): Fraction(1)})


def _combine(node, parts, source):
    """The form of ``(+ parts...)``, ``(- parts...)`` or ``(* parts...)``."""
    head = node[0]
    if head == "*":
        return _product(node, parts, source)
    if head == "-":
        for part in parts if len(parts) == 1 else parts[1:]:
            part.scale, part.constant = -part.scale, -part.constant
    base = max(parts, key=lambda part: len(part.terms))  # merge the smaller into the larger
    for part in parts:
        if part is base:
            continue
        ratio = part.scale if base.scale == 1 else part.scale / base.scale
        for key, value in part.terms.items():
            base.terms[key] = _checked(base.terms.get(key, _ZERO) + value * ratio, node,
                                       source)
        if part.constant:
            base.constant = _checked(base.constant + part.constant, node, source)
    return base


def _product(node, parts, source):
    """The form of ``(* parts...)``: at most one part may hold variables."""
    variable = [part for part in parts if part.terms]
    if len(variable) > 1:
        raise InvalidFileError(f"{source}: {_show(node)} is not linear (a product of "
                               "two variables)")
    factor = Fraction(1)
    for part in parts:
        if not part.terms and part.constant != 1:
            factor = _checked(factor * part.constant, node, source)
    if not variable:
        return _Form(constant=factor)
    form = variable[0]
    if not factor:
        return _Form()
    if factor != 1:
        form.constant = _checked(form.constant * factor, node, source)
        form.scale = _checked(form.scale * factor, node, source)
    return form


def _checked(value, node, source):
    """``value``, refused when beyond the float64 range (about 2^+-1022) or with more than
    ``_MAX_COEFFICIENT_BITS`` bits in its numerator or denominator (too slow to carry)."""
    top, bottom = value.numerator.bit_length(), value.denominator.bit_length()
    if value and abs(top - bottom) > 1022:
        raise InvalidFileError(f"{source}: a coefficient or constant of {_show(node)} is "
                               "outside the float64 range")
    if max(top, bottom) > _MAX_COEFFICIENT_BITS:
        raise InvalidFileError(f"{source}: a coefficient or constant of {_show(node)} is too "
                               f"precise (over {_MAX_COEFFICIENT_BITS} bits)")
    return value


def _difference(small, large):
    """``(coefficients, constant)`` of ``small - large``."""
    terms = small.coefficients()
    for key, value in large.coefficients().items():
        terms[key] = terms.get(key, _ZERO) - value
    return {key: value for key, value in terms.items() if value}, \
        small.constant - large.constant


def _output_row(sides):
    """Coefficients (pairs of output index and coefficient) and right-hand side of
    ``sides[0] <= sides[1]`` as ``c y <= d``."""
    c, rhs = {}, _ZERO
    for sign, (kind, value) in zip((1, -1), sides):
        if kind == "Y":
            c[value] = c.get(value, 0) + sign
        elif rhs is _ZERO:
            rhs = value if sign < 0 else -value
        else:
            rhs = rhs + value if sign < 0 else rhs - value
    return tuple(c.items()), rhs


def _output_matrix(rows, d, m, columns, source):
    """The dense matrix C of the rows (output ``j`` in column ``j``, input ``i`` in column
    ``m + i``), refused beyond ``_MAX_MATRIX`` entries."""
    if len(rows) * columns > _MAX_MATRIX:
        raise InvalidFileError(f"{source}: {len(rows)} output constraints on {columns} "
                               f"variables make a matrix of more than {_MAX_MATRIX} entries")
    C = np.zeros((len(rows), columns))
    for i, (coefficients, _) in enumerate(rows):
        for j, value in coefficients:
            if isinstance(j, tuple):
                if j[1] >= d:
                    raise InvalidFileError(f"{source}: X_{j[1]} is not declared")
                j = m + j[1]
            elif j >= m:
                raise InvalidFileError(f"{source}: Y_{j} is not declared")
            C[i, j] = value
    return C


def _case(box, disjuncts, d, m, columns, source):
    lower, upper = box
    bad = [i for i in range(d) if lower[i] > upper[i]]
    if bad:
        raise InvalidFileError(f"{source}: empty input box (lower > upper for {_names(bad)})")
    unsafe = []
    for rows in disjuncts:
        rhs = tuple(row[1] for row in rows)
        unsafe.append(OutputPolytope(_output_matrix(rows, d, m, columns, source),
                                     np.array([float(v) for v in rhs]), rhs))
    return Case(np.array([float(v) for v in lower]), np.array([float(v) for v in upper]),
                tuple(lower), tuple(upper), tuple(unsafe))


def _show(expression):
    """SMT-LIB text of an expression, at most about ``_QUOTE`` characters (iterative)."""
    pieces, size, stack, space = [], 0, [iter([expression])], False
    while stack and size <= _QUOTE:
        item = next(stack[-1], None)  # parsed lists never hold None
        if item is None:
            stack.pop()
            piece, space = (")" if stack else ""), True
        elif isinstance(item, list):
            piece, space = (" (" if space else "("), False
            stack.append(iter(item))
        else:
            piece, space = (" " if space else "") + str(item)[:_QUOTE + 1], True
        pieces.append(piece)
        size += len(piece)
    text = "".join(pieces)
    return text if size <= _QUOTE else text[:_QUOTE - 3] + "..."
