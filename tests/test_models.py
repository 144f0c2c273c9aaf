"""The MLP and CNN: shapes, parameter counts, the book's initialisations, and the errors for bad settings."""

import csv
import functools

import pytest
import torch
from torch import nn

from cli import ROOT
from nndl.build import build_run
from nndl.config import compose
from nndl.costs import CrossEntropyCost, LogLikelihoodCost, QuadraticCost
from nndl.errors import ConfigError
from nndl.loggers import tensorboard_logger
from nndl.models import CNN, MLP

SGD = functools.partial(torch.optim.SGD, lr=3.0)


def mlp(**kwargs) -> MLP:
    return MLP(cost=QuadraticCost(), optimizer=SGD, activation=nn.Sigmoid, **kwargs)


def cnn(**kwargs) -> CNN:
    return CNN(cost=LogLikelihoodCost(), optimizer=SGD, activation=nn.Sigmoid, conv_activation=nn.ReLU, **kwargs)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_mlp_maps_images_to_ten_outputs():
    model = mlp(sizes=[784, 30, 10])
    assert model(torch.rand(4, 1, 28, 28)).shape == (4, 10)
    assert n_params(model) == 784 * 30 + 30 + 30 * 10 + 10
    assert [layer.weight.shape for layer in model.layers] == [(30, 784), (10, 30)]  # w^l is (n_l, n_{l−1})
    assert model.architecture == "784-30-10"


def test_mlp_hidden_layers_use_the_activation():
    model = MLP(cost=QuadraticCost(), optimizer=SGD, activation=nn.Tanh, sizes=[784, 5, 10])
    x = torch.rand(3, 1, 28, 28)
    w1, b1 = model.layers[0].weight, model.layers[0].bias
    w2, b2 = model.layers[1].weight, model.layers[1].bias
    expected = torch.tanh(x.flatten(1) @ w1.T + b1) @ w2.T + b2
    torch.testing.assert_close(model(x), expected)


def test_large_init_is_standard_normal_and_default_init_scales_by_fan_in():
    torch.manual_seed(0)
    large, default = mlp(sizes=[784, 100, 10], init="large"), mlp(sizes=[784, 100, 10], init="default")
    assert large.layers[0].weight.std().item() == pytest.approx(1.0, rel=0.02)
    assert default.layers[0].weight.std().item() == pytest.approx(784**-0.5, rel=0.02)
    assert default.layers[1].weight.std().item() == pytest.approx(100**-0.5, rel=0.1)
    for model in (large, default):  # biases N(0, 1) in both network.py and network2.py
        assert model.layers[0].bias.std().item() == pytest.approx(1.0, rel=0.2)


def test_cnn_is_the_notes_network():
    model = cnn()
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == [
        (1, 16, (5, 5), (1, 1), (2, 2)),
        (16, 32, (5, 5), (1, 1), (2, 2)),
    ]
    fcs = [m for m in model.classifier if isinstance(m, nn.Linear)]
    assert [(fc.in_features, fc.out_features) for fc in fcs] == [(1568, 100), (100, 10)]
    assert [type(m) for m in model.features] == [nn.Conv2d, nn.ReLU, nn.MaxPool2d] * 2
    assert isinstance(model.classifier[2], nn.Sigmoid)
    assert n_params(model) == 416 + 12_832 + 156_900 + 1_010
    assert model.architecture == "conv16-conv32-fc100-10"


def test_cnn_is_configurable():
    model = cnn(channels=[20, 40], padding=0, fc_sizes=[1000, 1000])  # the book's chapter 6 layout
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    fcs = [m for m in model.classifier if isinstance(m, nn.Linear)]
    assert [(fc.in_features, fc.out_features) for fc in fcs] == [(40 * 4 * 4, 1000), (1000, 1000), (1000, 10)]


@pytest.mark.parametrize(
    ("factory", "kwargs", "message"),
    [
        (mlp, {"sizes": [100, 30, 10]}, r"model.sizes=\[100, 30, 10\] is not allowed: it must start with 784"),
        (mlp, {"sizes": [784, 30, 9]}, r"model.sizes=\[784, 30, 9\] is not allowed"),
        (mlp, {"init": "xavier"}, r"model.init='xavier' is not allowed: choose one of large, default"),
        (cnn, {"channels": [8] * 5, "padding": 0}, r"model.channels=\[8, 8, 8, 8, 8\] .* shrinks the 28×28 image"),
        (mlp, {"dropout": 1.0}, r"model.dropout=1.0 is out of range: it must be a number in \[0, 1\)"),
        (cnn, {"dropout": -0.1}, r"model.dropout=-0.1 is out of range: it must be a number in \[0, 1\)"),
    ],
)
def test_bad_settings_name_the_key(factory, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        factory(**kwargs)


def test_a_curve_fit_logging_to_csv_only_trains_without_its_figure(tmp_path):
    """The fit's figure is TensorBoard's: a run with other loggers only (no ``add_figure``) draws none."""
    cfg = compose(ROOT / "conf", ["experiment=universality", "logger=csv", "trainer.max_epochs=1"], tmp_path)
    run = build_run(cfg)
    assert tensorboard_logger(run.trainer.loggers) is None
    run.trainer.fit(run.model, datamodule=run.datamodule)
    with open(tmp_path / "metrics.csv") as f:
        assert [row["epoch"] for row in csv.DictReader(f) if row.get("val/loss")] == ["0.0"]


@pytest.mark.parametrize("cost", [QuadraticCost(), CrossEntropyCost(), LogLikelihoodCost()], ids=type)
def test_the_cost_of_each_mini_batch_is_computed_a_step_at_a_time(cost):
    model = MLP(cost, SGD, nn.Sigmoid, sizes=[784, 30, 10])
    sizes = [10, 10, 0, 3]  # a data-parallel share may be empty, an epoch's last mini-batch smaller
    zs = [torch.randn(m, 10, dtype=torch.float64) for m in sizes]
    ys = [torch.randint(0, 10, (m,)) for m in sizes]
    expected = [cost(z, y) if len(y) else torch.zeros((), dtype=torch.float64) for z, y in zip(zs, ys, strict=True)]
    torch.testing.assert_close(model.mini_batch_costs(zs, torch.cat(ys)), torch.stack(expected), rtol=0, atol=1e-12)
