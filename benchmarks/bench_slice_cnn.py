"""Benchmark exact 2-D slices of a small CNN through three points, against a ReLU network.

CNN (built with GraphBuilder, PyTorch default initialisation: uniform in
+-1/sqrt(fan_in)): a 1x8x8 input, Conv 4 channels 3x3 with padding 1 (as a dense
256 x 64 matrix built here), ReLU, MaxPool 2x2 stride 2 (64 windows of 4), Linear 10.
ReLU baseline of similar size: the same convolution and ReLU, then Linear 10 from all
256 units (no pooling): the same ReLU lines, no windows.

The three points are random images (uniform in [0, 1]); the slice is
``polyrelu.planar.slices.slice_through`` (orthonormal frame, margin 0.25). Prints one
JSON line per network and seed: regions, seconds, regions/s, and a check that every
piece's map equals the forward pass at a point inside it.

Usage:  python benchmarks/bench_slice_cnn.py [--seeds 0 1 2] [--repeat 3]
"""

import argparse
import json
import time

import numpy as np

from polyrelu.network.lowering import GraphBuilder
from polyrelu.planar.slices import slice_through

SIDE, CHANNELS, CLASSES = 8, 4, 10


def conv_matrix(kernels, side):
    """Dense matrix of a 3x3 convolution with zero padding 1: (channels * side^2, side^2)."""
    channels = kernels.shape[0]
    matrix = np.zeros((channels, side, side, side, side))
    for c in range(channels):
        for i in range(side):
            for j in range(side):
                for di in range(3):
                    for dj in range(3):
                        y, x = i + di - 1, j + dj - 1
                        if 0 <= y < side and 0 <= x < side:
                            matrix[c, i, j, y, x] = kernels[c, di, dj]
    return matrix.reshape(channels * side * side, side * side)


def pool_windows(channels, side):
    """Index windows of a 2x2 stride-2 max pooling over (channels, side, side) values."""
    index = np.arange(channels * side * side).reshape(channels, side, side)
    blocks = index.reshape(channels, side // 2, 2, side // 2, 2).transpose(0, 1, 3, 2, 4)
    return blocks.reshape(-1, 4)


def networks(seed):
    """The CNN and the ReLU baseline, sharing the convolution."""
    rng = np.random.default_rng(seed)
    bound = 1 / 3.0  # fan_in 9
    conv = conv_matrix(rng.uniform(-bound, bound, size=(CHANNELS, 3, 3)), SIDE)
    conv_bias = np.repeat(rng.uniform(-bound, bound, size=CHANNELS), SIDE * SIDE)
    built = {}
    for name, width in (("cnn", CHANNELS * (SIDE // 2) ** 2), ("relu", CHANNELS * SIDE ** 2)):
        builder = GraphBuilder((1, SIDE, SIDE))
        hidden = builder.relu(builder.linear(builder.input, conv, conv_bias,
                                             shape=(CHANNELS, SIDE, SIDE)))
        if name == "cnn":
            hidden = builder.max_windows(hidden, pool_windows(CHANNELS, SIDE),
                                         (CHANNELS, SIDE // 2, SIDE // 2))
        limit = 1 / np.sqrt(width)
        head = builder.linear(hidden, rng.uniform(-limit, limit, size=(CLASSES, width)),
                              rng.uniform(-limit, limit, size=CLASSES))
        built[name] = builder.network(head)
    return built


def check(plane, network):
    """Largest gap between a piece's map and the forward pass at its centroid."""
    centres = np.array([piece.polygon.representative_point().coords[0] for piece in plane])
    maps = np.array([piece.apply(c)[0] for piece, c in zip(plane, centres)])
    return float(np.abs(maps - network.forward(plane.to_input(centres))).max())


def run(name, network, points, repeat):
    best, plane = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        plane = slice_through(network, points)
        best = min(best, time.perf_counter() - start)
    return {"network": name, "model": repr(network), "regions": len(plane),
            "seconds": round(best, 4), "regions_per_second": round(len(plane) / best, 1),
            "thin_pieces": plane.stats["thin_pieces"], "max_map_error": check(plane, network)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()
    for seed in args.seeds:
        points = np.random.default_rng(100 + seed).uniform(0, 1, size=(3, SIDE * SIDE))
        for name, network in networks(seed).items():
            print(json.dumps({"seed": seed, **run(name, network, points, args.repeat)}))


if __name__ == "__main__":
    main()
