"""The exact decision boundary of a classifier on a 2-D slice: where the top two logits
tie, as segments within the slice's pieces."""

from dataclasses import dataclass

import numpy as np

from ..errors import PolyreluError

__all__ = ["DecisionBoundary", "decision_boundary"]


@dataclass(frozen=True)
class DecisionBoundary:
    """Exact decision boundary of a classifier on a slice: where the top two logits tie.

    Attributes
    ----------
    segments : ndarray, shape (n, 2, 2)
        End points (slice coordinates) of each segment.
    classes : ndarray of int, shape (n, 2)
        The two classes whose logits are equal and largest along the segment.
    pieces : ndarray of int, shape (n,)
        The piece holding each segment.
    """

    segments: np.ndarray
    classes: np.ndarray
    pieces: np.ndarray

    def __len__(self):
        return len(self.pieces)


def decision_boundary(plane):
    """The exact decision boundary of a classifier on a slice.

    Within a piece the logits are affine, so the set where logits i and k tie and
    are the largest two is a segment: the line ``f_i = f_k`` clipped to the piece
    and to ``f_i >= f_l`` for every other class l. A tie along a piece's edge is
    reported once, by the piece on class i's side. Segments no longer than twice
    the slice's thin-piece radius are left out. A single-output network is read
    as the logit of class 1 against a constant 0 for class 0.

    Returns
    -------
    DecisionBoundary

    Examples
    --------
    >>> from polyrelu import Network, slice_regions
    >>> net = Network([[[1.0, 0.0], [-1.0, 0.0]], [[1.0, -1.0]]], [[0, 0], [0]])
    >>> plane = slice_regions(net, [0, 0], np.eye(2), ([-1, -1], [1, 1]))
    >>> boundary = decision_boundary(plane)
    >>> len(boundary), boundary.classes.tolist()
    (1, [[0, 1]])
    """
    min_length = 2 * plane.stats["min_radius"]
    found = []
    for piece in plane:
        W, b = _logits(piece)
        vertices = piece.vertices
        values = vertices @ W.T + b
        top = np.sort(values, axis=1)
        winners = np.argmax(values, axis=1)
        if np.all(winners == winners[0]) and np.all(top[:, -1] > top[:, -2]):
            continue
        for i in range(len(b)):
            for k in range(i + 1, len(b)):
                segment = _tie_segment(vertices, values, W, b, i, k)
                if segment is not None and np.linalg.norm(segment[1] - segment[0]) > min_length:
                    found.append((segment, (i, k), piece.id))
    return DecisionBoundary(np.array([f[0] for f in found]).reshape(-1, 2, 2),
                            np.array([f[1] for f in found], dtype=np.int64).reshape(-1, 2),
                            np.array([f[2] for f in found], dtype=np.int64))


def _logits(piece):
    """The piece's logit map; one output z is read as the logits (0, z)."""
    if len(piece.b_eff) == 0:
        raise PolyreluError("a decision boundary needs a network with outputs")
    if len(piece.b_eff) == 1:
        return (np.vstack([np.zeros((1, 2)), piece.W_eff]),
                np.concatenate([[0.0], piece.b_eff]))
    return piece.W_eff, piece.b_eff


def _tie_segment(vertices, values, W, b, i, k):
    """Where logits i and k tie and beat every other logit within a piece, or None."""
    gap = values[:, i] - values[:, k]
    if np.all(gap > 0) or np.all(gap <= 0):
        return None  # a tie along an edge is kept once: by the piece where class i wins
    nxt = np.roll(np.arange(len(gap)), -1)
    on_line = [vertices[gap == 0]]
    change = gap * gap[nxt] < 0
    weight = (gap[change] / (gap[change] - gap[nxt][change]))[:, None]
    on_line.append(vertices[change] + weight * (vertices[nxt][change] - vertices[change]))
    points = np.concatenate(on_line)
    if len(points) < 2:
        return None
    direction = np.array([-(W[i, 1] - W[k, 1]), W[i, 0] - W[k, 0]])
    along = points @ direction
    start, end = points[np.argmin(along)], points[np.argmax(along)]
    low, high = 0.0, 1.0
    for other in range(len(b)):
        if other in (i, k):
            continue
        lead_start = (W[i] - W[other]) @ start + b[i] - b[other]
        lead_end = (W[i] - W[other]) @ end + b[i] - b[other]
        if lead_start < 0 and lead_end < 0:
            return None
        if lead_start < 0:
            low = max(low, lead_start / (lead_start - lead_end))
        elif lead_end < 0:
            high = min(high, lead_start / (lead_start - lead_end))
    if low >= high:
        return None
    return np.array([start + low * (end - start), start + high * (end - start)])
