"""Each cost's value and its gradient ∂C/∂z^L against the book's closed forms, in float64."""

import pytest
import torch

from nndl.costs import CrossEntropyCost, LogLikelihoodCost, QuadraticCost


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(8, 10, generator=g, dtype=torch.float64) * 3
    y = torch.randint(0, 10, (8,), generator=g)
    e_y = torch.nn.functional.one_hot(y, 10).double()
    return z, y, e_y


def closed_forms(z: torch.Tensor, e_y: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """(C averaged over the batch, δ^L of each example), written out from the book's formulas."""
    sigma = 1 / (1 + torch.exp(-z))
    softmax = torch.exp(z) / torch.exp(z).sum(dim=1, keepdim=True)
    return {
        "quadratic": (
            (0.5 * ((e_y - sigma) ** 2).sum(dim=1)).mean(),
            (sigma - e_y) * sigma * (1 - sigma),
        ),
        "cross_entropy": (
            -(e_y * torch.log(sigma) + (1 - e_y) * torch.log(1 - sigma)).sum(dim=1).mean(),
            sigma - e_y,
        ),
        "log_likelihood": (
            -torch.log((softmax * e_y).sum(dim=1)).mean(),
            softmax - e_y,
        ),
    }


COSTS = {"quadratic": QuadraticCost(), "cross_entropy": CrossEntropyCost(), "log_likelihood": LogLikelihoodCost()}


@pytest.mark.parametrize("name", COSTS)
def test_cost_value_matches_the_book(name, batch):
    z, y, e_y = batch
    value, _ = closed_forms(z, e_y)[name]
    torch.testing.assert_close(COSTS[name](z, y), value, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", COSTS)
def test_autograd_gradient_is_the_closed_form_delta(name, batch):
    z, y, e_y = batch
    _, delta = closed_forms(z, e_y)[name]
    z = z.clone().requires_grad_()
    COSTS[name](z, y).backward()
    # C averages C_x over the mini-batch, so ∂C/∂z^L_x = δ^L_x / m
    torch.testing.assert_close(z.grad * len(y), delta, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(COSTS[name].delta(z.detach(), y), delta, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", COSTS)
def test_output_activations(name, batch):
    z, _, _ = batch
    expected = torch.softmax(z, dim=1) if name == "log_likelihood" else torch.sigmoid(z)
    torch.testing.assert_close(COSTS[name].output(z), expected)


@pytest.mark.parametrize("name", COSTS)
def test_each_cost_says_whether_its_output_layer_is_a_softmax(name, batch):
    z, _, _ = batch
    sums_to_one = torch.allclose(COSTS[name].output(z).sum(dim=1), torch.ones(len(z), dtype=z.dtype))
    assert COSTS[name].softmax == sums_to_one == (name == "log_likelihood")


def test_quadratic_cost_sums_over_outputs_unlike_mse_loss(batch):
    z, y, e_y = batch
    mse = torch.nn.functional.mse_loss(torch.sigmoid(z), e_y)  # averages over the 10 outputs too
    torch.testing.assert_close(QuadraticCost()(z, y), 0.5 * 10 * mse)


def test_cross_entropy_stays_finite_when_outputs_saturate():
    z = torch.tensor([[200.0, -200.0] + [0.0] * 8])
    y = torch.tensor([1])  # confidently wrong: a_0 rounds to 1 and a_1 to 0 in float32
    value = CrossEntropyCost()(z, y)
    assert torch.isfinite(value)
    assert value.item() == pytest.approx(400 + 8 * 0.6931471805599453, rel=1e-6)
