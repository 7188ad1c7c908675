"""The committed digits CNN (examples/digits_cnn): its ONNX graph keeps the BatchNorm that
polyrelu folds; the loaded network equals onnxruntime on the test images; the two
enumerators agree on a ball around an image (64 inputs, max windows)."""

from pathlib import Path

import numpy as np
import pytest

from polyrelu import Domain, enumerate_regions
from polyrelu.network.loaders import load_network
from polyrelu.regions.crosscheck import compare_complexes
from polyrelu.regions.splitting import enumerate_by_splitting

onnx = pytest.importorskip("onnx")
HERE = Path(__file__).resolve().parents[2] / "examples" / "digits_cnn"


def test_the_graph_keeps_batchnorm_and_loads_exactly():
    import onnxruntime

    graph = onnx.load(HERE / "digits_cnn.onnx").graph
    assert [node.op_type for node in graph.node][:4] == ["Conv", "BatchNormalization", "Relu",
                                                        "MaxPool"]
    network = load_network(HERE / "digits_cnn.onnx")
    layer = network.layers[0]
    assert layer.relu_units.size == 256 and layer.windows.shape == (64, 4)
    data = np.load(HERE / "test_images.npy", allow_pickle=False)
    session = onnxruntime.InferenceSession(str(HERE / "digits_cnn.onnx"),
                                           providers=["CPUExecutionProvider"])
    expected = session.run(None, {session.get_inputs()[0].name:
                                  data["image"][:, None].astype(np.float32)})[0]
    ours = network.forward(data["image"].reshape(len(data), -1))
    scale = np.abs(expected).max()
    assert np.abs(ours - expected).max() <= 1e-5 * scale  # float32 rounding in onnxruntime
    assert (ours.argmax(axis=1) == data["label"]).all()


def test_walk_and_splitting_agree_on_a_ball_around_an_image():
    network = load_network(HERE / "digits_cnn.onnx")
    image = np.load(HERE / "test_images.npy", allow_pickle=False)["image"][3].reshape(-1)
    domain = Domain.ball(image, 1e-3)
    walked = enumerate_regions(network, domain)
    split = enumerate_by_splitting(network, domain)
    assert len(walked) > 1 and compare_complexes(walked, split).agree
    # the regions tile the ball (a volume sum needs every vertex of a 64-D polytope: 2^64
    # for the ball itself): sampled points fall in exactly one region, whose map is the
    # network's there
    points = image + np.random.default_rng(3).uniform(-1e-3, 1e-3, size=(2000, 64))
    inside = np.array([[np.all(r.polytope.A @ x <= r.polytope.b + 1e-12) for r in split]
                       for x in points])
    assert np.all(inside.sum(axis=1) == 1)
    owners = [split[i] for i in inside.argmax(axis=1)]
    mapped = np.array([r.apply(x)[0] for r, x in zip(owners, points)])
    np.testing.assert_allclose(mapped, network.forward(points), rtol=0, atol=1e-9)


def test_the_example_verification_query(tmp_path):
    """examples/digits_cnn/analyse.py's verification: the 3 is robust in the l_inf ball of
    radius 0.01 (a checked certificate; 2000 sampled points of the ball, run through
    onnxruntime, keep class 3) and not in the ball of radius 0.5 (the counterexample
    lies in the ball and onnxruntime classifies it otherwise)."""
    import importlib.util

    import onnxruntime

    from polyrelu.verification import check_certificate, verify
    from polyrelu.verification.vnnlib import read_vnnlib

    spec = importlib.util.spec_from_file_location("analyse", HERE / "analyse.py")
    analyse = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(analyse)
    ROBUST_RADII, robustness_vnnlib = analyse.ROBUST_RADII, analyse.robustness_vnnlib

    network = load_network(HERE / "digits_cnn.onnx")
    data = np.load(HERE / "test_images.npy", allow_pickle=False)
    image, label = data["image"][3].reshape(-1), int(data["label"][3])
    session = onnxruntime.InferenceSession(str(HERE / "digits_cnn.onnx"),
                                           providers=["CPUExecutionProvider"])

    def classes(x):
        x = np.asarray(x, dtype=np.float32).reshape(-1, 1, 8, 8)
        return session.run(None, {session.get_inputs()[0].name: x})[0].argmax(axis=1)

    small, large = ROBUST_RADII
    prop = read_vnnlib(robustness_vnnlib(image, label, small))
    case = prop.cases[0]
    assert np.allclose(case.lower, np.clip(image - small, 0, 1))
    result = verify(network, prop, timeout=120)
    assert result.status == "holds" and result.stats["certificate"] == "checked"
    check_certificate(network, prop, result.certificate)
    points = np.random.default_rng(0).uniform(case.lower, case.upper, size=(2000, 64))
    assert (classes(points) == label).all()
    prop = read_vnnlib(robustness_vnnlib(image, label, large))
    result = verify(network, prop, timeout=120)
    assert result.status == "violated"
    x = result.counterexample.x
    case = prop.cases[0]
    assert np.all(case.lower <= x) and np.all(x <= case.upper)
    assert classes(x)[0] != label
