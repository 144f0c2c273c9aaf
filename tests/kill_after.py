"""A callback for the resume tests: the process sends itself SIGTERM at a chosen point of training, as a scheduler
would, so that a run is interrupted at exactly that point (added with +callbacks.kill._target_=kill_after...)."""

import os
import signal
from typing import Any

import lightning as L


class KillAfter(L.Callback):
    """SIGTERM once ``epochs`` epochs have ended, or once ``steps`` Lightning steps have run (whichever is set);
    in a sweep, in job number ``job`` only."""

    def __init__(self, epochs: int = 0, steps: int = 0, job: int | None = None) -> None:
        self.epochs, self.steps, self.job = epochs, steps, job

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.job is not None:  # in a sweep, only the job of this number is killed
            from hydra.core.hydra_config import HydraConfig

            if HydraConfig.get().job.num != self.job:
                self.epochs = self.steps = 0

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.epochs and trainer.current_epoch + 1 == self.epochs:
            os.kill(os.getpid(), signal.SIGTERM)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self.steps and trainer.fit_loop.total_batch_idx + 1 == self.steps:
            os.kill(os.getpid(), signal.SIGTERM)
