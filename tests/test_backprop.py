"""Backpropagation by the book's four equations (nndl.backprop) against autograd."""

import functools

import pytest
import torch
from torch import nn

from fitting import fit
from nndl.backprop import backprop
from nndl.costs import CrossEntropyCost, LogLikelihoodCost, QuadraticCost
from nndl.errors import ConfigError
from nndl.models import MLP

COSTS = {"quadratic": QuadraticCost(), "cross_entropy": CrossEntropyCost(), "log_likelihood": LogLikelihoodCost()}
ACTIVATIONS = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "identity": nn.Identity,
}
SGD = functools.partial(torch.optim.SGD, lr=0.5)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("cost", COSTS)
def test_the_four_equations_give_autograds_gradients(cost, activation):
    torch.manual_seed(0)
    model = MLP(COSTS[cost], SGD, ACTIVATIONS[activation], sizes=[784, 20, 15, 10], init="default", backprop="autograd")
    model = model.double()
    x = torch.rand(8, 1, 28, 28, dtype=torch.float64)
    y = torch.randint(0, 10, (8,))

    z, loss, nablas = backprop(list(model.layers), model.activation, model.cost, x, y)
    model.zero_grad()
    model.cost(model(x), y).backward()

    torch.testing.assert_close(z, model(x), rtol=0, atol=1e-12)
    torch.testing.assert_close(loss, model.cost(model(x), y), rtol=0, atol=1e-12)
    for l, (layer, (nabla_w, nabla_b)) in enumerate(zip(model.layers, nablas, strict=True), start=1):
        torch.testing.assert_close(nabla_w, layer.weight.grad, rtol=0, atol=1e-6, msg=f"∂C/∂w^{l}")
        torch.testing.assert_close(nabla_b, layer.bias.grad, rtol=0, atol=1e-6, msg=f"∂C/∂b^{l}")
        assert layer.bias.grad.abs().max() > 1e-8  # a gradient that is there to compare


@pytest.mark.parametrize("cost", COSTS)
def test_training_with_the_four_equations_matches_autograd(cost, shared_mnist, tmp_path):
    torch.manual_seed(1)
    autograd = MLP(COSTS[cost], SGD, nn.Sigmoid, sizes=[784, 30, 10], init="default", l2=0.5, backprop="autograd")
    manual = MLP(COSTS[cost], SGD, nn.Sigmoid, sizes=[784, 30, 10], init="default", l2=0.5, backprop="manual")
    manual.load_state_dict(autograd.state_dict())
    for model in (autograd, manual):
        assert fit(model, shared_mnist, tmp_path, max_epochs=4).global_step == 200
    for (name, p), q in zip(autograd.named_parameters(), manual.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6, msg=name)


def test_manual_backprop_refuses_dropout():
    with pytest.raises(
        ConfigError, match=r"model.backprop=manual computes the book's equations, which have no dropout"
    ):
        MLP(QuadraticCost(), SGD, nn.Sigmoid, dropout=0.5, backprop="manual")
