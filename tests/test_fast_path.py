"""The MLP's fast path (``model.backprop=fast``: BP1–BP4 and the SGD update in place) against autograd and
``torch.optim.SGD``, and where it gives way to them."""

import copy
import functools
import warnings
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from fitting import fit
from nndl.costs import CrossEntropyCost, LogLikelihoodCost, QuadraticCost
from nndl.fast_backprop import fast_path_refusal
from nndl.models import MLP
from paths import autograd_update, check_a_run_continues_on_either_path, groups

COSTS = {"quadratic": QuadraticCost(), "cross_entropy": CrossEntropyCost(), "log_likelihood": LogLikelihoodCost()}
ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "identity": nn.Identity}
OPTIMIZERS = {
    "sgd": functools.partial(torch.optim.SGD, lr=0.5),
    "momentum_l2": functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9),
}


def twins(cost: str, activation: str, optimizer: str, dtype=torch.float64):
    """The same network twice, ``fast`` and ``autograd``, each with its optimizer."""
    torch.manual_seed(0)
    make = OPTIMIZERS[optimizer]
    fast = MLP(COSTS[cost], make, ACTIVATIONS[activation], sizes=[784, 20, 15, 10], init="default").to(dtype)
    slow = copy.deepcopy(fast)
    slow.backprop = "autograd"
    decay = 0.01 if optimizer == "momentum_l2" else 0.0
    return fast, make(groups(fast, decay)), slow, make(groups(slow, decay))


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("cost", COSTS)
def test_the_fast_path_is_autograd_and_torchs_sgd(cost, activation, optimizer):
    fast, fast_opt, slow, slow_opt = twins(cost, activation, optimizer)
    generator = torch.Generator().manual_seed(1)
    for m in (8, 8, 5):  # a smaller last mini-batch, as at an epoch's end
        x = torch.rand(m, 1, 28, 28, dtype=torch.float64, generator=generator)
        y = torch.randint(0, 10, (m,), generator=generator)
        z_fast = fast.update_mini_batch(x, y, fast_opt)
        z_slow, loss_slow = autograd_update(slow, x, y, slow_opt)
        torch.testing.assert_close(z_fast, z_slow, rtol=0, atol=1e-9)
        torch.testing.assert_close(fast.mini_batch_costs([z_fast], y), loss_slow.reshape(1), rtol=0, atol=1e-9)
    assert fast._fast is not None
    fast.log_gradients = slow.log_gradients = lambda: None  # (no Trainer to log to)
    fast._fast.expose_gradients()
    for (name, p), q in zip(fast.named_parameters(), slow.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6, msg=name)
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=1e-6, msg=f"∂C/∂{name}")
        assert q.grad.abs().max() > 1e-8
        if optimizer == "momentum_l2":  # the velocities live in the optimizer's own state, as torch's
            mine, torchs = fast_opt.state[p]["momentum_buffer"], slow_opt.state[q]["momentum_buffer"]
            torch.testing.assert_close(mine, torchs, rtol=0, atol=1e-6, msg=f"momentum of {name}")


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_dropout_on_the_fast_path_is_autograds(optimizer):
    """With dropout the fast path draws the masks as ``nn.Dropout`` does: from the same random state, the same
    neurons are dropped and the updates are autograd's."""
    fast, fast_opt, slow, slow_opt = twins("cross_entropy", "sigmoid", optimizer)  # σ > 0: a 0 is a dropped one
    fast.dropout.p = slow.dropout.p = 0.4
    generator = torch.Generator().manual_seed(1)
    for step, m in enumerate((8, 8, 5)):
        x = torch.rand(m, 1, 28, 28, dtype=torch.float64, generator=generator)
        y = torch.randint(0, 10, (m,), generator=generator)
        torch.manual_seed(100 + step)
        z_fast = fast.update_mini_batch(x, y, fast_opt)
        torch.manual_seed(100 + step)
        z_slow, _ = autograd_update(slow, x, y, slow_opt)
        torch.testing.assert_close(z_fast, z_slow, rtol=0, atol=1e-9)
    assert fast._fast is not None
    fast._fast.expose_gradients()
    for (name, p), q in zip(fast.named_parameters(), slow.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6, msg=name)
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=1e-6, msg=f"∂C/∂{name}")
    dropped = (fast._fast.last[1][1] == 0).float().mean()  # the second layer's inputs: 40% of them dropped
    assert 0.2 < dropped < 0.6


def test_a_resumed_optimizer_state_continues_on_either_path():
    fast, *_ = twins("log_likelihood", "relu", "momentum_l2")
    check_a_run_continues_on_either_path(fast, OPTIMIZERS["momentum_l2"], 0.01)


def test_a_schedule_on_the_fast_path_does_not_warn():
    """torch warns when a schedule steps before the optimizer has; the fast path makes the optimizer's steps."""
    fast, fast_opt, *_ = twins("cross_entropy", "sigmoid", "sgd")
    scheduler = torch.optim.lr_scheduler.StepLR(fast_opt, step_size=1, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fast.update_mini_batch(torch.rand(8, 1, 28, 28, dtype=torch.float64), torch.arange(8), fast_opt)
        scheduler.step()
    assert fast._fast is not None and fast_opt.param_groups[0]["lr"] == 0.25


def test_the_learning_rate_is_read_at_every_update():
    fast, fast_opt, slow, slow_opt = twins("cross_entropy", "sigmoid", "sgd")
    x, y = torch.rand(8, 1, 28, 28, dtype=torch.float64), torch.randint(0, 10, (8,))
    for lr in (0.5, 0.1, 2.0):  # as a schedule would set it between updates
        for optimizer in (fast_opt, slow_opt):
            for group in optimizer.param_groups:
                group["lr"] = lr
        fast.update_mini_batch(x, y, fast_opt)
        autograd_update(slow, x, y, slow_opt)
    for p, q in zip(fast.parameters(), slow.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    ("model", "optimizer"),
    [
        ({"activation": nn.GELU}, OPTIMIZERS["sgd"]),
        ({"backprop": "autograd"}, OPTIMIZERS["sgd"]),
        ({}, functools.partial(torch.optim.Adam, lr=1e-3)),
        ({}, functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9, nesterov=True)),
    ],
    ids=["gelu", "autograd", "adam", "nesterov"],
)
def test_where_it_is_not_exact_autograd_trains(model, optimizer):
    settings = {"activation": nn.Sigmoid} | model
    net = MLP(QuadraticCost(), optimizer, settings.pop("activation"), **settings)
    opt = optimizer(net.parameters())
    net._trainer = SimpleNamespace(world_size=1, precision="32-true")  # what the base path asks of its Trainer
    before = [p.detach().clone() for p in net.parameters()]
    net.update_mini_batch(torch.rand(4, 1, 28, 28), torch.tensor([1, 2, 3, 4]), opt)
    assert net._fast is None
    assert all(not torch.equal(p, q) for p, q in zip(net.parameters(), before, strict=True))


def test_the_refusals_name_their_reason():
    net = MLP(QuadraticCost(), OPTIMIZERS["sgd"], nn.Sigmoid)
    layers, sgd = list(net.layers), torch.optim.SGD(net.parameters(), lr=0.1)

    def refusal(**kwargs):
        return fast_path_refusal(layers, net.activation, net.cost, sgd, **kwargs)

    assert refusal() is None and refusal(precision="32-true") is None and refusal(precision="64-true") is None
    assert refusal(precision="bf16-mixed") == "precision bf16-mixed"
    assert refusal(world_size=2) == "2 processes"
    other = torch.optim.SGD([nn.Parameter(torch.zeros(3))], lr=0.1)
    reason = fast_path_refusal(layers, net.activation, net.cost, other)
    assert reason == "the optimizer's parameters are not the network's"
    net.layers[0].bias.requires_grad_(False)  # torch's SGD leaves a frozen parameter as it is
    assert refusal() == "a frozen parameter"
    net.layers[0].bias.requires_grad_(True)
    net.to("meta")  # not the CPU: a GPU's dropout and convolutions round and draw otherwise
    assert refusal() == "parameters on ['meta']"


def test_the_trainer_takes_the_fast_path_and_logs_the_gradient_norms(shared_mnist, tmp_path):
    torch.manual_seed(1)
    model = MLP(QuadraticCost(), OPTIMIZERS["momentum_l2"], nn.Sigmoid, sizes=[784, 30, 10], l2=1.0)
    trainer = fit(model, shared_mnist, tmp_path, max_epochs=1)
    assert model._fast is not None and trainer.global_step == 50
    for l, layer in enumerate(model.layers, start=1):
        norm = trainer.callback_metrics[f"grad_norm/layer_{l}"]
        assert torch.isfinite(norm) and norm > 0
        torch.testing.assert_close(norm, layer.bias.grad.norm())
        assert "momentum_buffer" in trainer.optimizers[0].state[layer.weight]
