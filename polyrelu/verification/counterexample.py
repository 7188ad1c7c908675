"""Counterexamples to a property, re-checked exactly (rational arithmetic on the float64
weights) and, for ONNX files, with onnxruntime."""

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..geometry.exact import exact_layers, to_fractions

__all__ = ["Counterexample", "check_counterexample_exact", "check_counterexample_onnx"]


@dataclass(frozen=True)
class Counterexample:
    """An input of case ``case`` mapped into unsafe polytope ``disjunct``.

    ``x_exact`` is the rational point that passed the exact re-check (a tuple of
    Fractions); ``x`` is its float64 rounding (equal to it unless the only
    counterexamples are points like vertices that float64 cannot represent);
    ``output`` is the network's float64 output at ``x``.
    """

    x: np.ndarray
    output: np.ndarray
    case: int
    disjunct: int
    x_exact: tuple

    @property
    def exact(self):
        """Whether the float64 point ``x`` is itself an exact counterexample."""
        return all(Fraction(float(v)) == w for v, w in zip(self.x, self.x_exact))


def check_counterexample_exact(network, case, disjunct, x):
    """Whether ``x`` lies in the case's box and ``f(x)`` in unsafe polytope ``disjunct``,
    in exact rational arithmetic on the network's float64 weights and the property's
    decimal constants. ``x`` holds floats or Fractions. For a property with input rows
    the polytope is over ``(f(x), x)``."""
    x = to_fractions(x)
    if any(v < lo or v > hi for v, lo, hi in zip(x, case.lower_exact, case.upper_exact)):
        return False
    y = exact_layers(network, x)[-1]
    unsafe = case.unsafe[disjunct]
    if unsafe.C.shape[1] == len(y) + len(x):  # a property with input rows: over (y, x)
        y = list(y) + list(x)
    return all(sum((c * v for c, v in zip(to_fractions(row), y) if c), Fraction(0)) <= rhs
               for row, rhs in zip(unsafe.C, unsafe.d_exact))


def check_counterexample_onnx(path, prop, counterexample, tol=1e-4):
    """Re-run an ONNX model (a path, or the model's bytes) with onnxruntime at the
    counterexample (float32 input, as VNN-COMP does, or float64 for a model that takes
    doubles) and return ``(passes, output, worst_violation)``: ``passes`` when the output
    is within ``tol`` of the unsafe polytope's rows."""
    import onnxruntime

    model = path if isinstance(path, bytes) else str(path)
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    entry = session.get_inputs()[0]
    shape = [dim if isinstance(dim, int) else 1 for dim in entry.shape]
    dtype = np.float64 if entry.type == "tensor(double)" else np.float32
    x = np.asarray(counterexample.x, dtype=dtype).reshape(shape)
    output = np.asarray(session.run(None, {entry.name: x})[0], dtype=np.float64).ravel()
    unsafe = prop.cases[counterexample.case].unsafe[counterexample.disjunct]
    values = np.concatenate([output, counterexample.x]) if prop.input_rows else output
    worst = float(np.max(unsafe.C @ values - unsafe.d, initial=-np.inf))
    return worst <= tol, output, worst
