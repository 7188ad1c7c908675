"""The certificate checker: re-validates a "holds" certificate without the search.

It imports no search code (only the shared constraint builders of
:mod:`polyrelu.verification.certificate`, the sound bounds and the LP layer).
"""

import numpy as np

from ..errors import PolyreluError
from ..geometry.lp import LPSolver
from ..geometry.polytope import HPolytope
from ..geometry.symbolic import linear_bounds
from ..options import Options
from .certificate import (
    BoundPiece,
    StarPiece,
    box_from_path,
    farkas_gap,
    free_inputs,
    network_fingerprint,
    region_constraints,
    rigorous_bounding_box,
    tail_network,
)

__all__ = ["check_certificate"]

_VOLUME_TOLERANCE = 1e-7  # relative gap allowed between a box and the volume of its regions


def check_certificate(network, prop, certificate, *, options=None):
    """Re-validate a "holds" certificate; raise :class:`PolyreluError` naming the first flaw.

    Checks, without using the search: the fingerprint matches ``network``; in every
    case the bound-closed and exactly-decided boxes, rebuilt from their split paths,
    tile the input box; every bound-closed box is refuted by the recomputed sound
    bounds; every region's Farkas multipliers prove it misses every unsafe
    polytope; the regions of each exactly decided box fill its volume.

    Returns a summary dict on success.
    """
    if certificate.fingerprint != network_fingerprint(network):
        raise PolyreluError("certificate is for a different network (fingerprint mismatch)")
    solver = LPSolver(options or Options())
    by_box = {}
    for piece in certificate.pieces:
        by_box.setdefault((piece.case, piece.path), []).append(piece)
    for index, case in enumerate(prop.cases):
        paths = [path for (c, path) in by_box if c == index]
        _check_tiling(paths, index)
        for path in paths:
            _check_box(network, case, path, by_box[(index, path)], solver)
    return {"boxes": len(by_box), **certificate.counts()}


def _check_tiling(paths, case):
    """The split paths must be the leaves of one complete binary tree of bisections."""
    def check(prefix, members):
        if members == [prefix]:
            return
        deeper = [path for path in members if len(path) > len(prefix)]
        if len(deeper) != len(members):
            raise PolyreluError(f"case {case}: box {prefix} is both closed and split")
        dims = {path[len(prefix)][0] for path in deeper}
        if len(dims) != 1:
            raise PolyreluError(f"case {case}: box {prefix} is split along several inputs")
        dim = dims.pop()
        for side in (0, 1):
            child = prefix + ((dim, side),)
            below = [path for path in deeper if path[len(prefix)] == (dim, side)]
            if not below:
                raise PolyreluError(f"case {case}: sub-box {child} is not covered")
            check(child, below)

    if not paths:
        raise PolyreluError(f"case {case}: no piece covers the input box")
    check((), paths)


def _check_box(network, case, path, pieces, solver):
    lower, upper = box_from_path(case, path)
    if len(pieces) == 1 and isinstance(pieces[0], BoundPiece):
        _check_refutation(network, case, lower, upper, pieces[0].multipliers, f"box {path}")
        return
    if any(isinstance(piece, BoundPiece) for piece in pieces):
        raise PolyreluError(f"box {path}: closed by bounds and by regions at once")
    free, network = free_inputs(network, case)
    lower, upper = lower[free], upper[free]
    box_rows = (np.vstack([np.eye(len(lower)), -np.eye(len(lower))]),
                np.concatenate([upper, -lower]))
    reach = np.maximum(np.abs(lower), np.abs(upper))
    volume = 0.0
    for piece in pieces:
        pattern = np.unpackbits(piece.pattern, count=network.num_hidden).astype(bool)
        if isinstance(piece, StarPiece):
            A, b = _star_constraints(network, pattern, piece.sources, box_rows)
            box = rigorous_bounding_box(solver, A, b, lower, upper)
            _check_refutation(tail_network(network, pattern, piece.layer), case, *box,
                              piece.multipliers, f"box {path}, piece at layer {piece.layer}")
        else:
            A, b, systems = region_constraints(network, pattern, box_rows, case.unsafe)
            for k, (A_k, b_k) in enumerate(systems):
                _check_farkas(A_k, b_k, piece.multipliers[k], reach, path, k)
        volume += _region_volume(A, b, solver)
    box_volume = float(np.prod(upper - lower))
    if abs(volume - box_volume) > _VOLUME_TOLERANCE * box_volume:
        raise PolyreluError(f"box {path}: its regions fill {volume:.12g} of volume "
                            f"{box_volume:.12g}")


def _check_refutation(network, case, lower, upper, multipliers, where):
    """Sound bounds of ``network`` over the box refute each unsafe set with its multipliers."""
    for k, (unsafe, lam) in enumerate(zip(case.unsafe, multipliers)):
        lam = np.asarray(lam, dtype=np.float64)
        if lam.shape != unsafe.d.shape or np.any(lam < 0) or not np.any(lam > 0):
            raise PolyreluError(f"{where}: multipliers for unsafe set {k} must be "
                                f"{len(unsafe.d)} non-negative numbers, not all zero")
        bound = linear_bounds(network, lower, upper, [lam @ unsafe.C]).lower[0]
        if not bound > lam @ unsafe.d:
            raise PolyreluError(f"{where}: bounds do not refute unsafe set {k} "
                                f"({bound} <= {lam @ unsafe.d})")


def _star_constraints(network, pattern, sources, box_rows):
    """Rows of a partial piece: the listed domain faces and neuron signs (unit rows)."""
    sources = np.asarray(sources)
    A, b, _ = region_constraints(network, pattern, box_rows)
    boxes = len(box_rows[1])
    rows = np.where(sources < 0, -1 - sources, boxes + sources)
    return A[rows], b[rows]


def _check_farkas(A, b, y, reach, path, k):
    if np.shape(y) != b.shape:
        raise PolyreluError(f"box {path}: multipliers for unsafe set {k} have the wrong length")
    gap = farkas_gap(A, b, y, reach)
    if not gap < 0:
        raise PolyreluError(f"box {path}: Farkas multipliers do not prove that a region misses "
                            f"unsafe set {k} (gap {gap:.3g} is not negative)")


def _region_volume(A, b, solver):
    center, radius = solver.chebyshev_ball(A, b)
    if center is None or radius <= 0:
        return 0.0
    keep = np.flatnonzero(np.linalg.norm(A, axis=1) > 0)
    return HPolytope(A[keep], b[keep], keep).volume(center)
