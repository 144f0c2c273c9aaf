"""Lightning callbacks of the lab's own (the rest come from ``lightning.pytorch.callbacks``)."""

import time

import lightning as L


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
