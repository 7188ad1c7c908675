"""Tables of regions (one row per region of a complex, or per piece of a 2-D slice) as
pandas DataFrames, written to CSV or Parquet.

Columns: ``id``, ``pattern`` (the packed pattern in hex), the interior point (``x0``,
``x1``, ...; slice coordinates ``t0, t1`` for a slice), ``radius`` (the Chebyshev radius;
a slice piece's inradius is not stored, so its ``area`` is given instead), ``volume``
(input dimension <= 8; else empty), the outputs at that point (``y0``, ``y1``, ...),
``gradient_norm`` (the spectral norm of the region's Jacobian), ``predicted_class``
(the largest output), ``facets`` (edges for a slice piece) and ``neighbours``.

Parquet files need pyarrow (``pip install polyrelu[tables]``).
"""

from pathlib import Path

import numpy as np

from ..errors import PolyreluError

__all__ = [
    "MAX_VOLUME_DIM",
    "check_table_path",
    "read_table",
    "region_table",
    "slice_table",
    "write_table",
]

#: Volumes are computed (from the vertices, by qhull) up to this input dimension.
MAX_VOLUME_DIM = 8


def region_table(complex_):
    """One row per region of a :class:`polyrelu.RegionComplex` (see the module docstring).

    >>> from polyrelu import Domain, Network, enumerate_regions
    >>> net = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> table = region_table(enumerate_regions(net, Domain.box([-1.0], [2.0])))
    >>> table[["pattern", "x0", "volume", "y0", "neighbours"]].to_dict("records")
    [{'pattern': '80', 'x0': 1.0, 'volume': 2.0, 'y0': 1.0, 'neighbours': 1}, \
{'pattern': '40', 'x0': -0.5, 'volume': 1.0, 'y0': 0.5, 'neighbours': 1}]
    """
    regions = complex_.regions
    d = complex_.domain.dim
    centres = np.array([r.interior_point for r in regions]).reshape(len(regions), d)
    columns = {"id": [r.id for r in regions],
               "pattern": [r.pattern_bits.tobytes().hex() for r in regions]}
    columns.update(_coordinates("x", centres))
    columns["radius"] = [float(r.radius) for r in regions]
    columns["volume"] = [r.volume() if d <= MAX_VOLUME_DIM else np.nan for r in regions]
    maps = [(r.W_eff, r.b_eff) for r in regions]
    columns.update(_outputs(maps, centres))
    columns["facets"] = [len(r.polytope.b) for r in regions]
    columns["neighbours"] = [complex_.graph.degree(r.id) for r in regions]
    return _frame(columns)


def slice_table(planar):
    """One row per piece of a :class:`polyrelu.planar.slices.PlanarSlice`: the piece's
    centroid in slice coordinates (``t0, t1``), its ``area``, its number of ``edges`` and
    the rest as in :func:`region_table` (outputs and gradient on the slice's plane)."""
    pieces = planar.pieces
    centres = np.array([p.polygon.centroid.coords[0] for p in pieces]).reshape(len(pieces), 2)
    columns = {"id": [p.id for p in pieces],
               "pattern": [np.packbits(p.pattern).tobytes().hex() for p in pieces]}
    columns.update(_coordinates("t", centres))
    columns["area"] = [float(p.polygon.area) for p in pieces]
    columns.update(_outputs([(p.W_eff, p.b_eff) for p in pieces], centres))
    columns["edges"] = [len(p.edge_sources) for p in pieces]
    columns["neighbours"] = [planar.graph.degree(p.id) for p in pieces]
    return _frame(columns)


def check_table_path(path):
    """Raise :class:`PolyreluError` unless ``path`` names a table polyrelu can write
    (``.csv``, or ``.parquet`` with pyarrow installed); nothing is written."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise PolyreluError(f"a table is written as .csv or .parquet, not {str(path)!r}")
    if suffix == ".parquet":
        _parquet_engine()


def write_table(table, path):
    """Write a table to ``.csv`` or ``.parquet`` (by the suffix of ``path``)."""
    check_table_path(path)
    if Path(path).suffix.lower() == ".csv":
        table.to_csv(path, index=False)
    else:
        table.to_parquet(path, index=False)


def read_table(path):
    """Read a table written by :func:`write_table` (patterns stay hex strings)."""
    pandas = _pandas()
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return pandas.read_csv(path, dtype={"pattern": str})
    if suffix == ".parquet":
        _parquet_engine()
        return pandas.read_parquet(path)
    raise PolyreluError(f"a table is read from .csv or .parquet, not {suffix or path!r}")


def _coordinates(prefix, points):
    return {f"{prefix}{i}": points[:, i] for i in range(points.shape[1])}


def _outputs(maps, centres):
    """Outputs at the centres, the Jacobians' spectral norms, the predicted classes."""
    outputs = np.array([W @ c + b for (W, b), c in zip(maps, centres)])
    columns = _coordinates("y", outputs.reshape(len(maps), -1))
    columns["gradient_norm"] = [float(np.linalg.norm(W, 2)) for W, _ in maps]
    columns["predicted_class"] = np.argmax(outputs, axis=1) if len(maps) else []
    return columns


def _parquet_engine():
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise PolyreluError("Parquet files need pyarrow: pip install 'polyrelu[tables]' "
                            "(or write .csv)") from None


def _frame(columns):
    return _pandas().DataFrame(columns)


def _pandas():
    try:
        import pandas
    except ImportError:
        raise PolyreluError("tables of regions need pandas: pip install 'polyrelu[tables]'") \
            from None
    return pandas
