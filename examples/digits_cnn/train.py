"""Train the digits CNN and write digits_cnn.onnx and test_images.npy next to this file.

Run from the repository root:  python examples/digits_cnn/train.py
Needs torch, scikit-learn, onnx and onnxruntime; the committed outputs let the example
run without them. Deterministic on one machine (fixed seeds, one thread); takes a few
seconds on a CPU.

The model, on scikit-learn's bundled 8x8 digits (pixels scaled to [0, 1]):

    Conv2d(1, 4, 3, padding=1) -> BatchNorm2d(4) -> ReLU -> MaxPool2d(2)
    -> Flatten -> Linear(64, 10)

that is 256 ReLU units and 64 max windows of 4 in one hidden layer, then 10 logits.
Checks after writing: onnxruntime's forward of the ONNX file against torch (1e-6 of the
largest logit, float32), polyrelu's exact model (from_torch) against torch (1e-9,
float64), and polyrelu's load of the ONNX file (from_onnx) against onnxruntime (1e-6 of
the largest logit). The export keeps the BatchNorm (the TorchScript exporter would fold it into
the convolution in eval mode): the ONNX graph is Conv, BatchNormalization, Relu,
MaxPool, Flatten, Gemm, and polyrelu's ONNX loader folds the BatchNorm itself.
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
SEED = 0


def data():
    """Train and test splits of the digits: images (n, 1, 8, 8) in [0, 1], labels."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0)[:, None].astype(np.float32)
    return train_test_split(images, digits.target, test_size=0.25, random_state=SEED,
                            stratify=digits.target)


def model():
    """The untrained CNN."""
    from torch import nn

    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 10))


def train(net, images, labels, epochs=40, batch=64):
    """Adam on the cross-entropy, fixed order of minibatches."""
    import torch

    generator = torch.Generator().manual_seed(SEED)
    x, y = torch.from_numpy(images), torch.from_numpy(labels).long()
    optimiser = torch.optim.Adam(net.parameters(), lr=0.01)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch):
            index = order[start:start + batch]
            optimiser.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x[index]), y[index])
            loss.backward()
            optimiser.step()
    return net.eval()


def accuracy(net, images, labels):
    import torch

    with torch.no_grad():
        return float((net(torch.from_numpy(images)).argmax(1).numpy() == labels).mean())


def export_onnx(net, path):
    """torch.onnx.export (the TorchScript exporter, offline), opset 17, dynamic batch.

    ``training=PRESERVE`` on the model in eval mode exports it as it is (BatchNorm in
    inference form) but skips the exporter's eval-mode pass that folds BatchNorm into
    the convolution, so the file keeps a BatchNormalization node for polyrelu's loader
    to fold."""
    import torch

    assert not net.training
    torch.onnx.export(net, (torch.zeros(1, 1, 8, 8),), str(path), dynamo=False,
                      input_names=["image"], output_names=["logits"], opset_version=17,
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)


def check(net, path, images):
    """onnxruntime (float32, relative to the largest logit) and polyrelu (float64,
    absolute) against torch, and polyrelu's load of the ONNX file (which folds its
    BatchNormalization) against onnxruntime (relative); returns the largest differences."""
    import copy

    import onnxruntime
    import torch

    from polyrelu.network.onnx_import import from_onnx
    from polyrelu.network.torch_import import from_torch

    net64 = copy.deepcopy(net).double()
    with torch.no_grad():
        expected = net(torch.from_numpy(images)).numpy()
        expected64 = net64(torch.from_numpy(images).double()).numpy()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {"image": images})[0]
    exact = from_torch(net64, (1, 8, 8)).forward(images.reshape(len(images), -1))
    loaded = from_onnx(path).forward(images.reshape(len(images), -1).astype(np.float64))
    # float32 rounding: relative to the largest logit
    onnx_error = float(np.abs(onnx_out - expected).max() / np.abs(expected).max())
    exact_error = float(np.abs(exact - expected64).max())
    loaded_error = float(np.abs(loaded - onnx_out).max() / np.abs(onnx_out).max())
    assert onnx_error < 1e-6, onnx_error
    assert exact_error < 1e-9, exact_error
    assert loaded_error < 1e-6, loaded_error
    return onnx_error, exact_error, loaded_error


def test_images(net, images, labels):
    """One correctly classified test image per digit, in label order (structured array:
    ``image`` (8, 8) float64 in [0, 1], ``label``)."""
    import torch

    with torch.no_grad():
        predicted = net(torch.from_numpy(images)).argmax(1).numpy()
    chosen = [np.flatnonzero((labels == d) & (predicted == d))[0] for d in range(10)]
    table = np.zeros(10, dtype=[("image", "f8", (8, 8)), ("label", "i8")])
    table["image"] = images[chosen, 0]
    table["label"] = labels[chosen]
    return table


def main():
    import torch

    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    train_x, test_x, train_y, test_y = data()
    net = train(model(), train_x, train_y)
    print(f"train accuracy {accuracy(net, train_x, train_y):.3f}, "
          f"test accuracy {accuracy(net, test_x, test_y):.3f} ({len(test_y)} images)")
    onnx_path = HERE / "digits_cnn.onnx"
    export_onnx(net, onnx_path)
    onnx_error, exact_error, loaded_error = check(net, onnx_path, test_x)
    print(f"onnxruntime vs torch: {onnx_error:.1e} (relative); polyrelu vs torch "
          f"(float64): {exact_error:.1e}; polyrelu's ONNX load vs onnxruntime: "
          f"{loaded_error:.1e} (relative)")
    np.save(HERE / "test_images.npy", test_images(net, test_x, test_y), allow_pickle=False)
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size} bytes) and "
          f"{HERE / 'test_images.npy'}")


if __name__ == "__main__":
    main()
