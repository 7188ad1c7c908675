"""Energy of features layer by layer, and energy questions over a whole input polytope.

For a filter-bank feature extractor (:mod:`polyrelu.analysis.filterbanks`; Wiatowski, Grohs and
Boelcskei, "Energy propagation in deep convolutional neural networks"), the energy
``W_n(x) = ||U_n(x)||^2`` propagated to layer n, the output energy ``||chi * U_n||^2``
of each layer and the energy the non-linearity discards (0 for the modulus,
``||ReLU(-z)||^2`` for ReLU). With the modulus and a Parseval bank ``{chi} + filters``,
``||x||^2 = sum_{n<N} ||chi * U_n||^2 + W_N(x)`` for every N.

Over an input polytope (using the activation regions), for any network:

- :func:`energy_range`: the exact minimum and maximum of the energy ``||h(x)||^2`` of the
  output (or of a hidden layer's features). On a region ``h`` is affine, so the energy is
  a convex quadratic: its minimum over the region is a convex QP (solved with cvxpy) and
  its maximum is attained at a vertex (convex function on a polytope), read off the
  region's vertices. The *ratio* ``||h(x)||^2 / ||x||^2`` is not offered: on a region it
  is a quotient of quadratics (a Rayleigh quotient over a polyhedral cone when there are
  no biases), neither convex nor concave, and deciding its extremes is a copositivity
  question (NP-hard in general), so no convex program gives it.
- :func:`null_set_check`: is there ``x != 0`` in the domain with ``network(x) = 0``? On a
  region the zero set is the polytope ``{x in region : W_eff x + b_eff = 0}``; LPs
  maximising and minimising every coordinate over it either find a point away from 0 (a
  witness) or show it is ``{0}`` or empty (the certificate, region by region).
"""

from dataclasses import dataclass

import numpy as np

from ..geometry.lp import LPSolver
from ..regions.walk import enumerate_regions

__all__ = ["EnergyReport", "propagation_energies", "layer_energies", "EnergyRange",
           "energy_range", "NullSetResult", "null_set_check", "plot_energy"]


@dataclass(frozen=True)
class EnergyReport:
    """Energies of one signal through a filter-bank feature extractor.

    Attributes
    ----------
    propagated : ndarray, shape (depth + 1,)
        ``W_n = ||U_n||^2``, summed over all signals of layer n; ``W_0 = ||x||^2``.
    outputs : ndarray, shape (depth,)
        ``||chi * U_n||^2`` for ``n < depth`` (zeros without an output filter).
    discarded : ndarray, shape (depth,)
        Energy the non-linearity of layer ``n + 1`` removes: ``||z||^2 - ||sigma(z)||^2``.
    """

    propagated: np.ndarray
    outputs: np.ndarray
    discarded: np.ndarray

    def kept(self, layers):
        """Output energy of the first ``layers`` layers, ``sum_{n < layers} outputs[n]``."""
        return float(self.outputs[:layers].sum())

    def layers_needed(self, eps):
        """Smallest N with ``W_N <= eps ||x||^2`` (so the first N layers keep 1 - eps of the
        energy, for Parseval banks with the modulus); None if no computed layer does."""
        small = np.flatnonzero(self.propagated <= eps * self.propagated[0])
        return int(small[0]) if small.size else None


def propagation_energies(filters, signal, depth, *, output_filter=None,
                         nonlinearity="modulus"):
    """Layer energies of ``signal`` through the feature extractor, by FFT convolutions.

    Computed independently of the dense matrices of :mod:`polyrelu.analysis.filterbanks`
    (circular convolution as a product of DFTs).

    Examples
    --------
    The alternating signal: all its energy reaches layer 1 and none layer 2.

    >>> from polyrelu.analysis.filterbanks import haar_filters
    >>> low, high = haar_filters()
    >>> report = propagation_energies([high], [1.0, -1.0] * 4, 2, output_filter=low)
    >>> np.round(report.propagated, 12).tolist(), report.layers_needed(1e-9)
    ([8.0, 8.0, 0.0], 2)
    """
    signal = np.asarray(signal, dtype=np.float64).ravel()
    M = signal.size
    bank = np.array([np.fft.fft(g, n=M) for g in filters])
    chi = None if output_filter is None else np.fft.fft(output_filter, n=M)
    U = signal[None]
    propagated, outputs, discarded = [signal @ signal], [], []
    for _ in range(depth):
        spectrum = np.fft.fft(U, axis=1)
        outputs.append(0.0 if chi is None else _energy(np.fft.ifft(spectrum * chi, axis=1)))
        Z = np.fft.ifft(spectrum[:, None, :] * bank[None], axis=2).real.reshape(-1, M)
        U = np.abs(Z) if nonlinearity == "modulus" else np.maximum(Z, 0)
        discarded.append(_energy(Z) - _energy(U))
        propagated.append(_energy(U))
    return EnergyReport(np.array(propagated), np.array(outputs), np.array(discarded))


def layer_energies(network, x):
    """Per hidden layer of any network at input ``x``: energy before and after its units.

    Returns
    -------
    dict of ndarray, each of shape (hidden layers,)
        ``"preactivation"`` ``||z_l||^2``, ``"kept"`` ``||u_l||^2`` (after the units:
        ``ReLU(z)`` on ReLU units, ``z`` on linear ones) and ``"discarded"``
        ``||z_l - u_l||^2`` (``||ReLU(-z)||^2`` over the ReLU units; the two add up to the
        first), and ``"output"`` ``||h_l||^2``, the layer's outputs (kept entries and
        window maxima; ``"kept"`` again on a ReLU layer).
    """
    h = np.asarray(x, dtype=np.float64).reshape(1, -1)
    rows = []
    for layer in network.layers[:-1]:
        z = h @ layer.weight.T + layer.bias
        u = layer.activate(z)
        h = layer.output(z)
        rows.append([_energy(z), _energy(u), _energy(z - u), _energy(h)])
    rows = np.array(rows).reshape(-1, 4)
    return dict(zip(("preactivation", "kept", "discarded", "output"), rows.T))


@dataclass(frozen=True)
class EnergyRange:
    """Exact minimum and maximum of a feature energy over a domain, with their points."""

    min: float
    argmin: np.ndarray
    max: float
    argmax: np.ndarray


def energy_range(network, domain, *, layer=None, regions=None, deadline=None):
    """Exact extremes of ``||h(x)||^2`` over ``domain``: outputs, or hidden layer ``layer``.

    The minimum is the least of one convex QP per region (cvxpy, accurate to the
    solver's tolerance, ~1e-8); the maximum the largest value at a region vertex
    (input dimension >= 2 uses qhull's vertices). ``regions`` is the
    :class:`RegionComplex` if already enumerated. ``deadline`` (a Deadline) is checked
    per region: on expiry, :class:`TimeLimitError` with ``partial`` a dict of the
    regions examined.
    """
    import cvxpy as cp

    regions = regions if regions is not None else enumerate_regions(network, domain)
    best_min, best_max = (np.inf, None), (-np.inf, None)
    for region in regions:
        _check(deadline, "energy extremes", region.id)
        A, c = network.feature_map(region.pattern, layer)
        x = cp.Variable(network.input_dim)
        cp.Problem(cp.Minimize(cp.sum_squares(A @ x + c)),
                   [region.polytope.A @ x <= region.polytope.b]).solve()
        if x.value is not None and _energy(A @ x.value + c) < best_min[0]:
            best_min = (_energy(A @ x.value + c), x.value)
        vertices = _vertices(region)
        energies = ((vertices @ A.T + c) ** 2).sum(axis=1)
        if energies.max() > best_max[0]:
            best_max = (float(energies.max()), vertices[np.argmax(energies)])
    return EnergyRange(best_min[0], best_min[1], best_max[0], best_max[1])


@dataclass(frozen=True)
class NullSetResult:
    """Outcome of :func:`null_set_check`.

    Attributes
    ----------
    trivial : bool
        True when no ``x != 0`` in the domain maps to 0 (the certificate: every region's
        zero set is empty or within ``tol`` of the origin, by LPs).
    witness : ndarray or None
        A point ``x != 0`` with ``network(x) = 0`` when ``trivial`` is False.
    residual : float or None
        ``max |network(witness)|``, from a forward pass.
    regions, lps : int
        Regions examined and LPs solved.
    tol : float
        How far from 0 a point must be to count as ``x != 0``.
    """

    trivial: bool
    witness: np.ndarray
    residual: float
    regions: int
    lps: int
    tol: float


def null_set_check(network, domain, *, regions=None, rel_tol=1e-6, deadline=None):
    """Is there ``x != 0`` in ``domain`` with ``network(x) = 0``? A witness or a certificate.

    Parameters
    ----------
    network : Network
    domain : Domain
    regions : RegionComplex, optional
        The enumerated regions, if already at hand.
    rel_tol : float
        Points within ``rel_tol * domain.diameter`` of the origin (in max-norm) count as
        0: the LPs are exact only up to their feasibility tolerance (1e-9).
    deadline : Deadline, optional
        Checked per region: on expiry, :class:`TimeLimitError` with ``partial`` a dict of
        the regions examined (none of which has a zero other than the origin).

    Examples
    --------
    >>> from polyrelu import Domain, Network
    >>> absolute = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> null_set_check(absolute, Domain.box([-1], [2])).trivial
    True
    >>> relu = Network([[[1.0]], [[1.0]]], [[0.0], [0.0]])
    >>> float(null_set_check(relu, Domain.box([-1], [2])).witness[0]) < 0
    True
    """
    regions = regions if regions is not None else enumerate_regions(network, domain)
    tol = rel_tol * float(domain.diameter)
    solver = LPSolver()
    for region in regions:
        _check(deadline, "null-set check", region.id)
        A_eq, b_eq = _zero_rows(region)
        if A_eq is None:
            continue
        for cost in np.vstack([np.eye(network.input_dim), -np.eye(network.input_dim)]):
            result = solver.maximize(cost, region.polytope.A, region.polytope.b,
                                     A_eq=A_eq, b_eq=b_eq)
            if result.status != "optimal":
                break  # infeasible: this region has no zero at all
            if result.value > tol:
                residual = float(np.abs(network.forward(result.x)).max())
                return NullSetResult(False, result.x, residual, region.id + 1, solver.count,
                                     tol)
    return NullSetResult(True, None, None, len(regions), solver.count, tol)


def _check(deadline, what, examined):
    if deadline is not None:
        deadline.check(f"{what} ({examined} regions examined)", {"regions_examined": examined})


def plot_energy(report, ax=None, label=None, color=None):
    """Plot ``W_n / ||x||^2`` and the per-layer output energy over depth (log scale).

    Energies below 1e-15 of ``||x||^2`` (zero up to rounding) are left out.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        ax = plt.figure(figsize=(6, 4)).gca()
    total = report.propagated[0]
    visible = lambda values: np.where(values > 1e-15 * total, values / total, np.nan)  # noqa
    depth = np.arange(len(report.propagated))
    prefix = f"{label}: " if label else ""
    line, = ax.semilogy(depth, visible(report.propagated), "o-", color=color,
                        label=f"{prefix}propagated W_n")
    if report.outputs.any():
        ax.semilogy(depth[:-1], visible(report.outputs), "s--", color=line.get_color(),
                    alpha=0.6, label=f"{prefix}output of layer n")
    ax.set_xlabel("layer n")
    ax.set_ylabel("energy / ||x||^2")
    ax.legend()
    return ax


def _zero_rows(region):
    """``W_eff x = -b_eff`` with rows scaled to unit norm; None if it has no solution."""
    norms = np.linalg.norm(region.W_eff, axis=1)
    flat = norms == 0
    if np.any(flat & (region.b_eff != 0)):
        return None, None
    keep = ~flat
    return region.W_eff[keep] / norms[keep, None], -region.b_eff[keep] / norms[keep]


def _vertices(region):
    if region.polytope.dim == 1:
        A, b = region.polytope.A[:, 0], region.polytope.b
        return np.array([[np.min(b[A > 0] / A[A > 0])], [np.max(b[A < 0] / A[A < 0])]])
    return region.polytope.vertices(region.interior_point)


def _energy(values):
    return float(np.sum(np.abs(values) ** 2))
