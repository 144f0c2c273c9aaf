"""Mini-batches cut straight out of tensors held in memory.

MNIST fits in memory as uint8 (47 MB for the 60,000 training images), so fetching is one indexing operation and
one conversion to float: no per-example ``__getitem__``, PIL transform or collate. Each fetch serves a whole
Lightning step: ``mini_batches_per_step`` consecutive mini-batches of the epoch's order, carried as one tensor
of images and one of labels (``MiniBatches``), which the model splits. Every step of per-step work — fetching,
moving to the device, Lightning's bookkeeping — is thus paid once for many mini-batches.

The DataLoader still drives the sampling, so Lightning can wrap the sampler for multi-GPU runs (each process
then trains on its share of the steps).
"""

import math
from collections.abc import Callable, Iterator
from typing import NamedTuple

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler


class MiniBatches(NamedTuple):
    """Consecutive mini-batches of ``batch_size`` examples (the last may be smaller), as single tensors."""

    x: Tensor  # inputs: MNIST images (n, 1, 28, 28), float in [0, 1]
    y: Tensor  # desired outputs: MNIST labels (n,), int64
    batch_size: int

    def split(self) -> Iterator[tuple[Tensor, Tensor]]:
        """The mini-batches, in order: pairs of (x, y) views."""
        return zip(self.x.split(self.batch_size), self.y.split(self.batch_size), strict=True)


def unit_pixels(images: Tensor) -> Tensor:
    """uint8 images (n, 28, 28) as the network's input: float in [0, 1], one channel (n, 1, 28, 28)."""
    return images.unsqueeze(1).float().div_(255)


class InMemoryBatches(Dataset[MiniBatches]):
    """``dataset[index]`` is the examples at ``index`` (a tensor of positions) as ``MiniBatches``, their inputs
    passed through ``transform`` (MNIST: ``unit_pixels``)."""

    def __init__(
        self, inputs: Tensor, targets: Tensor, batch_size: int, transform: Callable[[Tensor], Tensor] | None = None
    ) -> None:
        self.inputs, self.targets, self.batch_size, self.transform = inputs, targets, batch_size, transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: Tensor) -> MiniBatches:
        x = self.inputs[index]
        return MiniBatches(self.transform(x) if self.transform else x, self.targets[index], self.batch_size)


class Chunks(Sampler[Tensor]):
    """Positions 0..n−1, in a fresh random order each epoch (or in order), cut into consecutive chunks.

    torch's ``BatchSampler(RandomSampler(...))`` does the same with lists of Python ints; a tensor slice of one
    ``randperm`` per epoch costs nothing per example.
    """

    def __init__(self, n: int, chunk_size: int, shuffle: bool, generator: torch.Generator | None = None) -> None:
        self.n, self.chunk_size, self.shuffle, self.generator = n, chunk_size, shuffle, generator

    def __len__(self) -> int:
        return math.ceil(self.n / self.chunk_size)

    def __iter__(self) -> Iterator[Tensor]:
        # Drawn where the generator lives: on the GPU when the data is there, so no index crosses to it per step.
        device = self.generator.device if self.generator is not None else None
        if self.shuffle:
            order = torch.randperm(self.n, generator=self.generator, device=device)
        else:
            order = torch.arange(self.n, device=device)
        return iter(order.split(self.chunk_size))


def batch_loader(
    inputs: Tensor,
    targets: Tensor,
    batch_size: int,
    shuffle: bool,
    mini_batches_per_step: int = 1,
    generator: torch.Generator | None = None,
    transform: Callable[[Tensor], Tensor] | None = unit_pixels,
) -> DataLoader:
    """A DataLoader of ``MiniBatches``: ``mini_batches_per_step`` mini-batches of ``batch_size`` per step.

    Every example comes once per epoch, in a new order each epoch when ``shuffle`` (drawn from ``generator``, or
    torch's global generator when ``None``); only the epoch's last mini-batch may be smaller. The batches are
    made on the device that holds ``inputs``.
    """
    dataset = InMemoryBatches(inputs, targets, batch_size, transform)
    sampler = Chunks(len(dataset), batch_size * mini_batches_per_step, shuffle, generator)
    return DataLoader(dataset, batch_size=None, sampler=sampler, collate_fn=_as_is)


def _as_is(batch: MiniBatches) -> MiniBatches:
    """The DataLoader's collate step: the dataset already returns whole steps."""
    return batch
