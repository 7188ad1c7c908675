"""Pictures of 2-D slices: regions, their edges, the decision boundary, the adjacency graph.

matplotlib is imported only inside these functions (Agg backend when writing a
file). The drawing functions take an :class:`~polyrelu.planar.slices.PlanarSlice` and a
matplotlib ``Axes`` and compose freely; :func:`slice_picture` draws the usual
combination and writes a PNG or SVG (by the file's suffix).

Colourings (``color=``):

- ``"pattern"``: one colour per activation pattern (a hash of its bits, so
  neighbouring regions almost always differ);
- ``"gradient"``: the norm of output ``output``'s gradient within the plane (in
  slice coordinates; equal to the in-plane part of the input gradient when the
  slice directions are orthonormal), constant on each region;
- ``"output"``: the value of output ``output``; ``"neuron"``: the pre-activation
  ``neuron`` (global pre-activation index, layer by layer: the hidden neuron of a
  ReLU network, any unit of a general one). Both are affine on each region,
  drawn exactly by linear (Gouraud) shading over each region's triangles.
"""

import zlib
from pathlib import Path

import numpy as np

from ..errors import PolyreluError
from .boundary import decision_boundary

__all__ = ["COLORINGS", "draw_pieces", "draw_decision_boundary", "draw_adjacency",
           "slice_picture"]

COLORINGS = ("pattern", "gradient", "output", "neuron")


def draw_pieces(plane, ax, *, color="pattern", output=0, neuron=None, cmap=None,
                edges=True, edge_color="white", linewidth=0.4):
    """Draw the regions of ``plane`` on ``ax``, filled by ``color``, with their edges.

    Returns the colour-mapped artist (for a colour bar), or None for ``"pattern"``.

    Raises
    ------
    PolyreluError
        If ``color`` is unknown or ``output``/``neuron`` is out of range.
    """
    from matplotlib.collections import LineCollection, PolyCollection

    polygons = [piece.vertices for piece in plane]
    artist = None
    if color == "pattern":
        ax.add_collection(PolyCollection(polygons, facecolors=_pattern_colors(plane),
                                         edgecolors="none"))
    elif color == "gradient":
        _check_index(output, plane.network.output_dim, "output")
        values = [np.linalg.norm(piece.W_eff[output]) for piece in plane]
        artist = PolyCollection(polygons, array=np.array(values), cmap=cmap or "viridis",
                                edgecolors="none")
        ax.add_collection(artist)
    elif color in ("output", "neuron"):
        artist = _draw_affine_field(plane, ax, _vertex_values(plane, color, output, neuron),
                                    cmap or "coolwarm")
    else:
        raise PolyreluError(f"unknown colouring {color!r}; choose one of {', '.join(COLORINGS)}")
    if edges:
        closed = [np.vstack([p, p[:1]]) for p in polygons]
        ax.add_collection(LineCollection(closed, colors=edge_color, linewidths=linewidth))
    x0, y0, x1, y1 = plane.domain.bounds
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    return artist


def draw_decision_boundary(plane, ax, boundary=None, *, color="black", linewidth=1.6):
    """Draw the exact decision boundary (:func:`polyrelu.planar.boundary.decision_boundary`)
    on ``ax``.

    Returns the :class:`~polyrelu.planar.slices.DecisionBoundary` drawn.
    """
    from matplotlib.collections import LineCollection

    boundary = decision_boundary(plane) if boundary is None else boundary
    ax.add_collection(LineCollection(boundary.segments, colors=color, linewidths=linewidth,
                                     capstyle="round"))
    return boundary


def draw_adjacency(plane, ax, *, color="black", node_size=4, width=0.5):
    """Draw the regions' adjacency graph over the slice: a node at each region's centroid."""
    import networkx as nx

    positions = {piece.id: piece.polygon.centroid.coords[0] for piece in plane}
    nx.draw_networkx_edges(plane.graph, positions, ax=ax, edge_color=color, width=width,
                           alpha=0.7)
    nx.draw_networkx_nodes(plane.graph, positions, ax=ax, node_color=color,
                           node_size=node_size)
    ax.tick_params(left=True, bottom=True, labelleft=True, labelbottom=True)


def slice_picture(plane, path, *, color="pattern", output=0, neuron=None, boundary=False,
                  graph=False, points=None, labels=None, title=None, width=7.0, dpi=120):
    """Draw a slice and write it to ``path`` (PNG or SVG, by suffix); returns the path.

    Parameters
    ----------
    plane : PlanarSlice
    color, output, neuron
        The colouring (see :mod:`polyrelu.planar.pictures`).
    boundary : bool
        Draw the classifier's exact decision boundary.
    graph : bool
        Draw the adjacency graph over the regions.
    points : array_like, shape (n, 2), optional
        Slice points to mark (e.g. ``plane.coordinates(images)``), with ``labels``.
    width : float
        Figure width in inches; the height follows the slice's aspect ratio.
    """
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise PolyreluError(f"picture file must end in .png or .svg, got {path.name!r}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    x0, y0, x1, y1 = plane.domain.bounds
    height = float(np.clip(0.9 + (width - 1.5) * (y1 - y0) / (x1 - x0), 3.0, 2 * width))
    fig, ax = plt.subplots(figsize=(width, height), dpi=dpi)
    try:
        artist = draw_pieces(plane, ax, color=color, output=output, neuron=neuron)
        if artist is not None:
            bar_axes = make_axes_locatable(ax).append_axes("right", size="4%", pad=0.1)
            fig.colorbar(artist, cax=bar_axes, label=_scale_label(color, output, neuron))
        if boundary:
            draw_decision_boundary(plane, ax)
        if graph:
            draw_adjacency(plane, ax)
        if points is not None:
            _mark_points(ax, np.atleast_2d(points), labels)
        ax.set_xlabel("t1")
        ax.set_ylabel("t2")
        ax.set_title(title or f"{len(plane)} regions of {plane.network} on a 2-D slice")
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


def _pattern_colors(plane):
    from matplotlib.colors import hsv_to_rgb

    hues = [zlib.crc32(np.packbits(piece.pattern).tobytes()) / 2**32 for piece in plane]
    return hsv_to_rgb([(hue, 0.45, 0.95) for hue in hues])


def _vertex_values(plane, color, output, neuron):
    """Per piece, the affine field's value at each vertex."""
    if color == "output":
        _check_index(output, plane.network.output_dim, "output")
        return [piece.apply(piece.vertices)[:, output] for piece in plane]
    if neuron is None:
        raise PolyreluError("colouring by 'neuron' needs a neuron index (global, layer by layer)")
    _check_index(neuron, plane.network.num_preactivations, "neuron")
    values = []
    for piece in plane:
        maps = plane.plane.affine_maps(piece.pattern)
        values.append(piece.vertices @ maps.pre_A[neuron] + maps.pre_c[neuron])
    return values


def _draw_affine_field(plane, ax, values, cmap):
    """Gouraud shading over a fan triangulation of each piece: exact for affine fields."""
    points, triangles, offset = [], [], 0
    for piece in plane:
        k = len(piece.vertices)
        points.append(piece.vertices)
        triangles += [(offset, offset + i, offset + i + 1) for i in range(1, k - 1)]
        offset += k
    points = np.concatenate(points)
    values = np.concatenate(values)
    limit = max(np.abs(values).max(), np.finfo(float).tiny)
    return ax.tripcolor(points[:, 0], points[:, 1], np.array(triangles), values,
                        shading="gouraud", cmap=cmap, vmin=-limit, vmax=limit)


def _mark_points(ax, points, labels):
    ax.scatter(points[:, 0], points[:, 1], s=40, c="black", edgecolors="white", zorder=5)
    for point, label in zip(points, labels or []):
        ax.annotate(str(label), point, xytext=(5, 5), textcoords="offset points",
                    fontsize=11, fontweight="bold", color="black",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "alpha": 0.8})


def _scale_label(color, output, neuron):
    return {"gradient": f"|in-plane gradient of output {output}|",
            "output": f"output {output}",
            "neuron": f"pre-activation of neuron {neuron}"}[color]


def _check_index(index, size, name):
    if not isinstance(index, (int, np.integer)) or not 0 <= index < size:
        raise PolyreluError(f"{name} index {index!r} is out of range (the network has {size})")
