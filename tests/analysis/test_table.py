"""Tables of regions: every column against an independent computation (forward passes,
finite differences, activation patterns at the interior points, volume sums, the graph),
and CSV / Parquet files that read back to the same table."""

import numpy as np
import pandas as pd
import pytest

from oracles import random_network
from polyrelu import Domain, Network, enumerate_regions
from polyrelu.analysis.table import read_table, region_table, slice_table, write_table
from polyrelu.cli import main
from polyrelu.errors import PolyreluError
from polyrelu.network.loaders import save_npz
from polyrelu.planar.slices import slice_regions


@pytest.fixture(scope="module")
def network():
    return Network(*random_network((3, 8, 6, 3), np.random.default_rng(4)))


@pytest.fixture(scope="module")
def complex_(network):
    return enumerate_regions(network, Domain.box([-1, -1, -1], [1, 1, 1]))


def _finite_difference_norms(network, centres, h=1e-6):
    norms = []
    for x in centres:
        jacobian = np.column_stack([(network.forward(x + h * e) - network.forward(x - h * e))[0]
                                    / (2 * h) for e in np.eye(len(x))])
        norms.append(np.linalg.norm(jacobian, 2))
    return np.array(norms)


def test_region_columns(network, complex_):
    table = region_table(complex_)
    centres = table[["x0", "x1", "x2"]].to_numpy()
    outputs = network.forward(centres)
    assert len(table) == len(complex_) > 20
    assert np.allclose(table[["y0", "y1", "y2"]].to_numpy(), outputs, atol=1e-12)
    assert np.array_equal(table["predicted_class"], outputs.argmax(axis=1))
    assert np.allclose(table["gradient_norm"], _finite_difference_norms(network, centres),
                       rtol=1e-5)
    patterns = [np.packbits(p).tobytes().hex() for p in network.activation_pattern(centres)]
    assert list(table["pattern"]) == patterns
    assert table["volume"].sum() == pytest.approx(8.0, rel=1e-9)
    assert table["neighbours"].sum() == 2 * complex_.graph.number_of_edges()
    assert (table["facets"] >= table["neighbours"]).all()  # facets on the box too
    assert (table["radius"] > 0).all()


def test_slice_columns(network):
    planar = slice_regions(network, np.zeros(3), np.eye(3)[:, :2], ([-1, -1], [1, 1]))
    table = slice_table(planar)
    points = planar.to_input(table[["t0", "t1"]].to_numpy())
    assert len(table) == len(planar)
    assert np.allclose(table[["y0", "y1", "y2"]].to_numpy(), network.forward(points),
                       atol=1e-12)
    assert table["area"].sum() == pytest.approx(4.0, rel=1e-9)
    assert table["neighbours"].sum() == 2 * planar.graph.number_of_edges()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_files_read_back_to_the_same_table(complex_, tmp_path, suffix):
    table = region_table(complex_)
    path = tmp_path / f"regions{suffix}"
    write_table(table, path)
    pd.testing.assert_frame_equal(read_table(path), table, check_dtype=False, rtol=1e-15)


def test_other_suffixes_are_refused(complex_, tmp_path):
    with pytest.raises(PolyreluError, match=".csv or .parquet"):
        write_table(region_table(complex_), tmp_path / "regions.xlsx")


def test_cli_tables(network, tmp_path, capsys):
    path = tmp_path / "net.npz"
    save_npz(network, path)
    assert main(["regions", str(path), "--box", "-1", "1", "--table",
                 str(tmp_path / "r.parquet")]) == 0
    assert "table_file: " in capsys.readouterr().out
    assert len(read_table(tmp_path / "r.parquet")) == len(
        enumerate_regions(network, Domain.box([-1] * 3, [1] * 3)))
    assert main(["slice", str(path), "--plane", "0,0,0", "1,0,0", "0,1,0", "--tbox",
                 "-1", "1", "--table", str(tmp_path / "s.csv")]) == 0
    assert read_table(tmp_path / "s.csv")["area"].sum() == pytest.approx(4.0)
    capsys.readouterr()
    assert main(["regions", str(path), "--box", "-1", "1", "--table",
                 str(tmp_path / "missing" / "r.csv")]) == 2
    assert "--table" in capsys.readouterr().err
