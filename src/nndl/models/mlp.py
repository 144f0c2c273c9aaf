"""The book's fully connected network (``network.py``, ``network2.py``) as a LightningModule."""

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from nndl.backprop import backprop
from nndl.costs import Cost
from nndl.errors import ConfigError, check_range
from nndl.fast_backprop import FastBackprop, fast_path_refusal
from nndl.mnist_shape import IMAGE_SIZE, NUM_CLASSES, NUM_PIXELS
from nndl.models.classifier import Classifier
from nndl.models.network import BUILT_ARGUMENTS, Activation, FastPath, OptimizerFactory, SchedulerFactory

INITS = ("large", "default")
BACKPROPS = ("fast", "autograd", "manual")


class MLP(Classifier):
    """A feedforward network of ``sizes`` neurons per layer: a^l = σ(w^l a^{l−1} + b^l) (chapter 2, eq. 25).

    Layer l's weights w^l are ``layers[l-1].weight``, a (sizes[l], sizes[l-1]) matrix whose entry w_jk connects
    neuron k of layer l−1 to neuron j of layer l, as in the book. ``forward`` returns z^L; the cost chooses the
    output neurons (sigmoid or softmax).

    Args:
        sizes: neurons per layer, from the 784 input pixels to the 10 digits; the book's first network is [784, 30, 10].
        activation: the hidden layers' σ (conf/activation).
        init: ``large``: weights and biases N(0, 1), as ``network.py`` (chapter 1); ``default``: weights
            N(0, 1/n_in) so that z starts small and hidden neurons do not saturate, biases N(0, 1), as
            ``network2.py`` (chapter 3, "Weight initialization").
        dropout: the probability of dropping each hidden neuron during training (chapter 3, "Dropout").
        l2: λ of the book's L2 regularisation (see ``Network``).
        backprop: ``fast`` (the default): each mini-batch's update as network.py makes it — feed-forward, the
            four equations and the SGD update written straight into the parameters (``nndl.fast_backprop.FastBackprop``)
            — wherever that is exact: SGD with or without momentum and L2, sigmoid/tanh/relu/identity hidden
            neurons, the three costs, dropout, one process, 32 or 64-bit, the CPU; anything else takes ``autograd``
            (the run logs which and why). ``autograd``: autograd and the torch optimizer; ``manual``: the
            gradients by the book's four equations (``nndl.backprop.backprop``), then the torch optimizer.
        scheduler: an optional learning-rate schedule (see ``Network``).

    Every Lightning step logs the length of ∂C/∂b^l for each layer l = 1..L of its last mini-batch, under
    ``grad_norm/layer_<l>``: the book's "speed of learning" of each layer (chapter 5).
    """

    def __init__(
        self,
        cost: Cost,
        optimizer: OptimizerFactory,
        activation: Activation,
        sizes: Sequence[int] = (784, 30, 10),
        init: str = "large",
        dropout: float = 0.0,
        l2: float = 0.0,
        backprop: str = "fast",
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__(cost, optimizer, scheduler, l2)
        sizes = list(sizes)
        if len(sizes) < 2 or sizes[0] != NUM_PIXELS or sizes[-1] != NUM_CLASSES or min(sizes) < 1:
            raise ConfigError(
                f"model.sizes={sizes} is not allowed: it must start with {NUM_PIXELS} (the {IMAGE_SIZE}×{IMAGE_SIZE} "
                f"input pixels), end with {NUM_CLASSES} (one output neuron per digit) and have only positive sizes"
            )
        if init not in INITS:
            raise ConfigError(f"model.init={init!r} is not allowed: choose one of {', '.join(INITS)}")
        if backprop not in BACKPROPS:
            raise ConfigError(f"model.backprop={backprop!r} is not allowed: choose one of {', '.join(BACKPROPS)}")
        check_range("model.dropout", dropout, 0, 1, integer=False, open_high=True)
        if backprop == "manual" and dropout:
            raise ConfigError("model.backprop=manual computes the book's equations, which have no dropout")
        self.save_hyperparameters(ignore=BUILT_ARGUMENTS, logger=False)
        self.sizes = sizes
        self.init = init
        self.layers = nn.ModuleList(nn.Linear(n_in, n_out) for n_in, n_out in itertools.pairwise(sizes))
        self.activation = activation()
        self.dropout = nn.Dropout(dropout)
        self.backprop = backprop
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        for layer in self.layers:
            n_in = layer.in_features
            layer.weight.normal_(0.0, 1.0 if self.init == "large" else n_in**-0.5)
            layer.bias.normal_(0.0, 1.0)

    @property
    def architecture(self) -> str:
        return "-".join(map(str, self.sizes))

    def forward(self, x: Tensor) -> Tensor:
        a = x.flatten(1)  # the 28×28 image as the 784 input activations
        *hidden, output = self.layers  # (slicing a ModuleList builds a new one: too slow for every mini-batch)
        for layer in hidden:
            a = self.dropout(self.activation(layer(a)))
        return output(a)  # z^L

    def gradients(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        if self.backprop != "manual":  # autograd, or fast where it does not apply
            return super().gradients(x, y)
        z, loss, nablas = backprop(list(self.layers), self.activation, self.cost, x, y)
        for layer, (nabla_w, nabla_b) in zip(self.layers, nablas, strict=True):
            layer.weight.grad, layer.bias.grad = nabla_w, nabla_b
        return z, loss

    def fast_path(self, optimizer: torch.optim.Optimizer, world_size: int, precision: str | None) -> FastPath | str:
        layers = list(self.layers)
        reason = fast_path_refusal(
            layers,
            self.activation,
            self.cost,
            optimizer,
            world_size=world_size,
            precision=precision,
        )
        return reason or FastBackprop(layers, self.activation, self.cost, optimizer, dropout=self.dropout.p)

    def log_gradients(self) -> None:
        norms = {f"grad_norm/layer_{l}": layer.bias.grad.norm() for l, layer in enumerate(self.layers, start=1)}
        self.log_dict(norms, on_step=True, on_epoch=False, batch_size=1)
