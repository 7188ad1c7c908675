"""from_torch against torch's own forward pass (the oracle), layer by layer."""

import subprocess
import sys
import warnings

import numpy as np
import pytest

from polyrelu.errors import InvalidNetworkError, UnsafeFileError, UnsupportedLayerError

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional

from polyrelu.network.loaders import from_torch_state, load_network
from polyrelu.network.torch_import import from_torch

POINTS = 10_000


def _agrees(module, shape, tol=1e-9, scale=2.0):
    """Convert ``module`` (float64, eval) and compare with torch at random points."""
    torch.manual_seed(1)
    module = module.double().eval()
    network = from_torch(module, shape)
    x = scale * torch.randn(POINTS, *shape, dtype=torch.float64)
    with torch.no_grad():
        expected = module(x).reshape(POINTS, -1).numpy()
    np.testing.assert_allclose(network.forward(x.reshape(POINTS, -1).numpy()), expected,
                               rtol=tol, atol=tol)
    return network


class _Lambda(nn.Module):
    """A module around a forward function (functional forms, shape methods)."""

    def __init__(self, function, *modules):
        super().__init__()
        self.function = function
        self.layers = nn.ModuleList(modules)

    def forward(self, x):
        return self.function(x, *self.layers)


def _batch_norm(cls, channels, affine=True):
    layer = cls(channels, affine=affine)
    torch.manual_seed(5)
    layer.running_mean.normal_()
    layer.running_var.uniform_(0.3, 3.0)
    if affine:
        layer.weight.data.normal_()
        layer.bias.data.normal_()
    return layer


LAYERS = {
    "linear": (lambda: nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3)), (5,)),
    "linear-no-bias": (lambda: nn.Sequential(nn.Linear(5, 4, bias=False), nn.ReLU()), (5,)),
    "linear-3d": (lambda: nn.Sequential(nn.Linear(3, 2), nn.ReLU()), (4, 3)),
    "conv2d": (lambda: nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU()), (2, 6, 5)),
    "conv2d-stride-pad": (lambda: nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1),
                                                nn.ReLU()), (2, 7, 6)),
    "conv2d-asym": (lambda: nn.Sequential(nn.Conv2d(2, 2, (3, 2), stride=(1, 2),
                                                    padding=(2, 1), dilation=(2, 1)),
                                          nn.ReLU()), (2, 6, 5)),
    "conv2d-same": (lambda: nn.Sequential(nn.Conv2d(1, 2, 4, padding="same", dilation=2),
                                          nn.ReLU()), (1, 7, 6)),
    "conv2d-valid": (lambda: nn.Sequential(nn.Conv2d(1, 2, 2, padding="valid")), (1, 4, 4)),
    "conv2d-groups": (lambda: nn.Sequential(nn.Conv2d(4, 6, 3, padding=1, groups=2),
                                            nn.ReLU()), (4, 4, 4)),
    "conv2d-depthwise": (lambda: nn.Sequential(nn.Conv2d(3, 3, 3, groups=3, bias=False),
                                               nn.ReLU()), (3, 5, 5)),
    "conv1d": (lambda: nn.Sequential(nn.Conv1d(2, 3, 3, stride=2, padding=1), nn.ReLU()),
               (2, 9)),
    "conv1d-same-groups": (lambda: nn.Sequential(nn.Conv1d(2, 4, 4, padding="same",
                                                           groups=2), nn.ReLU()), (2, 8)),
    "conv3d": (lambda: nn.Sequential(nn.Conv3d(2, 2, (2, 3, 2), stride=(1, 2, 1),
                                             padding=(1, 0, 1)), nn.ReLU()), (2, 3, 5, 3)),
    "conv-transpose2d": (lambda: nn.Sequential(nn.ConvTranspose2d(
        4, 2, (3, 2), stride=2, padding=(1, 0), output_padding=(1, 0), groups=2,
        dilation=(1, 3)), nn.ReLU()), (4, 3, 3)),
    "conv-transpose1d": (lambda: nn.Sequential(nn.ConvTranspose1d(2, 3, 3, bias=False),
                                               nn.ReLU()), (2, 4)),
    "batchnorm2d": (lambda: nn.Sequential(nn.Conv2d(1, 3, 2), _batch_norm(nn.BatchNorm2d, 3),
                                          nn.ReLU()), (1, 4, 4)),
    "batchnorm2d-no-affine": (lambda: nn.Sequential(_batch_norm(nn.BatchNorm2d, 2, False),
                                                    nn.ReLU()), (2, 3, 3)),
    "batchnorm1d": (lambda: nn.Sequential(nn.Linear(3, 4), _batch_norm(nn.BatchNorm1d, 4),
                                          nn.ReLU()), (3,)),
    "batchnorm1d-length": (lambda: nn.Sequential(_batch_norm(nn.BatchNorm1d, 2), nn.ReLU()),
                           (2, 5)),
    "relu": (lambda: nn.ReLU(), (6,)),
    "leaky-relu": (lambda: nn.LeakyReLU(0.2), (6,)),
    "prelu": (lambda: nn.PReLU(init=0.3), (2, 3, 3)),
    "prelu-channels": (lambda: _channels_prelu(), (3, 2, 2)),
    "hardtanh": (lambda: nn.Hardtanh(-0.5, 0.7), (6,)),
    "relu6": (lambda: nn.ReLU6(), (6,)),
    "hardsigmoid": (lambda: nn.Hardsigmoid(), (6,)),
    "softshrink": (lambda: nn.Softshrink(0.3), (6,)),
    "abs": (lambda: _Lambda(lambda x: torch.abs(x) - x.abs() * 0.5), (6,)),
    "maxpool2d": (lambda: nn.MaxPool2d(2), (2, 4, 6)),
    "maxpool2d-pad-ceil": (lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
                           (2, 6, 7)),
    "maxpool2d-dilation": (lambda: nn.MaxPool2d((2, 3), stride=(1, 2), dilation=(2, 1)),
                           (1, 6, 7)),
    "maxpool1d": (lambda: nn.MaxPool1d(3, stride=2, padding=1, ceil_mode=True), (2, 8)),
    "maxpool-after-relu": (lambda: nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(),
                                                 nn.MaxPool2d(2)), (1, 4, 4)),
    "avgpool2d": (lambda: nn.AvgPool2d(2), (2, 4, 6)),
    "avgpool2d-pad-ceil": (lambda: nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True),
                           (2, 6, 7)),
    "avgpool2d-exclude-pad": (lambda: nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True,
                                                   count_include_pad=False), (1, 6, 7)),
    "avgpool2d-divisor": (lambda: nn.AvgPool2d((3, 2), stride=(2, 1), padding=1,
                                               divisor_override=4), (1, 5, 5)),
    "avgpool1d": (lambda: nn.AvgPool1d(3, stride=2, padding=1, ceil_mode=True,
                                       count_include_pad=False), (2, 8)),
    "adaptive-avg-2d": (lambda: nn.AdaptiveAvgPool2d((3, 2)), (2, 7, 5)),
    "adaptive-avg-global": (lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
                            (3, 4, 4)),
    "adaptive-avg-none": (lambda: nn.AdaptiveAvgPool2d((None, 2)), (1, 3, 5)),
    "adaptive-avg-1d": (lambda: nn.AdaptiveAvgPool1d(3), (2, 7)),
    "adaptive-max-2d": (lambda: nn.AdaptiveMaxPool2d(2), (1, 5, 5)),
    "flatten-identity-dropout": (lambda: nn.Sequential(nn.Flatten(), nn.Identity(),
                                                       nn.Dropout(0.5), nn.Linear(8, 2)),
                                 (2, 2, 2)),
    "unflatten": (lambda: nn.Sequential(nn.Unflatten(1, (2, 3)), nn.MaxPool1d(3)), (6,)),
    "zero-pad": (lambda: nn.Sequential(nn.ZeroPad2d((1, 0, 2, 1)), nn.MaxPool2d(2)),
                 (1, 3, 3)),
    "constant-pad": (lambda: nn.Sequential(nn.ConstantPad1d(2, 0.5), nn.MaxPool1d(2)),
                     (1, 4)),
}


def _channels_prelu():
    layer = nn.PReLU(3)
    layer.weight.data = torch.tensor([0.1, -0.5, 2.0])
    return layer


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_agrees_with_torch(name):
    factory, shape = LAYERS[name]
    _agrees(factory(), shape)


FUNCTIONAL = {
    "relu-leaky-hardtanh": lambda x: F.hardtanh(F.leaky_relu(F.relu(x - 0.5) - 1, 0.1),
                                                -0.2, 0.5) + F.relu6(3 * x),
    "clamp": lambda x: torch.clamp(x, min=-0.3, max=0.4) + x.clamp(min=0.1)
    + torch.clamp_max(x, 0.2),
    "clamp-tensor": lambda x: torch.clamp(x, min=torch.linspace(-1, 0, 4, dtype=x.dtype)),
    "maximum": lambda x: torch.maximum(x[:, :2], x[:, 2:]) - torch.minimum(x[:, 1:3], x[:, :2]),
    "max-of-two": lambda x: torch.max(x, -x) + torch.min(x, x * 0.5),
    "amax": lambda x: torch.amax(x.view(x.size(0), 2, 2), dim=2) + x.amin(1, keepdim=True),
    "pools": lambda x: F.max_pool2d(x.view(-1, 1, 2, 2), 2).flatten(1)
    + F.avg_pool2d(x.reshape(x.shape[0], 1, 2, 2), 2, stride=1).flatten(1),
    "conv-transpose": lambda x: F.conv_transpose1d(
        x.view(-1, 2, 2), torch.arange(12, dtype=x.dtype).reshape(2, 3, 2) - 5, None, 2, 1, 1
    ).flatten(1),
    "pool1d": lambda x: F.max_pool1d(x.unsqueeze(1), 2) + F.avg_pool1d(x.unsqueeze(1), 2),
    "adaptive": lambda x: F.adaptive_avg_pool2d(x.view(-1, 1, 2, 2), 1).squeeze(3)
    .squeeze(2) + F.adaptive_max_pool1d(x[:, None], 2).sum(2),
    "shapes": lambda x: x.view(x.size(0), 2, 2).permute(0, 2, 1).transpose(1, 2)
    .reshape(-1, 4).unsqueeze(-1).squeeze(-1).flatten(1).contiguous(),
    "getitem": lambda x: torch.cat([x[:, 1:], x[:, ::2], x[:, [3, 0]], x[..., -1:]], dim=1),
    "cat-stack-split": lambda x: torch.stack(torch.split(x, 2, dim=1)[:2], dim=2)
    .flatten(1) + torch.cat(torch.chunk(x, 2, 1)[::-1], 1),
    "arithmetic": lambda x: 3 - 2 * x / 4 + x * torch.tensor([1.0, -1.0, 2.0, 0.5],
                                                            dtype=x.dtype) - (-x) + 1,
    "torch-arithmetic": lambda x: torch.sub(torch.add(x, x, alpha=2), 1.5).mul(2).div(3)
    .neg().add(x).sub(0.25),
    "broadcast": lambda x: x.view(-1, 2, 2) + torch.tensor([[1.0], [2.0]], dtype=x.dtype),
    "matmul": lambda x: x @ torch.arange(8, dtype=x.dtype).reshape(4, 2)
    + torch.matmul(torch.ones(3, 2, dtype=x.dtype), x.view(-1, 2, 2)).flatten(1)[:, :2],
    "reductions": lambda x: x.view(-1, 2, 2).sum(dim=1) + torch.mean(x.view(-1, 2, 2), 2)
    + x.sum(-1, keepdim=True),
    "pad": lambda x: F.pad(x.view(-1, 2, 2), (1, 0, 0, 2), value=0.5).flatten(1),
    "dropout-eval": lambda x: F.dropout(x, 0.3, training=False) * 2,
    "in-place": lambda x: _in_place(x),
}


def _in_place(x):
    h = x * 2 - 1
    r = h.relu_()  # h is overwritten: the result is 2 relu(2x - 1) + x
    return h + r + x


@pytest.mark.parametrize("name", sorted(FUNCTIONAL))
def test_functional_forms_agree_with_torch(name):
    _agrees(_Lambda(FUNCTIONAL[name]), (4,))


class _Residual(nn.Module):
    """A small CNN with a residual block and a concatenation, not a Sequential."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 3, 3, padding=1)
        self.bn = _batch_norm(nn.BatchNorm2d, 3)
        self.block = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.ReLU(),
                                   nn.Conv2d(3, 3, 1))
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(3 * 4 + 8, 4)

    def forward(self, x):
        h = F.relu(self.bn(self.stem(x)))
        h = F.relu(h + self.block(h))
        pooled = self.pool(h)  # (3, 2, 2)
        skip = x.view(x.size(0), -1)[:, ::2]  # 8 raw pixels
        features = torch.cat([torch.flatten(pooled, 1), skip], dim=1)
        return self.head(features)


def test_residual_and_cat_module():
    network = _agrees(_Residual(), (1, 4, 4))
    assert len(network.layers) == 4  # stem, block's ReLU, residual ReLU + pool, head


def test_float32_module_is_converted_to_float64():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2)).eval()
    network = from_torch(model, (1, 4, 4))
    x = torch.randn(100, 1, 4, 4)
    np.testing.assert_allclose(network.forward(x.reshape(100, -1).double().numpy()),
                               model.double()(x.double()).detach().numpy(), atol=1e-12)


def test_input_shape_inferred_from_first_linear():
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(4, 2)).eval()
    assert from_torch(model).input_dim == 4
    with pytest.raises(InvalidNetworkError, match="input_shape"):
        from_torch(nn.Sequential(nn.Conv2d(1, 1, 2)))


def test_module_is_not_modified():
    model = nn.Sequential(nn.Linear(3, 3), _batch_norm(nn.BatchNorm1d, 3)).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    from_torch(model)
    assert not model.training
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("model,shape,message", [
    (nn.Sequential(nn.Linear(2, 2), nn.Sigmoid()), None, "Sigmoid is not piecewise linear"),
    (_Lambda(torch.tanh), (2,), "tanh is not piecewise linear"),
    (nn.Sequential(nn.Linear(2, 2), nn.Softmax(1)), None, "drop a final softmax"),
    (_Lambda(lambda x: x.exp()), (2,), "exp is not piecewise linear"),
    (nn.Sequential(nn.Linear(2, 2), nn.Hardshrink()), None, "Hardshrink is not continuous"),
    (nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)), None, "training mode.*eval"),
    (nn.Sequential(nn.Linear(2, 2), nn.Dropout()), None, "Dropout in training mode"),
    (nn.MaxPool2d(2, return_indices=True), (1, 2, 2), "return_indices"),
    (nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect"), (1, 3, 3), "padding_mode"),
    (_Lambda(lambda x: x * x), (2,), "product of two input-dependent"),
    (_Lambda(lambda x: 1 / x), (2,), "dividing"),
    (_Lambda(lambda x: x.view(-1)), (2,), "batch"),
    (_Lambda(lambda x: x.sum()), (2,), "batch"),
    (_Lambda(lambda x: torch.max(x, 1)), (2,), "indices"),
    (_Lambda(lambda x: x.sort()), (2,), r"\.sort\(\)"),
    (_Lambda(lambda x: x if x.sum() > 0 else -x), (2,), "torch.fx cannot trace"),
    (nn.Sequential(nn.Conv2d(1, 1, 3)), (1, 2, 2), "does not fit"),
])
def test_refusals_name_the_layer_and_reason(model, shape, message):
    with pytest.raises(UnsupportedLayerError, match=message):
        from_torch(model, shape)


def test_refusal_names_module_and_node():
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU(), nn.GELU()))
    with pytest.raises(UnsupportedLayerError, match=r"module '1\.1' \(GELU\).*node '_1_1'"):
        from_torch(model)


def test_two_inputs_refused():
    class Two(nn.Module):
        def forward(self, x, y):
            return x + y

    with pytest.raises(UnsupportedLayerError, match="one input"):
        from_torch(Two(), (2,))


def test_state_dict_into_a_cnn(tmp_path):
    def architecture():  # in training mode, as constructed; from_torch_state calls eval()
        return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3)).double()

    trained = architecture().eval()
    trained[1].running_mean.normal_()
    torch.save(trained.state_dict(), tmp_path / "cnn.pt")
    network = from_torch_state(architecture(), tmp_path / "cnn.pt", (1, 4, 4))
    x = torch.randn(50, 1, 4, 4, dtype=torch.float64)
    np.testing.assert_allclose(network.forward(x.reshape(50, -1).numpy()),
                               trained(x).detach().numpy(), atol=1e-12)


def test_pt2_needs_trust(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), _batch_norm(nn.BatchNorm2d, 2),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3))
    model = model.double().eval()
    program = torch.export.export(model, (torch.randn(1, 1, 4, 4, dtype=torch.float64),))
    torch.export.save(program, tmp_path / "cnn.pt2")
    with pytest.raises(UnsafeFileError, match=r"torch.onnx.export.*state dict"):
        load_network(tmp_path / "cnn.pt2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        network = load_network(tmp_path / "cnn.pt2", trust=True)
    x = torch.randn(200, 1, 4, 4, dtype=torch.float64)
    np.testing.assert_allclose(network.forward(x.reshape(200, -1).numpy()),
                               model(x).detach().numpy(), atol=1e-12)


EXPORTED = ["conv-transpose2d", "conv3d", "maxpool2d-pad-ceil", "avgpool2d-exclude-pad",
            "adaptive-max-2d", "prelu-channels", "zero-pad", "batchnorm1d", "hardsigmoid"]
EXPORTED_FUNCTIONAL = ["getitem", "cat-stack-split", "max-of-two", "amax", "matmul", "pad"]


@pytest.mark.parametrize("name", EXPORTED + EXPORTED_FUNCTIONAL + ["residual"])
def test_exported_programs_agree_with_torch(name):
    from polyrelu.network.torch_import import from_exported_program

    if name in LAYERS:
        module, shape = LAYERS[name][0](), LAYERS[name][1]
    else:
        module, shape = ((_Residual(), (1, 4, 4)) if name == "residual"
                         else (_Lambda(FUNCTIONAL[name]), (4,)))
    module = module.double().eval()
    example = torch.randn(1, *shape, dtype=torch.float64)
    network = from_exported_program(torch.export.export(module, (example,)))
    x = torch.randn(1000, *shape, dtype=torch.float64)
    with torch.no_grad():
        expected = module(x).reshape(1000, -1).numpy()
    np.testing.assert_allclose(network.forward(x.reshape(1000, -1).numpy()), expected,
                               rtol=1e-9, atol=1e-9)


def test_exported_pooling_indices_refused():
    from polyrelu.network.torch_import import from_exported_program

    class Indices(nn.Module):
        def forward(self, x):
            values, indices = F.max_pool1d(x, 2, return_indices=True)
            return values + indices

    program = torch.export.export(Indices(), (torch.randn(1, 1, 4),))
    with pytest.raises(UnsupportedLayerError, match="indices"):
        from_exported_program(program)


def test_polyrelu_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None; import polyrelu, polyrelu.network; "
            "import polyrelu.network.torch_import")
    subprocess.run([sys.executable, "-c", code], check=True)
