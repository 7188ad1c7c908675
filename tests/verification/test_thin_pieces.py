"""Pieces thinner than the exact phase's radius tolerance: a sliver the engine drops is not
assumed empty. Where it hides a violation the answer must not be "holds" (on the old
checker, which summed volumes, the search's "holds" was accepted)."""

import numpy as np
import pytest

from polyrelu import Network, PolyreluError
from polyrelu.verification import search
from polyrelu.verification.checked import verify
from polyrelu.verification.checker import check_certificate
from polyrelu.verification.vnnlib import read_vnnlib


def threshold_property(t):
    return read_vnnlib("(declare-const X_0 Real) (declare-const Y_0 Real) (assert (>= X_0 -1.0))"
                       f" (assert (<= X_0 1.0)) (assert (>= Y_0 {float(t)!r}))")


def bump(width):
    """``(relu(x) - 2 relu(x - w) + relu(x - 2w)) / w``: a tent of height 1 on [0, 2w]."""
    return Network([np.ones((3, 1)), np.array([[1.0, -2.0, 1.0]]) / width],
                   [np.array([0.0, -width, -2 * width]), np.zeros(1)])


@pytest.mark.parametrize("width", [1e-10, 1e-12])
def test_a_violation_inside_a_sliver_is_never_reported_holds(width):
    net, prop = bump(width), threshold_property(0.5)
    assert net.forward(np.array([[width]]))[0, 0] >= 0.5  # oracle: x = w is a counterexample
    raw = search.verify(net, prop, exact_threshold=1000)
    if raw.status == "holds":  # the search dropped the sliver: its certificate must fail
        with pytest.raises(PolyreluError, match="not provably so"):
            check_certificate(net, prop, raw.certificate)
    result = verify(net, prop, exact_threshold=1000)
    assert result.status in ("violated", "unknown")
    if result.status == "unknown" and raw.status == "holds":
        assert "not provably so" in result.stats["certificate_rejected"]


@pytest.mark.parametrize("gap", [1e-6, 1e-10, 1e-14])
def test_a_holding_property_with_a_sliver_is_holds_with_a_valid_certificate_or_unknown(gap):
    """relu(x) - relu(x - gap) + relu(-x) / 2 <= 1/2 + gap < 3/4 on [-1, 1]."""
    net = Network([np.array([[1.0], [1.0], [-1.0]]), np.array([[1.0, -1.0, 0.5]])],
                  [np.array([0.0, -gap, 0.0]), np.zeros(1)])
    prop = threshold_property(0.75)
    result = verify(net, prop, exact_threshold=1000)
    assert result.status in ("holds", "unknown")
    if result.status == "holds":
        check_certificate(net, prop, result.certificate)
    if gap >= 1e-6:  # wider than the tolerance: decided exactly
        assert result.status == "holds"
