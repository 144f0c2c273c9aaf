"""A function of one variable to approximate (chapter 4, "A visual proof that neural nets can compute any
function"): examples (x, f(x)) with x drawn uniformly from [0, 1]."""

import math

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from nndl.data.batches import ResumableOrder, batch_loader
from nndl.errors import ConfigError, check_range


def book_function(x: Tensor) -> Tensor:
    """The book's example, f(x) = 0.2 + 0.4x² + 0.3x sin(15x) + 0.05 cos(50x)."""
    return 0.2 + 0.4 * x**2 + 0.3 * x * torch.sin(15 * x) + 0.05 * torch.cos(50 * x)


FUNCTIONS = {"book": book_function}


class FunctionDataModule(ResumableOrder, L.LightningDataModule):
    """Training, validation and test examples (x, f(x)), x ~ U[0, 1], drawn once from ``seed``.

    Args:
        function: which f, from ``FUNCTIONS``.
        n_train, n_val, n_test: examples per split.
        batch_size: the training mini-batch size.
        examples_per_step: how many examples one Lightning step trains on, as whole mini-batches (see
            ``nndl.data.batches.mini_batches_per_step``).
        seed: draws the examples and the order of every epoch.
    """

    def __init__(
        self,
        function: str = "book",
        n_train: int = 1000,
        n_val: int = 200,
        n_test: int = 200,
        batch_size: int = 10,
        examples_per_step: int = 1000,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if function not in FUNCTIONS:
            raise ConfigError(f"data.function={function!r} is not known: choose one of {', '.join(FUNCTIONS)}")
        counts = (n_train, n_val, n_test, batch_size, examples_per_step)
        for key, value in zip(("n_train", "n_val", "n_test", "batch_size", "examples_per_step"), counts, strict=True):
            check_range(f"data.{key}", value, 1)
        self.f = FUNCTIONS[function]
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}
        self.batch_size, self.examples_per_step, self.seed = batch_size, examples_per_step, seed
        self.train_data: tuple[Tensor, Tensor] | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_data is None:
            generator = torch.Generator().manual_seed(self.seed)
            splits = {name: torch.rand(n, 1, generator=generator) for name, n in self.sizes.items()}
            self.train_data, self.val_data, self.test_data = ((x, self.f(x)) for x in splits.values())

    @property
    def n_train(self) -> int:
        """How many examples train (the book's n)."""
        return self.sizes["train"]

    @property
    def mini_batches_per_epoch(self) -> int:
        """How many updates an epoch makes: the training examples in mini-batches of ``batch_size``."""
        return math.ceil(self.n_train / self.batch_size)

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return self.resumable(
            batch_loader(*self.train_data, self.batch_size, True, self.examples_per_step, generator, transform=None)
        )

    def val_dataloader(self) -> DataLoader:
        return batch_loader(*self.val_data, len(self.val_data[1]), shuffle=False, transform=None)

    def test_dataloader(self) -> DataLoader:
        return batch_loader(*self.test_data, len(self.test_data[1]), shuffle=False, transform=None)
