"""network.py's ``update_mini_batch`` for the fully connected network, in place: the MLP's default path
(``model.backprop=fast``).

The book's four equations (``nndl.backprop``) and the SGD update written straight into the parameters, buffers
reused from one mini-batch to the next, no autograd graph and no optimizer step — what network.py's
``update_mini_batch`` does, at the speed of its arithmetic rather than of the framework around it.
``fast_path_refusal`` says where it reproduces autograd and ``torch.optim.SGD`` (to the rounding of the last bits
in float32: ``weight_step``); elsewhere the MLP takes autograd.
"""

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nndl.costs import Cost, CrossEntropyCost, LogLikelihoodCost, QuadraticCost
from nndl.mnist_shape import NUM_CLASSES

# What FastBackprop computes exactly: the hidden activations (by exact type: a subclass may change the function),
# the costs, and the precisions (Lightning's names) in which the parameters are what the arithmetic runs in.
FAST_ACTIVATIONS = {nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.ReLU: "relu", nn.Identity: "identity"}
FAST_COSTS = {QuadraticCost: "quadratic", CrossEntropyCost: "cross_entropy", LogLikelihoodCost: "log_likelihood"}
FAST_PRECISIONS = ("32-true", "32", "64-true", "64")


def fast_path_refusal(
    layers: list[nn.Linear],
    activation: nn.Module,
    cost: Cost,
    optimizer: torch.optim.Optimizer,
    *,
    world_size: int = 1,
    precision: str | None = None,
) -> str | None:
    """Why ``FastBackprop`` would not reproduce autograd and ``optimizer.step()`` for this network; ``None`` when
    it does: ``torch.optim.SGD`` (any λ, momentum, learning rate per parameter group; no Nesterov, dampening,
    maximize), the activations of ``FAST_ACTIVATIONS``, the costs of ``FAST_COSTS``, one process (data parallel
    runs synchronise gradients in the base path), float32 or float64 parameters and precision."""
    if type(activation) not in FAST_ACTIVATIONS:
        return f"hidden activation {type(activation).__name__}"
    parameters = [p for layer in layers for p in (layer.weight, layer.bias)]
    return sgd_refusal(parameters, cost, optimizer, world_size=world_size, precision=precision)


def sgd_refusal(
    parameters: list[Tensor],
    cost: Cost,
    optimizer: torch.optim.Optimizer,
    *,
    world_size: int = 1,
    precision: str | None = None,
) -> str | None:
    """What the fast paths need of the cost, the optimizer and the run (``None`` when all is met): a cost of
    ``FAST_COSTS``, ``torch.optim.SGD`` over exactly ``parameters`` (any λ, momentum, learning rate per parameter
    group; no Nesterov, dampening, maximize), one process, float32 or float64 parameters and precision, on the
    CPU (where they are exact and measured: a GPU's fused dropout draws other random numbers, and its convolutions
    may round to TF32), every parameter trained (``torch.optim.SGD`` skips a frozen one)."""
    if {p.device.type for p in parameters} != {"cpu"}:
        return f"parameters on {sorted({str(p.device) for p in parameters})}"
    if not all(p.requires_grad for p in parameters):
        return "a frozen parameter"
    if type(cost) not in FAST_COSTS:
        return f"cost {type(cost).__name__}"
    if type(optimizer) is not torch.optim.SGD:
        return f"optimizer {type(optimizer).__name__}"
    if world_size != 1:
        return f"{world_size} processes"
    if precision is not None and precision not in FAST_PRECISIONS:
        return f"precision {precision}"
    if {p.dtype for p in parameters} - {torch.float32, torch.float64} or len({p.dtype for p in parameters}) > 1:
        return f"parameters of {sorted({str(p.dtype) for p in parameters})}"
    grouped: list[Tensor] = []
    for group in optimizer.param_groups:
        for key in ("nesterov", "maximize", "fused", "differentiable"):
            if group.get(key):
                return f"SGD with {key}"
        if group.get("dampening", 0):
            return f"SGD with dampening {group['dampening']}"
        if any(isinstance(group[key], Tensor) for key in ("lr", "momentum", "weight_decay")):
            return "SGD with a tensor lr, momentum or weight_decay"
        grouped += group["params"]
    if len(grouped) != len(parameters) or {id(p) for p in grouped} != {id(p) for p in parameters}:
        return "the optimizer's parameters are not the network's"
    return None


def activate(activation: str, z: Tensor) -> Tensor:
    """a = σ(z), in place (σ one of ``FAST_ACTIVATIONS``' names)."""
    if activation == "sigmoid":
        return z.sigmoid_()
    if activation == "tanh":
        return z.tanh_()
    if activation == "relu":
        return z.relu_()
    return z


def backward_activation(activation: str, grad: Tensor, a: Tensor, out: Tensor | None = None) -> Tensor:
    """grad ⊙ σ'(z), from a = σ(z), by autograd's own backward functions (the same rounding); into ``out`` if
    given (which may be ``grad`` itself)."""
    if activation == "identity":
        return grad if out is None else out.copy_(grad)
    if activation == "relu":  # σ' = 1 where a > 0, else 0
        backward, args = torch.ops.aten.threshold_backward, (grad, a, 0)
    elif activation == "sigmoid":  # σ' = (1 − a) a
        backward, args = torch.ops.aten.sigmoid_backward, (grad, a)
    else:  # tanh: σ' = 1 − a²
        backward, args = torch.ops.aten.tanh_backward, (grad, a)
    return backward(*args) if out is None else backward.grad_input(*args, grad_input=out)


def sgd_step(optimizer: torch.optim.Optimizer, group: dict, p: Tensor, grad: Tensor) -> None:
    """``torch.optim.SGD``'s update of one parameter, operation for operation; ``grad`` is the caller's buffer,
    which gains the weight decay in place (a fresh tensor per update costs page faults for large layers)."""
    weight_decay, momentum = group["weight_decay"], group["momentum"]
    if weight_decay:
        grad = grad.add_(p, alpha=weight_decay)
    if momentum:
        state = optimizer.state[p]
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = grad.detach().clone()
        else:
            buf.mul_(momentum).add_(grad)
        grad = buf
    p.add_(grad, alpha=-group["lr"])


def weight_step(
    optimizer: torch.optim.Optimizer,
    group: dict,
    w: Tensor,
    delta: Tensor,
    a: Tensor,
    nabla_w: Tensor,
    matrix: Callable[[Tensor], Tensor] = lambda t: t,
) -> None:
    """BP4 and the SGD update of a weight: ∂C/∂w = δᵀ a, then ``torch.optim.SGD``'s step (``matrix`` gives w and
    ``nabla_w`` as the matrices δᵀ a fits, views of their memory). Without momentum one operation, network2.py's
    w → (1 − η wd) w − η δᵀ a (eq. 93; in float32, torch's three operations but for the rounding of the last bits);
    with momentum ∂C/∂w goes to ``nabla_w`` and ``sgd_step`` takes it from there."""
    if group["momentum"]:
        torch.mm(delta.t(), a, out=matrix(nabla_w))
        sgd_step(optimizer, group, w, nabla_w)
    else:
        matrix(w).addmm_(delta.t(), a, beta=1 - group["lr"] * group["weight_decay"], alpha=-group["lr"])


class _Buffers(NamedTuple):
    """What one mini-batch of m examples needs, kept from one mini-batch to the next."""

    y_vec: Tensor  # the desired outputs y(x), one-hot (m, 10)
    out: Tensor  # a^L − y, then δ^L


class FastBackprop:
    """network.py's ``update_mini_batch`` for an MLP trained by ``torch.optim.SGD``, in place.

    Per mini-batch of m examples: feed-forward (z^l = a^{l−1} (w^l)ᵀ + b^l, as ``nn.Linear`` computes it), BP1
    with each cost's closed form δ^L, scaled by 1/m as autograd's mean is, then for l = L..1: BP2 δ^{l−1} =
    δ^l w^l ⊙ σ'(z^{l−1}) with w^l before its update, BP3 ∂C/∂b^l = Σ_x δ^l, BP4 ∂C/∂w^l = (δ^l)ᵀ a^{l−1}, and
    the update of layer l as ``torch.optim.SGD.step`` makes it, with lr, weight decay and momentum read from the
    parameter's group at every mini-batch (a learning-rate schedule changes them between updates):

    g = ∇C + wd·p (the group's weight decay: network2.py's λ/n on the weights), v → μ v + g with the momentum
    buffer kept in ``optimizer.state[p]["momentum_buffer"]`` (so checkpoints and resumed runs carry it, and either
    path can continue the other), p → p − lr·v, operation for operation. Without momentum, BP4 and the update of
    w are one operation, w → (1 − η wd) w − η (δ^l)ᵀ a^{l−1}, as in network.py and network2.py (``weight_step``;
    in float32, equal to torch's operations but for the rounding of the last bits).

    Activations, errors and gradients live in buffers reused from one mini-batch to the next. ``expose_gradients``
    makes the latest mini-batch's ∂C/∂w, ∂C/∂b every parameter's ``.grad`` (for ``grad_norm/layer_<l>`` and the
    gradient histograms). Use where ``fast_path_refusal`` returns ``None``.

    With ``input_error=True`` each update also leaves ∂C/∂a^0, the error of the input (δ^1 w^1, before w^1 moves),
    in ``input_error``: the fully connected layers on top of the CNN's convolutions hand it down to them
    (``nndl.fast_conv``).

    Dropout (chapter 3) with probability ``dropout`` on the inputs of every layer but the first (the MLP's hidden
    neurons), and of the first too with ``drop_input`` (the CNN's fully connected layers): the masks are drawn as
    ``nn.Dropout`` draws them, so a run takes the same random numbers on either path; a dropped neuron's error is
    0 (BP2 ⊙ the mask) and the weights see the dropped activations (BP4).
    """

    SUMMARY = "BP1–BP4 and the SGD update in place, no autograd"

    def __init__(
        self,
        layers: list[nn.Linear],
        activation: nn.Module,
        cost: Cost,
        optimizer: torch.optim.Optimizer,
        input_error: bool = False,
        dropout: float = 0.0,
        drop_input: bool = False,
    ) -> None:
        # The parameters themselves: moving a module to a device or dtype, or loading a state dict, keeps them.
        self.weights = [layer.weight for layer in layers]
        self.biases = [layer.bias for layer in layers]
        self.activation = FAST_ACTIVATIONS[type(activation)]
        self.cost = FAST_COSTS[type(cost)]
        group_of = {id(p): i for i, group in enumerate(optimizer.param_groups) for p in group["params"]}
        self.groups = [(group_of[id(w)], group_of[id(b)]) for w, b in zip(self.weights, self.biases, strict=True)]
        self.grads = [
            (torch.zeros_like(w), torch.zeros_like(b)) for w, b in zip(self.weights, self.biases, strict=True)
        ]
        self.eye = torch.eye(NUM_CLASSES, dtype=self.weights[0].dtype, device=self.weights[0].device)
        self.buffers: dict[int, _Buffers] = {}
        self.last: list[tuple[Tensor, Tensor] | None] = [None] * len(layers)  # (δ^l, a^{l−1}) of the latest update
        self.input_error: Tensor | None = torch.empty(0) if input_error else None  # ∂C/∂a^0 of the latest update
        self.dropout, self.drop_input = dropout, drop_input

    def _buffers(self, m: int) -> _Buffers:
        if m not in self.buffers:
            like = self.weights[0]
            self.buffers[m] = _Buffers(like.new_empty(m, NUM_CLASSES), like.new_empty(m, NUM_CLASSES))
        return self.buffers[m]

    @torch.no_grad()
    def update(self, x: Tensor, y: Tensor, optimizer: torch.optim.Optimizer) -> Tensor:
        """One update on the mini-batch (x, y); returns z^L of the mini-batch before the update (its cost C is
        not needed for the update: ``Network.mini_batch_costs`` computes it from z^L, a step at a time)."""
        weights, biases, m = self.weights, self.biases, len(y)
        buffers = self._buffers(m)
        a = x.flatten(1)  # a^0: the 784 pixels (or the CNN's last feature maps)
        outputs, inputs, masks = [a], [], []  # each layer's a^{l−1}; its input (after dropout); the dropout masks
        for l, (w, b) in enumerate(zip(weights, biases, strict=True)):
            mask = self._dropout_mask(a) if self.dropout and (l or self.drop_input) else None
            inputs.append(a if mask is None else a * mask)
            masks.append(mask)
            if l == len(weights) - 1:
                break
            a = activate(self.activation, F.linear(inputs[-1], w, b))  # a^l = σ(w^l a^{l−1} + b^l), as nn.Linear
            outputs.append(a)
        z = F.linear(inputs[-1], weights[-1], biases[-1])  # z^L, a new tensor: the caller keeps it
        y_vec = torch.index_select(self.eye, 0, y, out=buffers.y_vec)
        delta = self._output_error(z, y_vec, buffers.out, 1 / m)
        groups, step = optimizer.param_groups, sgd_step
        for l in range(len(weights) - 1, -1, -1):
            w, b, a_in = weights[l], biases[l], inputs[l]
            nabla_w, nabla_b = self.grads[l]
            group_w, group_b = self.groups[l]
            below = None
            if l or self.input_error is not None:  # BP2, before w^l moves: ∂C/∂a^{l−1} = δ^l w^l (⊙ the mask)
                grad = torch.mm(delta, w)
                if masks[l] is not None:
                    grad.mul_(masks[l])
                if l:  # ⊙ σ'(z^{l−1})
                    below = backward_activation(self.activation, grad, outputs[l])
                else:  # ∂C/∂a^0: for the layers below (the CNN's)
                    self.input_error = grad
            weight_step(optimizer, groups[group_w], w, delta, a_in, nabla_w)  # BP4 and the update
            step(optimizer, groups[group_b], b, torch.sum(delta, 0, out=nabla_b))  # BP3 and the update
            self.last[l], delta = (delta, a_in), below
        return z

    def _dropout_mask(self, a: Tensor) -> Tensor:
        """Dropout's mask for a (chapter 3): each value kept with probability 1 − p and then scaled by 1/(1 − p),
        drawn as ``nn.Dropout`` draws it on the CPU (the same random numbers, in the same order; the fast paths run
        on the CPU only)."""
        return torch.empty_like(a).bernoulli_(1 - self.dropout).div_(1 - self.dropout)

    def _output_error(self, z: Tensor, y_vec: Tensor, out: Tensor, scale: float) -> Tensor:
        """δ^L / m (BP1), as autograd computes it from the mean cost."""
        if self.cost == "quadratic":  # δ^L = (a^L − y) ⊙ σ'(z^L)
            a = torch.sigmoid(z)
            return torch.ops.aten.sigmoid_backward(torch.sub(a, y_vec, out=out).mul_(scale), a)
        if self.cost == "cross_entropy":  # δ^L = a^L − y
            return torch.sigmoid(z, out=out).sub_(y_vec).mul_(scale)
        return torch.softmax(z, dim=1).sub_(y_vec).mul_(scale)  # log-likelihood, softmax output: δ^L = a^L − y

    def expose_gradients(self) -> None:
        """Every parameter's ``.grad``: the latest mini-batch's ∂C/∂w, ∂C/∂b (BP3 and BP4 again: C without L2)."""
        for w, b, (nabla_w, nabla_b), last in zip(self.weights, self.biases, self.grads, self.last, strict=True):
            if last is not None:
                torch.mm(last[0].t(), last[1], out=nabla_w)
                torch.sum(last[0], 0, out=nabla_b)
            w.grad, b.grad = nabla_w, nabla_b
