"""The convolutional network of the notes (chapter 6) as a LightningModule."""

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from nndl.costs import Cost
from nndl.errors import ConfigError, check_range
from nndl.fast_conv import FastConvBackprop, conv_fast_path_refusal
from nndl.mnist_shape import IMAGE_SIZE, NUM_CLASSES
from nndl.models.classifier import Classifier
from nndl.models.network import BUILT_ARGUMENTS, Activation, FastPath, OptimizerFactory, SchedulerFactory

BACKPROPS = ("fast", "autograd")


class CNN(Classifier):
    """Convolution → activation → max-pool blocks, then fully connected layers to the 10 outputs.

    The notes' network (the default): conv 5×5, 16 channels, stride 1, padding 2 → ReLU → max-pool 2 →
    conv 5×5, 32 channels, padding 2 → ReLU → max-pool 2 → fc 32·7·7 = 1568 → 100 with sigmoid → fc 100 → 10.
    Each conv layer's feature maps share one set of weights and a bias (chapter 6, "Shared weights and biases").

    Args:
        channels: output channels (feature maps) of each conv-pool block.
        kernel_size: the local receptive field, kernel_size × kernel_size.
        padding: zero-padding of each conv layer; kernel_size // 2 keeps the image size.
        pool_size: the max-pooling window.
        fc_sizes: the hidden fully connected layers between the last pool and the 10 outputs.
        batch_norm: normalise each convolution's output over the mini-batch before its activation (Ioffe &
            Szegedy, 2015; after the book) — faster, steadier training at large learning rates.
        channels_last: keep feature maps channels-last (NHWC), the layout oneDNN's CPU convolutions run fastest
            on; the same arithmetic, less time per step (docs/performance.md).
        pool_first: max-pool each convolution's output before its BatchNorm and activation (conv → pool → BN →
            activation) rather than after them: the normalisation and the activation then work on a quarter of
            the values (with pool_size 2), so a step takes less time. Without BatchNorm and with
            a non-decreasing activation (ReLU, sigmoid, tanh) it is the same network, as max-pooling commutes
            with such an activation; with BatchNorm the statistics are those of the pooled maps.
        conv_activation: the activation after each convolution (``activation@model.conv_activation=...``).
        activation: the hidden fully connected layers' activation (conf/activation).
        dropout: the probability of dropping each input of the fully connected layers while training, as the
            book's network3.py does (chapter 6).
        l2: λ of the book's L2 regularisation (see ``Network``).
        backprop: ``fast`` (the default): each mini-batch's update by backpropagation through the conv-pool layers
            written out and SGD in place (``nndl.fast_conv.FastConvBackprop``) wherever that is exact: SGD with or
            without momentum and L2, sigmoid/tanh/relu/identity neurons, the three costs, dropout, no BatchNorm,
            one process, 32 or 64-bit, the CPU (chapter 6's networks); anything else takes ``autograd`` (the run logs
            which and why). ``autograd``: autograd and the torch optimizer.
        scheduler: an optional learning-rate schedule (see ``Network``).
    """

    def __init__(
        self,
        cost: Cost,
        optimizer: OptimizerFactory,
        activation: Activation,
        conv_activation: Activation,
        channels: Sequence[int] = (16, 32),
        kernel_size: int = 5,
        padding: int = 2,
        pool_size: int = 2,
        fc_sizes: Sequence[int] = (100,),
        batch_norm: bool = False,
        channels_last: bool = True,
        pool_first: bool = False,
        dropout: float = 0.0,
        l2: float = 0.0,
        backprop: str = "fast",
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__(cost, optimizer, scheduler, l2)
        check_range("model.dropout", dropout, 0, 1, integer=False, open_high=True)
        if backprop not in BACKPROPS:
            raise ConfigError(
                f"model.backprop={backprop!r} is not allowed for the CNN: choose one of {', '.join(BACKPROPS)}"
            )
        self.backprop = backprop
        self.save_hyperparameters(ignore=BUILT_ARGUMENTS, logger=False)
        self.channels, self.fc_sizes = list(channels), list(fc_sizes)
        blocks: list[nn.Module] = []
        size, in_channels = IMAGE_SIZE, 1
        for out_channels in self.channels:
            blocks.append(nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=not batch_norm))
            if pool_first:
                blocks.append(nn.MaxPool2d(pool_size))
            if batch_norm:
                blocks.append(nn.BatchNorm2d(out_channels))
            blocks.append(conv_activation())
            if not pool_first:
                blocks.append(nn.MaxPool2d(pool_size))
            size = (size + 2 * padding - kernel_size + 1) // pool_size
            in_channels = out_channels
            if size < 1:
                raise ConfigError(
                    f"model.channels={self.channels} with kernel_size={kernel_size}, padding={padding} and "
                    f"pool_size={pool_size} shrinks the {IMAGE_SIZE}×{IMAGE_SIZE} image to nothing; use fewer blocks "
                    "or more padding"
                )
        self.features = nn.Sequential(*blocks)
        widths = [in_channels * size * size, *self.fc_sizes]
        fc: list[nn.Module] = [nn.Flatten()]
        for n_in, n_out in itertools.pairwise(widths):
            fc += [*self._dropout(dropout), nn.Linear(n_in, n_out), activation()]
        fc += [*self._dropout(dropout), nn.Linear(widths[-1], NUM_CLASSES)]
        self.classifier = nn.Sequential(*fc)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.features.to(memory_format=self.memory_format)

    @staticmethod
    def _dropout(p: float) -> list[nn.Module]:
        return [nn.Dropout(p)] if p else []

    @property
    def architecture(self) -> str:
        return "-".join([*(f"conv{c}" for c in self.channels), *(f"fc{n}" for n in self.fc_sizes), str(NUM_CLASSES)])

    def fast_path(self, optimizer: torch.optim.Optimizer, world_size: int, precision: str | None) -> FastPath | str:
        fc = [module for module in self.classifier if isinstance(module, nn.Linear)]
        dropout = max((module.p for module in self.classifier if isinstance(module, nn.Dropout)), default=0.0)
        hidden = [m for m in self.classifier if not isinstance(m, (nn.Flatten, nn.Dropout, nn.Linear))]
        activation = hidden[0] if hidden else nn.Identity()  # the fully connected layers' σ (none without them)
        args = (self.features, fc, activation, self.cost, optimizer)
        reason = conv_fast_path_refusal(*args, world_size=world_size, precision=precision)
        return reason or FastConvBackprop(*args, dropout=dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x.contiguous(memory_format=self.memory_format)))  # z^L
