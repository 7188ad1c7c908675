"""Train the bundled example network: a 2-16-16-2 ReLU MLP on scikit-learn's two moons.

Writes examples/nets/moons_2_16_16_2.npz (keys W0, b0, ..., W of shape out x in).
Deterministic: the same file on every run. Needs scikit-learn.
"""

from pathlib import Path

import numpy as np
from sklearn.datasets import make_moons
from sklearn.neural_network import MLPClassifier


def main():
    X, y = make_moons(n_samples=400, noise=0.15, random_state=0)
    model = MLPClassifier(hidden_layer_sizes=(16, 16), max_iter=3000, random_state=0).fit(X, y)
    # two logits (class 0, class 1): the binary model's single logit z becomes (0, z)
    weights = [w.T for w in model.coefs_]
    biases = list(model.intercepts_)
    weights[-1] = np.vstack([np.zeros_like(weights[-1]), weights[-1]])
    biases[-1] = np.concatenate([[0.0], biases[-1]])
    out = Path(__file__).parent / "nets" / "moons_2_16_16_2.npz"
    np.savez(out, **{f"W{i}": w for i, w in enumerate(weights)},
             **{f"b{i}": b for i, b in enumerate(biases)})
    print(f"accuracy: {model.score(X, y):.3f}")
    print(f"saved: {out}")


if __name__ == "__main__":
    main()
