"""Lightning callbacks of the lab's own (the rest come from ``lightning.pytorch.callbacks``)."""

import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger


class EpochTimer(L.Callback):
    """Log each epoch's wall-clock time: ``time/train_s`` (the training steps) and ``time/val_s`` (validation);
    and put the step-level scalars on the update count."""

    def __init__(self) -> None:
        self._start = self._val_start = 0.0
        self._train_s = self._val_s = 0.0
        self.total_train_s = 0.0  # all epochs' training time: what a run costs, without validation
        self._fitted = False

    def state_dict(self) -> dict[str, float]:
        return {"total_train_s": self.total_train_s}  # a resumed run adds to its training time

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        if not self._fitted:  # testing the best checkpoint after training must not wind the clock back
            self.total_train_s = state_dict["total_train_s"]

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._fitted = True

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()
        self._train_s = self._val_s = 0.0

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._val_start = time.perf_counter()
        if not trainer.sanity_checking:
            self._train_s = self._val_start - self._start

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._val_s = time.perf_counter() - self._val_start

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: object, batch: object, batch_idx: int
    ) -> None:
        # The x value of the step-level scalars (train/loss_step, grad_norm/...): the update count (one Lightning
        # step holds the mini-batches of data.examples_per_step examples, one update each); the epoch-level ones log
        # theirs (EpochRecords._log_epoch).
        pl_module.log("step", float(trainer.global_step), on_step=True, on_epoch=False, batch_size=1)

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
        self._restored: dict | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        optimizer = trainer.optimizers[0]
        # patience - 1: ReduceLROnPlateau halves after more than `patience` bad epochs; the book after `patience`.
        self.schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=self.mode, factor=0.5, patience=self.patience - 1, threshold=0.0
        )
        self.start_lr = optimizer.param_groups[0]["lr"]
        if self._restored:  # a resumed run: the count of epochs without improvement and the first eta go on
            self.schedule.load_state_dict(self._restored["schedule"])
            self.start_lr = self._restored["start_lr"]
            self._restored = None

    def state_dict(self) -> dict:
        if self.schedule is None:
            return {}
        return {"schedule": self.schedule.state_dict(), "start_lr": self.start_lr}

    def load_state_dict(self, state_dict: dict) -> None:
        self._restored = state_dict or None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.schedule is None or self.monitor not in trainer.callback_metrics:
            return
        self.schedule.step(float(trainer.callback_metrics[self.monitor]))
        if trainer.optimizers[0].param_groups[0]["lr"] <= self.start_lr * self.stop_at * (1 + 1e-9):
            trainer.should_stop = True


class ParameterHistograms(L.Callback):
    """Every ``every_n_epochs`` training epochs, a histogram of each parameter (``weights/<name>``) and of its
    gradient (``grads/<name>``) in TensorBoard (HISTOGRAMS tab); 0 (the default) logs none.

    Logged after the epoch's last training step, when the weights are the epoch's final ones and ``.grad`` still
    holds the last mini-batch's gradient (the training loop clears it before each mini-batch's backpropagation);
    not at the epoch's end, because Lightning clears every ``.grad`` before validation. Layer by layer, the
    histograms show what the gradient norms of chapter 5 summarise (whether the early layers' gradients vanish or
    explode) and how the weights spread from their initialisation (chapter 3). Without a TensorBoard logger,
    nothing is logged.
    """

    def __init__(self, every_n_epochs: int = 0) -> None:
        self.every_n_epochs = every_n_epochs

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: object, batch: object, batch_idx: int
    ) -> None:
        if (
            self.every_n_epochs < 1
            or (trainer.current_epoch + 1) % self.every_n_epochs
            or batch_idx + 1 < trainer.num_training_batches
        ):
            return
        tensorboard = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        if tensorboard is None:
            return
        writer, step = tensorboard.experiment, trainer.current_epoch  # on the epoch axis, as the epoch-level scalars
        for name, parameter in pl_module.named_parameters():
            writer.add_histogram(f"weights/{name}", parameter.detach().float(), global_step=step)
            if parameter.grad is not None:
                writer.add_histogram(f"grads/{name}", parameter.grad.detach().float(), global_step=step)


class EpochProgressBar(TQDMProgressBar):
    """Lightning's progress bar, naming the epoch among all of the run's: "Epoch 2 of 0–29" (counted from 0, as
    everywhere in the lab; Lightning's own says "Epoch 2"). Its steps are Lightning steps, each the mini-batches
    of ``data.examples_per_step`` examples."""

    def on_train_epoch_start(self, trainer: L.Trainer, *args: object) -> None:
        super().on_train_epoch_start(trainer, *args)
        if trainer.max_epochs and trainer.max_epochs > 0:
            self.train_progress_bar.set_description(f"Epoch {trainer.current_epoch} of 0–{trainer.max_epochs - 1}")


class MovedRunDirectory(L.Callback):
    """A run resumed in another directory than the one it trained in (moved, copied, handed over): the
    checkpoint callbacks' saved paths follow it. Lightning keeps only the old ``best_model_path`` when a
    ``ModelCheckpoint``'s directory changed, forgetting the best score and the files it kept, so that a later
    epoch would replace the best and the wrong checkpoint be tested. Added to every run by ``nndl.build``."""

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        states = checkpoint.get("callbacks") or {}
        for callback in trainer.checkpoint_callbacks:
            state, here = states.get(callback.state_key), getattr(callback, "dirpath", None)
            there = state.get("dirpath") if isinstance(state, dict) else None
            if not isinstance(there, str) or here is None or Path(there) == Path(here):
                continue

            def moved(path: object, there: str = there, here: str = here) -> object:
                """A file the callback kept in its old directory, in its new one."""
                return (
                    str(Path(here) / Path(path).name)
                    if isinstance(path, str) and Path(path).parent == Path(there)
                    else path
                )

            state["dirpath"] = here
            for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
                state[key] = moved(state.get(key))
            state["best_k_models"] = {moved(path): score for path, score in (state.get("best_k_models") or {}).items()}
