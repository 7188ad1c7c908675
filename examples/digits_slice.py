"""A digits classifier sliced through three training images, with its decision boundary.

Run from the repository root:  python examples/digits_slice.py
Trains a small ReLU MLP (64-24-24-10) on scikit-learn's bundled 8x8 digits (no
download), converts it with polyrelu.network.loaders.from_sklearn, and slices its 64-D
input space by the plane through three training images (a 0, a 1 and a 7).
Writes into examples/out/:

- digits_slice.png: regions coloured by activation pattern, the exact decision
  boundary (where the two largest logits tie) in black, the three images marked;
- digits_neuron.png: the pre-activation of a second-layer neuron (the one most
  evenly positive and negative on the slice), exact: its zero level bends where
  first-layer neurons switch.

It also checks the boundary: at points sampled on every segment the two logits
of its classes are equal and are the two largest (forward pass in 64-D).
"""

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.neural_network import MLPClassifier

from polyrelu.network.loaders import from_sklearn
from polyrelu.planar import decision_boundary, slice_through
from polyrelu.planar.pictures import slice_picture

HERE = Path(__file__).parent


def main():
    digits = load_digits()
    X, y = digits.data / 16.0, digits.target
    model = MLPClassifier(hidden_layer_sizes=(24, 24), max_iter=400, random_state=0).fit(X, y)
    network = from_sklearn(model)
    images = np.stack([X[np.flatnonzero(y == label)[0]] for label in (0, 1, 7)])
    plane = slice_through(network, images, margin=0.3)
    boundary = decision_boundary(plane)
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    print(f"network: {network} (training accuracy {model.score(X, y):.3f})")
    print(f"regions: {len(plane)}")
    print(f"seconds: {plane.stats['seconds']:.3f}")
    print(f"boundary_segments: {len(boundary)}")
    print(f"boundary_max_tie_gap: {_largest_tie_gap(plane, boundary):.1e}")
    marks = {"points": plane.coordinates(images), "labels": ["0", "1", "7"]}
    regions_picture = slice_picture(
        plane, out / "digits_slice.png", boundary=True, **marks,
        title="digits MLP on the plane through three images: regions, decision boundary")
    neuron = _most_balanced_neuron(plane, layer=1)
    neuron_picture = slice_picture(
        plane, out / "digits_neuron.png", color="neuron", neuron=neuron, **marks,
        title=f"pre-activation of {network.neuron_name(neuron)}")
    print(f"picture: {regions_picture}")
    print(f"picture: {neuron_picture}")


def _most_balanced_neuron(plane, layer):
    """The neuron of ``layer`` whose pre-activation on the slice reaches furthest both ways."""
    first = sum(plane.network.hidden_sizes[:layer])
    neurons = np.arange(first, first + plane.network.hidden_sizes[layer])
    t = np.array([piece.polygon.centroid.coords[0] for piece in plane])
    values = plane.network.preactivations(plane.to_input(t))[:, neurons]
    reach = np.minimum(-values.min(axis=0), values.max(axis=0))
    return int(neurons[np.argmax(reach)])


def _largest_tie_gap(plane, boundary):
    """Largest |f_i - f_k| and shortfall from the top logit, at points on the segments."""
    worst = 0.0
    for segment, (i, k) in zip(boundary.segments, boundary.classes):
        t = segment[0] + np.linspace(0.05, 0.95, 7)[:, None] * (segment[1] - segment[0])
        logits = plane.network.forward(plane.to_input(t))
        top = logits.max(axis=1)
        worst = max(worst, np.abs(logits[:, i] - logits[:, k]).max(),
                    np.abs(top - logits[:, i]).max())
    return worst


if __name__ == "__main__":
    main()
