"""The MNIST LightningDataModule shared by every model.

The split is the book's: of the 60,000 official training images the first 50,000 train and the last 10,000
validate; the official 10,000 test images test. ``train_size`` keeps only the first N training images (the book's
overfitting run in chapter 3 trains on 1,000).
"""

import math
import os
from pathlib import Path

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from nndl.data import files
from nndl.data.batches import ResumableOrder, batch_loader
from nndl.errors import ConfigError, DataError, check_range

MNIST_TRAIN_IMAGES = 60_000


class MNISTDataModule(ResumableOrder, L.LightningDataModule):
    """MNIST read once into uint8 tensors, served as mini-batches scaled to [0, 1].

    Args:
        data_dir: the directory holding ``MNIST/raw/`` (torchvision's layout); config ``data.data_dir``,
            by default ``$NNDL_DATA_DIR`` or ``data/`` in the project.
        batch_size: the training mini-batch size (the book's ``mini_batch_size``).
        eval_batch_size: the batch size for validation and test, which need no gradients.
        examples_per_step: how many training examples one Lightning step trains on, as whole mini-batches of
            ``batch_size`` (at least one), one update each: ``max(1, examples_per_step // batch_size)`` mini-batches.
            Steps of many mini-batches spread Lightning's per-step cost; they change nothing of the training.
        val_size: how many of the last training images validate (the book: 10,000).
        train_size: keep only the first N of the remaining training images; ``None`` keeps them all.
        expand: add to the training images their four 1-pixel shifts (up, down, left, right), as the book's
            expand_mnist.py (chapter 6): five times the training set, built in memory, the same every run.
        download: fetch the files with torchvision when they are missing.
        seed: seeds the shuffling: epoch e trains in the e-th permutation drawn from a generator with this seed,
            whatever else draws random numbers; ``None`` draws from torch's global generator.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike = "data",
        batch_size: int = 10,
        eval_batch_size: int = 1000,
        examples_per_step: int = 2000,
        val_size: int = 10_000,
        train_size: int | None = None,
        expand: bool = False,
        download: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        check_range("data.batch_size", batch_size, 1)
        check_range("data.eval_batch_size", eval_batch_size, 1)
        check_range("data.examples_per_step", examples_per_step, 1)
        check_range("data.val_size", val_size, 1, MNIST_TRAIN_IMAGES - 1)
        if train_size is not None:
            check_range("data.train_size", train_size, 1)
        self.data_dir = Path(data_dir)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.examples_per_step = examples_per_step
        self.val_size = val_size
        self.train_size = train_size
        self.expand = expand
        self.download = download
        self.seed = seed
        self.train_data: tuple[Tensor, Tensor] | None = None
        self.val_data: tuple[Tensor, Tensor] | None = None
        self.test_data: tuple[Tensor, Tensor] | None = None

    def prepare_data(self) -> None:
        """Download the files if they are missing (once per machine), then check them before any work starts."""
        if self.download and files.missing_files(self.data_dir):
            files.download(self.data_dir)
        files.check(self.data_dir)

    def setup(self, stage: str | None = None) -> None:
        """Read the splits a stage needs into memory (once; this runs on every process of a multi-GPU run)."""
        if stage in ("fit", "validate", None) and self.train_data is None:
            images, labels = self._read(train=True)
            available = len(labels) - self.val_size
            if available < 1:
                raise DataError(
                    f"{files.raw_dir(self.data_dir) / files.TRAIN.images}: {len(labels)} training images leave "
                    f"none to train on after data.val_size={self.val_size} for validation"
                )
            if self.train_size is not None and self.train_size > available:
                raise ConfigError(
                    f"data.train_size={self.train_size} is out of range: only {available} training images remain "
                    f"after data.val_size={self.val_size} for validation"
                )
            keep = self.train_size or available
            self.train_data = images[:keep], labels[:keep]
            if self.expand:
                self.train_data = expanded(*self.train_data)
            self.val_data = images[available:], labels[available:]
        if stage in ("test", "predict", None) and self.test_data is None:
            self.test_data = self._read(train=False)
        if self.trainer is not None:  # a GPU run keeps the whole dataset on the GPU: no copy per step
            device = self.trainer.strategy.root_device
            self.train_data, self.val_data, self.test_data = (
                None if split is None else (split[0].to(device), split[1].to(device))
                for split in (self.train_data, self.val_data, self.test_data)
            )

    @property
    def n_train(self) -> int:
        """How many examples train (the book's n), once ``setup`` has read them."""
        return len(self._require(self.train_data, "fit")[1])

    @property
    def mini_batches_per_epoch(self) -> int:
        """How many updates an epoch makes: the training examples in mini-batches of ``batch_size``."""
        return math.ceil(self.n_train / self.batch_size)

    def train_dataloader(self) -> DataLoader:
        train = self._require(self.train_data, "fit")
        images, _ = train
        generator = None if self.seed is None else torch.Generator(images.device).manual_seed(self.seed)
        loader = batch_loader(*train, self.batch_size, True, self.examples_per_step, generator, shard=self.shard)
        return self.resumable(loader)

    def val_dataloader(self) -> DataLoader:
        return batch_loader(*self._require(self.val_data, "fit"), self.eval_batch_size, False, shard=self.shard)

    def test_dataloader(self) -> DataLoader:
        return batch_loader(*self._require(self.test_data, "test"), self.eval_batch_size, False, shard=self.shard)

    def _read(self, train: bool) -> tuple[Tensor, Tensor]:
        """One split as uint8 images (N, 28, 28) and int64 labels (N,), parsed by torchvision."""
        from torchvision.datasets import MNIST

        try:
            dataset = MNIST(self.data_dir, train=train, download=False)
        except Exception as err:  # check() has run, so this is a file that changed or cannot be read
            raise DataError(f"reading MNIST from {files.raw_dir(self.data_dir)} failed: {err}") from None
        return dataset.data, dataset.targets

    @staticmethod
    def _require(split: tuple[Tensor, Tensor] | None, stage: str) -> tuple[Tensor, Tensor]:
        if split is None:
            raise RuntimeError(f"call setup('{stage}') before asking for this dataloader")
        return split


def expanded(images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """The images followed by their copies shifted one pixel up, down, left and right (zeros shifted in)."""
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1))  # (N, 30, 30)
    size = images.shape[-1]
    shifts = [
        padded[:, 1 + dy : 1 + dy + size, 1 + dx : 1 + dx + size] for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1))
    ]
    return torch.cat([images, *shifts]), labels.repeat(5)
