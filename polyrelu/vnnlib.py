"""Reading VNN-LIB property files (the input box, for now).

VNN-LIB is an SMT-LIB subset: ``(declare-const X_i Real)`` and ``(assert ...)``
with ``<=``, ``>=``, ``and``, ``or``. :func:`input_box` reads the bounds that
top-level assertions put on the input variables ``X_i``.
"""

import re

import numpy as np

from .errors import InvalidFileError

__all__ = ["parse_sexpressions", "input_box"]

_TOKEN = re.compile(r"\(|\)|[^\s()]+")


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


def input_box(path):
    """Lower and upper bounds of the inputs ``X_0..X_{d-1}`` asserted in a VNN-LIB file.

    Returns
    -------
    (ndarray, ndarray)
        ``lower`` and ``upper``, each of shape (d,).

    Raises
    ------
    InvalidFileError
        If an input has no lower or no upper bound, or the file is malformed.
    """
    try:
        text = open(path).read()
    except OSError as err:
        raise InvalidFileError(f"{path}: cannot read ({err})") from err
    expressions = parse_sexpressions(text)
    names = [e[1] for e in expressions if e[:1] == ["declare-const"] and e[1].startswith("X_")]
    if not names:
        raise InvalidFileError(f"{path}: declares no input variable X_i")
    d = len(names)
    lower, upper = np.full(d, -np.inf), np.full(d, np.inf)
    for expression in expressions:
        if expression[:1] == ["assert"] and isinstance(expression[1], list):
            _bound(expression[1], lower, upper)
    missing = [i for i in range(d) if not (np.isfinite(lower[i]) and np.isfinite(upper[i]))]
    if missing:
        raise InvalidFileError(f"{path}: inputs {['X_%d' % i for i in missing]} are not bounded")
    return lower, upper


def _bound(term, lower, upper):
    if len(term) != 3 or term[0] not in ("<=", ">="):
        return
    op, left, right = term
    if isinstance(left, str) and left.startswith("X_") and _is_number(right):
        index, value = int(left[2:]), float(right)
    elif isinstance(right, str) and right.startswith("X_") and _is_number(left):
        index, value = int(right[2:]), float(left)
        op = "<=" if op == ">=" else ">="
    else:
        return
    if op == "<=":
        upper[index] = min(upper[index], value)
    else:
        lower[index] = max(lower[index], value)


def _is_number(token):
    try:
        float(token)
    except (TypeError, ValueError):
        return False
    return True
