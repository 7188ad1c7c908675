"""An interactive view of a 2-D slice: one self-contained HTML page (bokeh, no server).

Each piece is one patch of a bokeh ``ColumnDataSource`` (the page's own JSON document,
id ``polyrelu-regions``), one row per region with the fields ``id``, ``pattern`` (hex),
``map`` (the affine map on the piece, as text), ``output`` (output K at the piece's
centroid), ``gradient_norm`` (of output K), ``predicted`` (the class at the centroid) and
``neighbours`` (ids). Hovering a region shows those values; clicking one selects it
together with its neighbours. The exact decision boundary and the marked data points are
two more layers.
"""

from pathlib import Path

import numpy as np

from ..errors import PolyreluError
from .boundary import decision_boundary

__all__ = ["SOURCE_NAME", "slice_view"]

#: ``name`` of the regions' data source in the page (one row per region).
SOURCE_NAME = "polyrelu-regions"

_PALETTE = ("#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69",
            "#fccde5", "#d9d9d9", "#bc80bd", "#ccebc5", "#ffed6f")

# Clicking a region selects it and its neighbours (guarded: the selection it sets fires
# the callback again).
_SELECT_NEIGHBOURS = """
if (source.tags.includes("busy")) { return; }
const picked = source.selected.indices;
if (picked.length !== 1) { return; }
source.tags = ["busy"];
source.selected.indices = [picked[0]].concat(source.data.neighbours[picked[0]]);
source.tags = [];
"""


def slice_view(plane, path, *, output=0, points=None, labels=None, title=None):
    """Write the interactive page of a :class:`PlanarSlice` to ``path`` (``.html``).

    Parameters
    ----------
    plane : PlanarSlice
    output : int
        The output shown on hover (value and gradient norm).
    points : array_like, shape (n, 2), optional
        Slice points to mark (e.g. ``plane.coordinates(images)``), with ``labels``.
    title : str, optional

    Returns
    -------
    Path
    """
    path = Path(path)
    if path.suffix.lower() != ".html":
        raise PolyreluError(f"an interactive view is written as .html, got {path.name!r}")
    bokeh = _bokeh()
    figure = bokeh.plotting.figure(title=title or f"{len(plane)} regions", match_aspect=True,
                                   tools="pan,wheel_zoom,box_zoom,reset,tap",
                                   sizing_mode="stretch_both")
    source = bokeh.models.ColumnDataSource(_region_data(plane, output), name=SOURCE_NAME)
    patches = figure.patches("xs", "ys", source=source, fill_color="colour",
                             line_color="#555555", line_width=0.5, fill_alpha=0.85,
                             selection_line_color="black", selection_line_width=2.0,
                             nonselection_fill_alpha=0.35)
    figure.add_tools(bokeh.models.HoverTool(renderers=[patches], tooltips=[
        ("region", "@id"), ("pattern", "@pattern"), ("map", "@map"),
        (f"output {output}", "@output"), ("gradient norm", "@gradient_norm"),
        ("class", "@predicted"), ("neighbours", "@neighbours")]))
    source.selected.js_on_change("indices", bokeh.models.CustomJS(
        args={"source": source}, code=_SELECT_NEIGHBOURS))
    boundary = decision_boundary(plane)
    if len(boundary):
        figure.multi_line([list(s[:, 0]) for s in boundary.segments],
                          [list(s[:, 1]) for s in boundary.segments], line_color="black",
                          line_width=2.5, legend_label="decision boundary")
    if points is not None:
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        marks = bokeh.models.ColumnDataSource({
            "x": points[:, 0], "y": points[:, 1],
            "label": list(labels) if labels is not None else [""] * len(points)})
        figure.scatter("x", "y", source=marks, size=9, color="black", marker="x",
                       legend_label="data points")
        figure.text("x", "y", text="label", source=marks, x_offset=6, y_offset=-6)
    html = bokeh.embed.file_html(figure, resources=bokeh.resources.INLINE,
                                 title=title or "polyrelu slice")
    path.write_text(html, encoding="utf-8")
    return path


def _region_data(plane, output):
    """The columns of the regions' data source."""
    pieces = plane.pieces
    centres = [np.asarray(p.polygon.centroid.coords[0]) for p in pieces]
    values = [p.apply(c)[0] for p, c in zip(pieces, centres)]
    predicted = [int(np.argmax(v)) if len(v) > 1 else int(v[0] > 0) for v in values]
    return {
        "xs": [list(p.vertices[:, 0]) for p in pieces],
        "ys": [list(p.vertices[:, 1]) for p in pieces],
        "id": [p.id for p in pieces],
        "pattern": [np.packbits(p.pattern).tobytes().hex() for p in pieces],
        "map": [_map_text(p.W_eff, p.b_eff) for p in pieces],
        "output": [float(v[output]) for v in values],
        "gradient_norm": [float(np.linalg.norm(p.W_eff[output])) for p in pieces],
        "predicted": predicted,
        "neighbours": [sorted(int(n) for n in plane.graph[p.id]) for p in pieces],
        "colour": [_PALETTE[c % len(_PALETTE)] for c in predicted],
    }


def _map_text(W, b, most=4):
    """``y = W t + b`` as text, at most ``most`` output rows."""
    rows = [f"y{i} = {W[i, 0]:.4g} t0 + {W[i, 1]:.4g} t1 + {b[i]:.4g}"
            for i in range(min(len(b), most))]
    if len(b) > most:
        rows.append(f"... ({len(b)} outputs)")
    return "; ".join(rows)


def _bokeh():
    try:
        import bokeh.embed
        import bokeh.models
        import bokeh.plotting
        import bokeh.resources
    except ImportError:
        raise PolyreluError("an interactive view needs bokeh: pip install 'polyrelu[view]'") \
            from None
    return bokeh
