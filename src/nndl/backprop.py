"""Backpropagation by the book's four equations, for the fully connected network, without autograd.

For a mini-batch of m examples, with a^0 = x, z^l = w^l a^{l−1} + b^l and a^l = σ(z^l) (a^L from the cost's
output layer), chapter 2's equations, vectorised over the mini-batch (rows are examples):

- BP1  δ^L = ∇_a C ⊙ σ'(z^L); each cost gives its own closed form (``Cost.delta``): (a^L − y) ⊙ σ'(z^L) for the
  quadratic cost, a^L − y for the cross-entropy and log-likelihood costs;
- BP2  δ^l = ((w^{l+1})ᵀ δ^{l+1}) ⊙ σ'(z^l);
- BP3  ∂C/∂b^l = δ^l;
- BP4  ∂C/∂w^l = δ^l (a^{l−1})ᵀ;

and the gradient of the mini-batch's cost C = (1/m) Σ_x C_x is the average of the examples' gradients.

``backprop`` returns the gradients for a torch optimizer to apply (``model.backprop=manual``).
``nndl.fast_backprop.FastBackprop``, the MLP's default path (``model.backprop=fast``), computes the same equations
and writes the SGD update straight into the parameters.
"""

import math

import torch
from torch import Tensor, nn

from nndl.costs import Cost
from nndl.errors import ConfigError


def activation_prime(activation: nn.Module, z: Tensor) -> Tensor:
    """σ'(z) for the hidden activations of conf/activation."""
    if isinstance(activation, nn.Sigmoid):
        s = torch.sigmoid(z)
        return s * (1 - s)
    if isinstance(activation, nn.Tanh):
        return 1 - torch.tanh(z) ** 2
    if isinstance(activation, nn.ReLU):
        return (z > 0).to(z.dtype)
    if isinstance(activation, nn.LeakyReLU):
        return torch.where(z > 0, 1.0, activation.negative_slope).to(z.dtype)
    if isinstance(activation, nn.Identity):
        return torch.ones_like(z)
    if isinstance(activation, nn.GELU) and activation.approximate == "none":  # z Φ(z)
        return 0.5 * (1 + torch.erf(z / math.sqrt(2))) + z * torch.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    raise ConfigError(f"backprop=manual has no derivative for the activation {activation}")


@torch.no_grad()
def backprop(
    layers: list[nn.Linear], activation: nn.Module, cost: Cost, x: Tensor, y: Tensor
) -> tuple[Tensor, Tensor, list[tuple[Tensor, Tensor]]]:
    """Feed forward and backpropagate one mini-batch.

    Returns (z^L, C, [(∂C/∂w^l, ∂C/∂b^l) for l = 1..L]), the gradients averaged over the mini-batch.
    """
    a = x.flatten(1)
    activations, zs = [a], []
    for l, layer in enumerate(layers, start=1):
        z = a @ layer.weight.T + layer.bias  # z^l = w^l a^{l−1} + b^l
        zs.append(z)
        if l < len(layers):
            a = activation(z)  # a^l = σ(z^l)
            activations.append(a)
    m = len(y)
    delta = cost.delta(zs[-1], y)  # BP1
    gradients = []
    for l in range(len(layers), 0, -1):
        nabla_b = delta.sum(dim=0) / m  # BP3, averaged over the mini-batch
        nabla_w = delta.T @ activations[l - 1] / m  # BP4
        gradients.append((nabla_w, nabla_b))
        if l > 1:
            delta = (delta @ layers[l - 1].weight) * activation_prime(activation, zs[l - 2])  # BP2
    return zs[-1], cost(zs[-1], y), gradients[::-1]
