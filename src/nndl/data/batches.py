"""Mini-batches cut straight out of tensors held in memory.

MNIST fits in memory as uint8 (47 MB for the 60,000 training images), so fetching is one indexing operation and
one conversion to float: no per-example ``__getitem__``, PIL transform or collate. Each fetch serves a whole
Lightning step: consecutive mini-batches of the epoch's order, as many whole ones as ``examples_per_step``
(``data.examples_per_step``) holds, carried as one tensor of images and one of labels (``MiniBatches``), which the
model splits, one update each. Every piece of per-step work — fetching, moving to the device, Lightning's
bookkeeping — is thus paid once for many mini-batches; the mini-batches, and their order, are the same whatever
the step's size.

The DataLoader still drives the sampling, so Lightning can wrap the sampler for multi-GPU runs (each process
then trains on its share of the steps).
"""

import math
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler


class MiniBatches(NamedTuple):
    """Consecutive mini-batches of ``batch_size`` examples (the last may be smaller), as single tensors."""

    x: Tensor  # inputs: MNIST images (n, 1, 28, 28), float in [0, 1]
    y: Tensor  # desired outputs: MNIST labels (n,), int64
    batch_size: int
    sizes: tuple[int, ...] | None = None  # data-parallel: this process's share of each mini-batch (may be 0)

    def split(self) -> Iterator[tuple[Tensor, Tensor]]:
        """The mini-batches, in order: pairs of (x, y) views."""
        sizes = list(self.sizes) if self.sizes is not None else self.batch_size
        return zip(self.x.split(sizes), self.y.split(sizes), strict=True)


def unit_pixels(images: Tensor) -> Tensor:
    """uint8 images (n, 28, 28) as the network's input: float in [0, 1], one channel (n, 1, 28, 28)."""
    return images.unsqueeze(1) / 255  # uint8 / int: the default float32, in one pass (the values of .float() / 255)


class InMemoryBatches(Dataset[MiniBatches]):
    """``dataset[index]`` is the examples at ``index`` (a tensor of positions) as ``MiniBatches``, their inputs
    passed through ``transform`` (MNIST: ``unit_pixels``)."""

    def __init__(
        self,
        inputs: Tensor,
        targets: Tensor,
        batch_size: int,
        transform: Callable[[Tensor], Tensor] | None = None,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        self.inputs, self.targets, self.batch_size, self.transform = inputs, targets, batch_size, transform
        self.rank, self.world_size = shard

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: Tensor) -> MiniBatches:
        sizes = None
        if self.world_size > 1:  # this process's share of every mini-batch: every world_size-th example of it
            shares = [mini_batch[self.rank :: self.world_size] for mini_batch in index.split(self.batch_size)]
            index, sizes = torch.cat(shares), tuple(len(share) for share in shares)
        x = self.inputs[index]
        return MiniBatches(self.transform(x) if self.transform else x, self.targets[index], self.batch_size, sizes)


class Chunks(Sampler[Tensor]):
    """Positions 0..n−1, in a fresh random order each epoch (or in order), cut into consecutive chunks.

    torch's ``BatchSampler(RandomSampler(...))`` does the same with lists of Python ints; a tensor slice of one
    ``randperm`` per epoch costs nothing per example.
    """

    def __init__(self, n: int, chunk_size: int, shuffle: bool, generator: torch.Generator | None = None) -> None:
        self.n, self.chunk_size, self.shuffle, self.generator = n, chunk_size, shuffle, generator
        self.skip = 0  # chunks of the next epoch already trained on (a run resumed mid-epoch)
        self.epoch_start: Tensor | None = None  # the generator's state before this epoch's order was drawn

    def __len__(self) -> int:
        return math.ceil(self.n / self.chunk_size)

    def __iter__(self) -> Iterator[Tensor]:
        # Drawn where the generator lives: on the GPU when the data is there, so no index crosses to it per step.
        device = self.generator.device if self.generator is not None else None
        if self.shuffle:
            self.epoch_start = self.generator.get_state() if self.generator is not None else None
            order = torch.randperm(self.n, generator=self.generator, device=device)
        else:
            order = torch.arange(self.n, device=device)
        skip, self.skip = self.skip, 0
        return iter(order.split(self.chunk_size)[skip:])

    def state_dict(self, done: int) -> dict[str, Any]:
        """What decides the order of what is left to train, ``done`` chunks into the current epoch: the
        generator's state for the next epoch's draw (``done`` 0 or the whole epoch), or this epoch's and ``done``."""
        if self.generator is None:
            return {}
        if 0 < done < len(self) and self.epoch_start is not None:
            return {"generator": self.epoch_start, "skip": done}
        return {"generator": self.generator.get_state(), "skip": 0}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state and self.generator is not None:
            self.generator.set_state(state["generator"].to("cpu"))
            self.skip = int(state["skip"])


def mini_batches_per_step(examples_per_step: int | None, batch_size: int) -> int:
    """How many mini-batches of ``batch_size`` one Lightning step holds: as many whole ones as ``examples_per_step``
    holds, at least one; one when ``examples_per_step`` is ``None``."""
    return max(1, (examples_per_step or 0) // batch_size)


def batch_loader(
    inputs: Tensor,
    targets: Tensor,
    batch_size: int,
    shuffle: bool,
    examples_per_step: int | None = None,
    generator: torch.Generator | None = None,
    transform: Callable[[Tensor], Tensor] | None = unit_pixels,
    shard: tuple[int, int] = (0, 1),
) -> DataLoader:
    """A DataLoader of ``MiniBatches``: per step, the mini-batches of ``batch_size`` that ``examples_per_step`` holds
    (``mini_batches_per_step``; one mini-batch per step when ``None``).

    Every example comes once per epoch, in a new order each epoch when ``shuffle`` (drawn from ``generator``, or
    torch's global generator when ``None``); only the epoch's last mini-batch may be smaller. The batches are
    made on the device that holds ``inputs``.

    ``shard=(rank, world_size)``: one of several data-parallel processes. Every process draws the same order and
    takes its share of each mini-batch (every world_size-th example), so that the processes together hold each
    global mini-batch of ``batch_size`` (the book's mini_batch_size), whose gradient they average, and evaluate
    each example once, in as many steps as each other.
    """
    dataset = InMemoryBatches(inputs, targets, batch_size, transform, shard)
    # A whole number of mini-batches per step: the mini-batches are the same whatever the step's size.
    step_size = batch_size * mini_batches_per_step(examples_per_step, batch_size)
    sampler = Chunks(len(dataset), step_size, shuffle, generator)
    # A generator of its own: creating an iterator draws a seed from it, not from torch's global generator,
    # whose state a resumed run restores for dropout (nndl.models.network).
    return DataLoader(dataset, batch_size=None, sampler=sampler, collate_fn=_as_is, generator=torch.Generator())


class ResumableOrder:
    """A data module's training order as checkpoint state, so that a resumed run trains on exactly the examples,
    in exactly the order, the uninterrupted run would have: mixed into a ``LightningDataModule``, whose
    ``state_dict`` Lightning saves with every checkpoint and restores before it asks for the training data."""

    _order: Chunks | None = None
    _restored: dict[str, Any] | None = None

    @property
    def shard(self) -> tuple[int, int]:
        """(rank, world size) of this process among data-parallel ones; (0, 1) alone."""
        trainer = getattr(self, "trainer", None)
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def resumable(self, loader: DataLoader) -> DataLoader:
        """``loader`` (of ``batch_loader``), its order restored from a checkpoint if one was loaded."""
        self._order = loader.sampler  # type: ignore[assignment]
        if self._restored:
            self._order.load_state_dict(self._restored)
            self._restored = None
        return loader

    def state_dict(self) -> dict[str, Any]:
        trainer = getattr(self, "trainer", None)
        if self._order is None or trainer is None:
            return {}
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed  # saved on_train_batch_end: counts
        return {"order": self._order.state_dict(done)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored = state_dict.get("order")


def _as_is(batch: MiniBatches) -> MiniBatches:
    """The DataLoader's collate step: the dataset already returns whole steps."""
    return batch
