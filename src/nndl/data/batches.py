"""Mini-batches cut straight out of tensors held in memory.

MNIST fits in memory as uint8 (47 MB for the 60,000 training images), so fetching is one indexing operation and
one conversion to float: no per-sample ``__getitem__``, PIL transform or collate. Each fetch serves a whole
Lightning step: ``mini_batches_per_step`` consecutive mini-batches of the epoch's order, as a list. The
DataLoader still does the sampling (shuffled per epoch, or in order), so Lightning can swap in a distributed
sampler for multi-GPU runs.
"""

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler


class InMemoryBatches(Dataset[list[tuple[Tensor, Tensor]]]):
    """``dataset[indices]`` is those examples as mini-batches of ``batch_size``: a list of (images, labels),
    images as float in [0, 1] of shape (m, 1, 28, 28)."""

    def __init__(self, images: Tensor, labels: Tensor, batch_size: int) -> None:
        self.images = images  # (N, 28, 28) uint8
        self.labels = labels  # (N,) int64
        self.batch_size = batch_size

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, indices: Sequence[int]) -> list[tuple[Tensor, Tensor]]:
        index = torch.as_tensor(indices)
        x = self.images[index].unsqueeze(1).float().div_(255)
        return list(zip(x.split(self.batch_size), self.labels[index].split(self.batch_size), strict=True))


def batch_loader(
    images: Tensor,
    labels: Tensor,
    batch_size: int,
    shuffle: bool,
    mini_batches_per_step: int = 1,
    generator: torch.Generator | None = None,
) -> DataLoader:
    """A DataLoader of lists of ``mini_batches_per_step`` mini-batches of ``batch_size``, reshuffled every epoch.

    Every example comes once per epoch; only the epoch's last mini-batch may be smaller. ``generator`` draws the
    epochs' orders (torch's global generator when ``None``). With ``batch_size=None``
    the DataLoader hands each index list from the BatchSampler to ``InMemoryBatches`` in one call instead of
    fetching and collating examples one by one.
    """
    dataset = InMemoryBatches(images, labels, batch_size)
    order = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    sampler = BatchSampler(order, batch_size * mini_batches_per_step, drop_last=False)
    return DataLoader(dataset, batch_size=None, sampler=sampler)
