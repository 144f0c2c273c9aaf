"""Lightning callbacks of the lab's own (the rest come from ``lightning.pytorch.callbacks``)."""

import time

import lightning as L
import torch


class EpochTimer(L.Callback):
    """Log each epoch's wall-clock time: ``time/train_s`` (the training steps) and ``time/val_s`` (validation)."""

    def __init__(self) -> None:
        self._start = self._val_start = 0.0
        self._train_s = self._val_s = 0.0
        self.total_train_s = 0.0  # all epochs' training time: what a run costs, without validation

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()
        self._train_s = self._val_s = 0.0

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._val_start = time.perf_counter()
        if not trainer.sanity_checking:
            self._train_s = self._val_start - self._start

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._val_s = time.perf_counter() - self._val_start

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        train_s = self._train_s or time.perf_counter() - self._start  # no validation this epoch: all of it trained
        self.total_train_s += train_s
        pl_module.log_dict({"time/train_s": train_s, "time/val_s": self._val_s}, prog_bar=True)


class HalveEtaOnPlateau(L.Callback):
    """The book's learning-rate schedule (chapter 3, "How to choose a neural network's hyper-parameters"):
    halve η each time ``monitor`` has not improved for ``patience`` epochs, and stop training once η has
    fallen to ``stop_at`` (1/128 in the book) of its starting value. Built on torch's ReduceLROnPlateau.
    """

    def __init__(
        self, patience: int = 10, stop_at: float = 1 / 128, monitor: str = "val/acc", mode: str = "max"
    ) -> None:
        self.patience, self.stop_at, self.monitor, self.mode = patience, stop_at, monitor, mode
        self.schedule: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
        self.start_lr = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        optimizer = trainer.optimizers[0]
        # patience - 1: ReduceLROnPlateau halves after more than `patience` bad epochs; the book after `patience`.
        self.schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=self.mode, factor=0.5, patience=self.patience - 1, threshold=0.0
        )
        self.start_lr = optimizer.param_groups[0]["lr"]

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.schedule is None or self.monitor not in trainer.callback_metrics:
            return
        self.schedule.step(float(trainer.callback_metrics[self.monitor]))
        if trainer.optimizers[0].param_groups[0]["lr"] <= self.start_lr * self.stop_at * (1 + 1e-9):
            trainer.should_stop = True
