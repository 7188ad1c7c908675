"""Pictures: colours read back from the rendered pixels agree with forward passes."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import shapely  # noqa: E402

from oracles import random_network  # noqa: E402
from polyrelu import Network, PolyreluError  # noqa: E402
from polyrelu.planar.pictures import (  # noqa: E402
    draw_adjacency,
    draw_decision_boundary,
    draw_pieces,
    slice_picture,
)
from polyrelu.planar.slices import slice_regions  # noqa: E402


@pytest.fixture(scope="module")
def plane():
    net = Network(*random_network((2, 10, 10, 3), np.random.default_rng(21)))
    return slice_regions(net, [0, 0], np.eye(2), ([-1, -1], [1, 1]))


def rendered_values(plane, color, **kwargs):
    """Render without edges; read the colour under sampled points back into values."""
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    artist = draw_pieces(plane, ax, color=color, edges=False, **kwargs)
    ax.set_axis_off()
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].astype(float) / 255
    t = np.random.default_rng(0).uniform(-0.95, 0.95, size=(300, 2))
    xy = ax.transData.transform(t)
    rows = np.round(pixels.shape[0] - xy[:, 1]).astype(int)
    cols = np.round(xy[:, 0]).astype(int)
    lut = artist.cmap(np.linspace(0, 1, 256))[:, :3]
    nearest = np.argmin(((pixels[rows, cols][:, None, :] - lut[None]) ** 2).sum(axis=2), axis=1)
    low, high = artist.get_clim()
    plt.close(fig)
    return t, low + nearest / 255 * (high - low), high - low


def assert_shows(values, expected, span):
    """Read-back values within 5% of the colour scale, typically within 1% (8-bit colours)."""
    error = np.abs(values - expected)
    assert error.max() <= 0.05 * span and np.median(error) <= 0.01 * span


def away_from_edges(plane, t, distance):
    edges = shapely.MultiLineString([p.polygon.exterior for p in plane])
    return np.array([edges.distance(shapely.Point(p)) > distance for p in t])


def test_output_colouring_shows_the_forward_pass(plane):
    t, values, span = rendered_values(plane, "output", output=2)
    expected = plane.network.forward(t)[:, 2]
    assert_shows(values, expected, span)


def test_neuron_colouring_shows_the_preactivation(plane):
    t, values, span = rendered_values(plane, "neuron", neuron=14)
    expected = plane.network.preactivations(t)[:, 14]
    assert_shows(values, expected, span)


def test_gradient_colouring_shows_finite_difference_gradients(plane):
    t, values, span = rendered_values(plane, "gradient", output=0)
    keep = away_from_edges(plane, t, 0.02)
    h = 1e-6
    f = plane.network.forward
    grad = np.column_stack([(f(t + [h, 0])[:, 0] - f(t - [h, 0])[:, 0]) / (2 * h),
                            (f(t + [0, h])[:, 0] - f(t - [0, h])[:, 0]) / (2 * h)])
    assert_shows(values[keep], np.linalg.norm(grad, axis=1)[keep], span)


def test_pattern_colours_differ_between_neighbours_and_pictures_are_written(plane, tmp_path):
    fig, ax = plt.subplots()
    draw_pieces(plane, ax)
    boundary = draw_decision_boundary(plane, ax)
    draw_adjacency(plane, ax)
    faces = ax.collections[0].get_facecolors()
    same = sum(np.allclose(faces[u], faces[v]) for u, v in plane.graph.edges)
    assert same <= 0.05 * plane.graph.number_of_edges()
    assert len(ax.collections[2].get_segments()) == len(boundary)
    plt.close(fig)
    for name in ("a.png", "b.svg"):
        path = slice_picture(plane, tmp_path / name, boundary=True, graph=True,
                             points=[[0, 0]], labels=["origin"])
        assert path.stat().st_size > 1000


@pytest.mark.parametrize("kwargs,message", [
    ({"color": "rainbow"}, "unknown colouring 'rainbow'"),
    ({"color": "output", "output": 3}, "output index 3 is out of range"),
    ({"color": "neuron", "neuron": 20}, "neuron index 20 is out of range"),
])
def test_bad_colourings_give_clear_errors(plane, tmp_path, kwargs, message):
    with pytest.raises(PolyreluError, match=message):
        slice_picture(plane, tmp_path / "x.png", **kwargs)
