"""The book's three cost functions, each computed from the output layer's weighted input z^L.

The cost decides the output layer: the quadratic and cross-entropy costs put sigmoid neurons there
(a^L = σ(z^L)), the log-likelihood cost a softmax layer. Models therefore return z^L and leave a^L to the cost;
the predicted digit is argmax_j z^L_j, the same as argmax_j a^L_j because σ and softmax are monotonic.

Each cost has, as in the book's ``network2.py``:

- ``per_example(z, y)``: the cost C_x of each example x (y holds digit labels 0–9),
- ``__call__(z, y)``: the cost C = (1/m) Σ_x C_x averaged over the mini-batch's m examples,
- ``output(z)``: the output activations a^L,
- ``delta(z, y)``: the output error δ^L = ∂C_x/∂z^L of each example in closed form (equation BP1),

and says whether its output layer is a softmax (``softmax``): then a^L is a probability distribution over the digits.
"""

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from nndl.mnist_shape import NUM_CLASSES


class Cost(Protocol):
    """What a model needs of a cost; conf/cost/*.yaml instantiates one of the classes below."""

    softmax: bool  # whether a^L is a softmax layer's output, which sums to 1 over the outputs

    def per_example(self, z: Tensor, y: Tensor) -> Tensor: ...
    def __call__(self, z: Tensor, y: Tensor) -> Tensor: ...
    def output(self, z: Tensor) -> Tensor: ...
    def delta(self, z: Tensor, y: Tensor) -> Tensor: ...


def one_hot(y: Tensor, like: Tensor) -> Tensor:
    """The desired output y(x) as a 10-dimensional unit vector, in the dtype of ``like``."""
    return F.one_hot(y, NUM_CLASSES).to(like.dtype)


class QuadraticCost:
    """C = ½‖y − a^L‖² with a^L = σ(z^L) (chapter 1, eq. 6), summed over the 10 outputs.

    Not ``nn.MSELoss()``: that averages over the 10 outputs as well, dividing the cost and its gradient by 10.
    """

    softmax = False

    def per_example(self, z: Tensor, y: Tensor) -> Tensor:
        a = torch.sigmoid(z)
        return 0.5 * (a - one_hot(y, z)).pow(2).sum(dim=1)

    def __call__(self, z: Tensor, y: Tensor) -> Tensor:
        return self.per_example(z, y).mean()

    def output(self, z: Tensor) -> Tensor:
        return torch.sigmoid(z)

    def delta(self, z: Tensor, y: Tensor) -> Tensor:
        """δ^L = (a^L − y) ⊙ σ'(z^L) (chapter 2, BP1): the σ' factor is what makes saturated neurons learn slowly."""
        a = torch.sigmoid(z)
        return (a - one_hot(y, z)) * a * (1 - a)


class CrossEntropyCost:
    """C = −Σ_j [y_j ln a^L_j + (1 − y_j) ln(1 − a^L_j)] with a^L = σ(z^L) (chapter 3, eq. 63).

    Computed from the logits with ``binary_cross_entropy_with_logits``, which stays finite where a^L rounds to 0 or 1.
    """

    softmax = False

    def per_example(self, z: Tensor, y: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(z, one_hot(y, z), reduction="none").sum(dim=1)

    def __call__(self, z: Tensor, y: Tensor) -> Tensor:
        return self.per_example(z, y).mean()

    def output(self, z: Tensor) -> Tensor:
        return torch.sigmoid(z)

    def delta(self, z: Tensor, y: Tensor) -> Tensor:
        """δ^L = a^L − y (chapter 3): the σ'(z^L) term cancels, so saturated outputs no longer slow learning."""
        return torch.sigmoid(z) - one_hot(y, z)


class LogLikelihoodCost:
    """C = −ln a^L_y with a softmax output layer a^L_j = e^{z^L_j} / Σ_k e^{z^L_k} (chapter 3, eqs. 78 and 80).

    PyTorch's ``cross_entropy`` on the logits is exactly this (log-softmax followed by the negative log-likelihood).
    """

    softmax = True

    def per_example(self, z: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(z, y, reduction="none")

    def __call__(self, z: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(z, y)  # per_example(z, y).mean(), in one operation

    def output(self, z: Tensor) -> Tensor:
        return torch.softmax(z, dim=1)

    def delta(self, z: Tensor, y: Tensor) -> Tensor:
        """δ^L = a^L − y, with a^L the softmax output (chapter 3)."""
        return torch.softmax(z, dim=1) - one_hot(y, z)


class SquaredError:
    """C = ½ (y − a)² with a single linear output neuron a = z: the quadratic cost for a real-valued target,
    as when a network approximates a function (chapter 4). Here y holds the targets themselves."""

    softmax = False

    def per_example(self, z: Tensor, y: Tensor) -> Tensor:
        return 0.5 * (z - y).pow(2).sum(dim=1)

    def __call__(self, z: Tensor, y: Tensor) -> Tensor:
        return self.per_example(z, y).mean()

    def output(self, z: Tensor) -> Tensor:
        return z

    def delta(self, z: Tensor, y: Tensor) -> Tensor:
        """δ^L = a − y: the output neuron is linear, σ'(z) = 1."""
        return z - y
