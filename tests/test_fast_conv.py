"""The CNN's fast path (``model.backprop=fast``: backpropagation through the conv-pool layers written out, SGD in
place) against autograd and ``torch.optim.SGD``, and where it gives way to them."""

import copy
import functools
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from fitting import fit
from nndl.costs import CrossEntropyCost, LogLikelihoodCost, QuadraticCost
from nndl.errors import ConfigError
from nndl.fast_conv import conv_blocks, conv_fast_path_refusal
from nndl.models import CNN
from paths import autograd_update, check_a_run_continues_on_either_path, groups

SGD = functools.partial(torch.optim.SGD, lr=0.1)
MOMENTUM = functools.partial(torch.optim.SGD, lr=0.05, momentum=0.9)

# name: (CNN settings, cost, optimizer, L2 decay); each checked against autograd over three mini-batches
CASES = {
    "ch6_relu": ({}, LogLikelihoodCost(), SGD, 0.01),
    "ch6_conv_sigmoid": (
        {"channels": [6], "conv_activation": nn.Sigmoid, "activation": nn.Sigmoid},
        LogLikelihoodCost(),
        SGD,
        0.0,
    ),
    "tanh_padding_momentum": (
        {"conv_activation": nn.Tanh, "activation": nn.Tanh, "padding": 2},
        CrossEntropyCost(),
        MOMENTUM,
        0.01,
    ),
    "pool_first": ({"pool_first": True}, QuadraticCost(), SGD, 0.01),
    "nchw_no_hidden_fc": ({"channels_last": False, "fc_sizes": []}, LogLikelihoodCost(), MOMENTUM, 0.0),
    "ch6_dropout": ({"fc_sizes": [30, 20], "dropout": 0.3}, LogLikelihoodCost(), MOMENTUM, 0.01),
    "identity_pool_3_two_fc": (
        {"channels": [5], "conv_activation": nn.Identity, "pool_size": 3, "fc_sizes": [12, 8]},
        QuadraticCost(),
        SGD,
        0.0,
    ),
}


def make(settings: dict, cost, optimizer, dtype=torch.float64) -> CNN:
    torch.manual_seed(0)
    settings = {"channels": [4, 6], "padding": 0, "fc_sizes": [16], "activation": nn.ReLU} | settings
    conv_activation = settings.pop("conv_activation", nn.ReLU)
    return CNN(cost, optimizer, settings.pop("activation"), conv_activation, **settings).to(dtype)


@pytest.mark.parametrize("case", CASES)
def test_the_fast_path_is_autograd_and_torchs_sgd(case):
    settings, cost, optimizer, decay = CASES[case]
    fast = make(settings, cost, optimizer)
    slow = copy.deepcopy(fast)
    slow.backprop = "autograd"
    fast_opt, slow_opt = optimizer(groups(fast, decay)), optimizer(groups(slow, decay))
    start = [p.detach().clone() for p in fast.parameters()]
    generator = torch.Generator().manual_seed(1)
    for step, m in enumerate((10, 10, 7)):  # a smaller last mini-batch, as at an epoch's end
        x = torch.rand(m, 1, 28, 28, dtype=torch.float64, generator=generator)
        y = torch.randint(0, 10, (m,), generator=generator)
        torch.manual_seed(100 + step)  # dropout's masks: both paths draw them from the same state
        z_fast = fast.update_mini_batch(x, y, fast_opt)
        torch.manual_seed(100 + step)
        z_slow, loss_slow = autograd_update(slow, x, y, slow_opt)
        torch.testing.assert_close(z_fast, z_slow, rtol=0, atol=1e-9)
        torch.testing.assert_close(fast.mini_batch_costs([z_fast], y), loss_slow.reshape(1), rtol=0, atol=1e-9)
    assert fast._fast is not None
    fast._fast.expose_gradients()
    for (name, p), q, p0 in zip(fast.named_parameters(), slow.parameters(), start, strict=True):
        assert (p - p0).abs().max() > 1e-6, f"{name} did not move"
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6, msg=name)
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=1e-6, msg=f"∂C/∂{name}")
        assert p.grad.stride() == q.grad.stride()  # the parameter's own layout (channels-last conv weights)
        if optimizer is MOMENTUM:  # the velocities live in the optimizer's own state, as torch's
            mine, torchs = fast_opt.state[p]["momentum_buffer"], slow_opt.state[q]["momentum_buffer"]
            torch.testing.assert_close(mine, torchs, rtol=0, atol=1e-6, msg=f"momentum of {name}")


def test_a_run_saved_on_one_path_continues_on_the_other():
    settings, cost, optimizer, decay = CASES["tanh_padding_momentum"]
    check_a_run_continues_on_either_path(make(settings, cost, optimizer), optimizer, decay)


@pytest.mark.parametrize(
    ("settings", "optimizer", "reason"),
    [
        ({"batch_norm": True}, SGD, "batch_norm"),
        ({"conv_activation": nn.GELU}, SGD, "conv activation GELU"),
        ({"activation": nn.GELU}, SGD, "hidden activation GELU"),
        ({}, functools.partial(torch.optim.Adam, lr=1e-3), "optimizer Adam"),
        ({}, functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9, nesterov=True), "SGD with nesterov"),
        ({"backprop": "autograd"}, SGD, None),
    ],
    ids=["batch_norm", "gelu_conv", "gelu_fc", "adam", "nesterov", "autograd"],
)
def test_where_it_is_not_exact_autograd_trains(settings, optimizer, reason):
    net = make(settings, LogLikelihoodCost(), optimizer, dtype=torch.float32)
    opt = optimizer(net.parameters())
    fc = [module for module in net.classifier if isinstance(module, nn.Linear)]
    hidden = next(m for m in net.classifier if not isinstance(m, (nn.Flatten, nn.Dropout, nn.Linear)))
    if reason is not None:
        assert conv_fast_path_refusal(net.features, fc, hidden, net.cost, opt) == reason
    net._trainer = SimpleNamespace(world_size=1, precision="32-true")  # what the base path asks of its Trainer
    before = [p.detach().clone() for p in net.parameters()]
    net.update_mini_batch(torch.rand(4, 1, 28, 28), torch.tensor([1, 2, 3, 4]), opt)
    assert net._fast is None
    assert all(not torch.equal(p, q) for p, q in zip(net.parameters(), before, strict=True) if p.requires_grad)


def test_the_refusals_of_the_run():
    net = make({}, LogLikelihoodCost(), SGD, dtype=torch.float32)
    fc = [module for module in net.classifier if isinstance(module, nn.Linear)]
    sgd = torch.optim.SGD(net.parameters(), lr=0.1)

    def refusal(**kwargs):
        return conv_fast_path_refusal(net.features, fc, nn.ReLU(), net.cost, sgd, **kwargs)

    assert refusal() is None and refusal(precision="32-true") is None
    assert refusal(precision="bf16-mixed") == "precision bf16-mixed"
    assert refusal(world_size=2) == "2 processes"


def test_the_cnn_has_no_manual_backprop():
    with pytest.raises(ConfigError, match=r"model\.backprop='manual' is not allowed for the CNN"):
        make({"backprop": "manual"}, LogLikelihoodCost(), SGD)


def test_the_trainer_takes_the_fast_path(shared_mnist, tmp_path):
    """Through Lightning (steps of 16 mini-batches), from the same start and data order, the fast path ends
    where autograd and torch's SGD end, in float32 with L2 and momentum; the last mini-batch's gradients are the
    parameters' ``.grad`` (for the histograms)."""
    trained = []
    for backprop in ("fast", "autograd"):
        torch.manual_seed(1)
        model = CNN(LogLikelihoodCost(), MOMENTUM, nn.ReLU, nn.ReLU, channels=[4, 6], padding=0, fc_sizes=[16],
                    l2=1.0, backprop=backprop)  # fmt: skip
        trainer = fit(model, shared_mnist, tmp_path, max_epochs=1)
        assert (model._fast is not None) == (backprop == "fast") and trainer.global_step == 50
        trained.append(model)
    for (name, p), q in zip(trained[0].named_parameters(), trained[1].parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-5, msg=name)
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=1e-5, msg=f"∂C/∂{name}")


@pytest.mark.parametrize(
    ("features", "reason"),
    [
        ((nn.Conv2d(1, 4, (5, 3)), nn.ReLU(), nn.MaxPool2d(2)), "a kernel or pool window that is not square"),
        (
            (nn.Conv2d(1, 4, 5, stride=2), nn.ReLU(), nn.MaxPool2d(2)),
            "a convolution with stride, dilation, groups or no bias",
        ),
        (
            (nn.Conv2d(1, 4, 5), nn.ReLU(), nn.MaxPool2d(2, stride=1)),
            "a max-pooling with stride, padding, dilation or ceil_mode",
        ),
        ((nn.Conv2d(1, 4, 5), nn.ReLU(), nn.AvgPool2d(2)), "a block ['Conv2d', 'ReLU', 'AvgPool2d']"),
    ],
    ids=["rectangular", "stride", "overlapping_pool", "average_pool"],
)
def test_conv_layers_it_does_not_compute_are_named(features, reason):
    assert conv_blocks(nn.Sequential(*features)) == reason
