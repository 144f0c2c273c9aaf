"""Mini-batches cut straight out of tensors held in memory.

MNIST fits in memory as uint8 (47 MB for the 60,000 training images), so a batch is one indexing operation and
one conversion to float: no per-sample ``__getitem__``, PIL transform or collate. The DataLoader still does the
sampling (shuffled per epoch, or in order), so Lightning can swap in a distributed sampler for multi-GPU runs.
"""

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler


class InMemoryBatches(Dataset[tuple[Tensor, Tensor]]):
    """``dataset[indices]`` is a whole mini-batch: images as float in [0, 1] of shape (B, 1, 28, 28), and labels."""

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        self.images = images  # (N, 28, 28) uint8
        self.labels = labels  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, indices: Sequence[int]) -> tuple[Tensor, Tensor]:
        index = torch.as_tensor(indices)
        x = self.images[index].unsqueeze(1).float().div_(255)
        return x, self.labels[index]


def batch_loader(images: Tensor, labels: Tensor, batch_size: int, shuffle: bool) -> DataLoader:
    """A DataLoader over mini-batches of ``batch_size`` (the last one may be smaller), reshuffled every epoch.

    With ``batch_size=None`` the DataLoader hands each index list from the BatchSampler to ``InMemoryBatches``
    in one call instead of fetching and collating samples one by one.
    """
    dataset = InMemoryBatches(images, labels)
    order = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
    return DataLoader(dataset, batch_size=None, sampler=BatchSampler(order, batch_size, drop_last=False))
