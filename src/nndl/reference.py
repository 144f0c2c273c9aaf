"""Plain loops of the book's stochastic gradient descent, outside Lightning: what the project's path is checked
against (``tests/test_training_loop.py``, ``tests/test_fast_path.py``) and timed against (``scripts/bench.py``).

- ``autograd_epoch``: the loop everybody writes first — per mini-batch forward, cost, ``backward()``, step —
  with any object that has ``zero_grad()`` and ``step()``: a torch optimizer, or ``BookSGD``, network.py's and
  network2.py's update written out (plain, L2 on the weights, momentum).
- ``bp_epoch``: network.py's ``update_mini_batch`` and ``backprop`` as bare tensor code: feed-forward, the four
  equations BP1–BP4 and the update w → w − η ∇C applied in place, no autograd, no optimizer object, sigmoid
  hidden neurons. The speed the book's own mathematics allows in eager PyTorch.
"""

from collections.abc import Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nndl.costs import CrossEntropyCost, LogLikelihoodCost, QuadraticCost
from nndl.mnist_shape import NUM_CLASSES


def inputs(images: Tensor) -> Tensor:
    """Images as the network's input: uint8 (n, 28, 28) scaled to float in [0, 1] as the data module does;
    float images (already scaled) pass through."""
    return images.unsqueeze(1).float() / 255 if images.dtype == torch.uint8 else images


def epoch_orders(n: int, epochs: int, seed: int) -> Iterator[Tensor]:
    """Each epoch's order of the n training examples, drawn as ``MNISTDataModule(seed=seed)`` draws them."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        yield torch.randperm(n, generator=generator)


class BookSGD:
    """network2.py's update of each parameter p, with η, λ/n on the weights (2 or more dimensions) and a
    momentum coefficient μ (chapter 3):

        g = ∇C_0 + (λ/n) w          (the weights; the biases are not decayed)
        v → μ v + g,  p → p − η v   (μ = 0: p → p − η g, so w → (1 − ηλ/n) w − η ∇C_0)

    The book writes momentum as v → μv − η∇C, w → w + v: the same rule with v scaled by −η, written here in the
    order of operations of ``torch.optim.SGD`` so that float32 rounding agrees.
    """

    def __init__(self, parameters: Iterable[nn.Parameter], eta: float, decay: float = 0.0, momentum: float = 0.0):
        self.parameters, self.eta, self.decay, self.momentum = list(parameters), eta, decay, momentum
        self.velocities: list[Tensor | None] = [None] * len(self.parameters)

    def zero_grad(self) -> None:
        for p in self.parameters:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for i, p in enumerate(self.parameters):
            decay = self.decay if p.ndim > 1 else 0.0  # weights, not biases
            g = p.grad.add(p, alpha=decay) if decay else p.grad
            if self.momentum:
                v = self.velocities[i]
                self.velocities[i] = g.clone() if v is None else v.mul_(self.momentum).add_(g)
                g = self.velocities[i]
            p.add_(g, alpha=-self.eta)


def autograd_epoch(model: nn.Module, cost, images: Tensor, labels: Tensor, order: Tensor, batch_size: int, optimizer):
    """One epoch of mini-batch gradient descent in ``order``: forward, cost, backward and ``optimizer.step()``."""
    for k in range(0, len(order), batch_size):
        index = order[k : k + batch_size]
        loss = cost(model(inputs(images[index])), labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def book_sgd(
    model: nn.Module,
    cost,
    images: Tensor,
    labels: Tensor,
    *,
    eta: float,
    mini_batch_size: int,
    epochs: int,
    seed: int,
    lmbda: float = 0.0,
    momentum: float = 0.0,
) -> None:
    """network.py's ``SGD`` (network2.py's with ``lmbda``, and momentum): ``epochs`` epochs, each in a fresh
    random order (as the data module draws it from ``seed``), one update per mini-batch, by autograd."""
    optimizer = BookSGD(model.parameters(), eta, decay=lmbda / len(labels), momentum=momentum)
    for order in epoch_orders(len(labels), epochs, seed):
        autograd_epoch(model, cost, images, labels, order, mini_batch_size, optimizer)


@torch.no_grad()
def bp_epoch(
    weights: list[Tensor], biases: list[Tensor], cost, x: Tensor, y: Tensor, order: Tensor, batch_size: int, eta: float
) -> None:
    """One epoch of network.py in bare tensor code, updating ``weights`` and ``biases`` in place.

    ``x`` is the training inputs as floats (n, 784), ``y`` the labels; sigmoid hidden neurons; the cost is one of
    the book's three (its δ^L in closed form). Per mini-batch of m examples: feed-forward, BP1 (δ^L), BP2
    (δ^l = (w^{l+1})ᵀ δ^{l+1} ⊙ σ'(z^l), σ' = a(1 − a)), BP3 and BP4, and w → w − (η/m) Σ_x ∂C_x/∂w.
    """
    eye = torch.eye(NUM_CLASSES, dtype=x.dtype, device=x.device)
    last = len(weights) - 1
    for k in range(0, len(order), batch_size):
        index = order[k : k + batch_size]
        a = x[index]
        activations = [a]
        for w, b in zip(weights[:-1], biases[:-1], strict=True):
            a = torch.addmm(b, a, w.t()).sigmoid_()
            activations.append(a)
        z = torch.addmm(biases[-1], a, weights[-1].t())
        y_vec = eye[y[index]]
        if isinstance(cost, QuadraticCost):
            out = torch.sigmoid(z)
            delta = (out - y_vec).mul_(out).mul_(1 - out)  # BP1: (a − y) ⊙ σ'(z^L)
        elif isinstance(cost, (CrossEntropyCost, LogLikelihoodCost)):
            out = torch.sigmoid(z) if isinstance(cost, CrossEntropyCost) else F.softmax(z, dim=1)
            delta = out.sub_(y_vec)  # BP1: a − y
        else:
            raise TypeError(f"bp_epoch has no δ^L for {cost}")
        step = eta / len(index)
        for l in range(last, -1, -1):
            w, a = weights[l], activations[l]
            if l:
                below = (delta @ w).mul_(a).mul_(1 - a)  # BP2, with w^{l+1} before its update
            w.addmm_(delta.t(), a, alpha=-step)  # BP4 and the update
            biases[l].add_(delta.sum(0), alpha=-step)  # BP3 and the update
            if l:
                delta = below
