"""What a network keeps of each epoch besides its weights: the metrics of every stage, the validation history
that picks the best epoch, and what a resumed run needs in its checkpoint.

``Network`` (nndl.models.network) builds on ``EpochRecords``: its steps hand each Lightning step's mini-batches to
``_accumulate``; the epoch hooks here log the averages and keep the history.
"""

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor, nn
from torchmetrics import MeanMetric, Metric

from nndl.data.batches import MiniBatches

STAGES = ("train", "val", "test")


class EpochRecords(L.LightningModule):
    """The per-epoch records of a network trained on a cost.

    Logged per epoch, to TensorBoard and the progress bar: ``train/loss``, ``val/loss``, ``test/loss`` (the
    cost averaged over the epoch's examples), and the same for each of ``task_metrics`` (``Classifier``: ``acc``);
    ``train/lr``, the learning rate at each epoch's end. ``val_history`` holds every epoch's ``val/*``, from which
    the test pass names the epoch it scores (``test_epoch``); ``train_losses`` every epoch's ``train/loss``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.metric_names = ["loss", *self.task_metrics()]
        self.metrics = nn.ModuleDict()  # "train_loss", "train_acc", "val_loss", ...
        for stage in STAGES:
            self.metrics[f"{stage}_loss"] = MeanMetric()
            for name, metric in self.task_metrics().items():
                self.metrics[f"{stage}_{name}"] = metric
        self.val_history: list[dict[str, float]] = []  # val/* of every epoch, to report the best one
        self.train_losses: list[float] = []  # train/loss of every epoch: whether the run learned (nndl.report)
        self._resumed_train_metrics: dict | None = None  # a mid-epoch checkpoint's, until the epoch goes on

    def task_metrics(self) -> dict[str, Metric]:
        """Metrics of the outputs z^L against the targets y, besides the loss; a new set on each call."""
        return {}

    def _accumulate(self, stage: str, batch: MiniBatches, zs: list[Tensor], losses: Tensor) -> Tensor:
        """Add a step's mini-batches to the epoch's loss and task metrics, on the device; return their mean loss.

        One metric update per step rather than per mini-batch: an update costs about as much as a
        mini-batch of 10 takes to train.
        """
        if not zs:  # data-parallel evaluation: nothing of this step fell to this process
            return torch.zeros((), device=self.device)
        sizes = torch.tensor([len(z) for z in zs], device=self.device, dtype=torch.float32)
        loss = losses.float()
        self.metrics[f"{stage}_loss"].update(loss, weight=sizes)
        for name in self.metric_names[1:]:
            self.metrics[f"{stage}_{name}"].update(torch.cat(zs), batch.y)
        return (loss * sizes).sum() / sizes.sum()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """What a resumed run needs besides the weights and the optimizer: the validation history (the best epoch),
        every epoch's training loss, the random generators that dropout draws from, and the training metrics
        accumulated so far in the epoch (a checkpoint saved mid-epoch: the epoch's ``train/*`` still average all
        of its mini-batches after a resume)."""
        train_metrics = {}
        for name, metric in self.metrics.items():
            if name.startswith("train_"):  # every process's share summed (data-parallel: all take part here)
                with metric.sync_context(should_sync=metric.update_count > 0):
                    train_metrics[name] = {key: value.cpu() for key, value in metric.metric_state.items()}
        checkpoint["nndl"] = {
            "val_history": self.val_history,
            "train_losses": self.train_losses,
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "train_metrics": {
                "epoch": self.current_epoch,
                "states": train_metrics,
                "updates": {name: self.metrics[name].update_count for name in train_metrics},
            },
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("nndl", {})
        self.val_history = list(state.get("val_history", []))
        if self._trainer is not None and self._trainer.state.fn == TrainerFn.FITTING:  # resumed, not tested
            self.train_losses = [float(loss) for loss in state.get("train_losses", [])]
            self._resumed_train_metrics = state.get("train_metrics")
        if "rng" in state:
            torch.set_rng_state(state["rng"])
        if state.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    def on_train_start(self) -> None:
        """A run resumed in the middle of an epoch takes up the training metrics where its checkpoint left them
        (Lightning goes on with the epoch without starting it again)."""
        saved, self._resumed_train_metrics = self._resumed_train_metrics, None
        if not saved or saved["epoch"] != self.current_epoch:  # saved at an epoch's end: the next one starts afresh
            return
        if self.global_rank != 0:  # the saved states are every process's summed: one process takes them up
            return
        for name, states in saved["states"].items():
            metric = self.metrics[name]
            for key, value in states.items():
                setattr(metric, key, value.to(self.device))
            metric._update_count = saved["updates"][name]  # torchmetrics has no public setter

    def on_train_epoch_end(self) -> None:
        values = self._log_epoch("train")
        self.log("train/lr", self.optimizers().optimizer.param_groups[0]["lr"])  # at the epoch's end
        self.train_losses.append(values["train/loss"])

    def on_validation_epoch_end(self) -> None:
        values = self._log_epoch("val")
        if not self.trainer.sanity_checking:
            self.val_history.append({"epoch": self.current_epoch, **values})

    def on_test_epoch_end(self) -> None:
        self.test_epoch = self._tested_epoch()
        self._log_epoch("test", epoch=self.test_epoch)

    def _tested_epoch(self) -> int:
        """The epoch whose weights the test pass scores: the best by the checkpoint's monitor (the first best, as
        the checkpoint keeps it), else the last one trained."""
        checkpoint = getattr(self.trainer, "checkpoint_callback", None)
        monitor = getattr(checkpoint, "monitor", None)
        scored = [epoch for epoch in self.val_history if monitor in epoch]
        if checkpoint is not None and checkpoint.best_model_path and scored:
            pick = max if checkpoint.mode == "max" else min
            return int(pick(scored, key=lambda epoch: epoch[monitor])["epoch"])
        return max(self.current_epoch - 1, 0)

    def _log_epoch(self, stage: str, epoch: int | None = None) -> dict[str, float]:
        """Log the epoch's metrics of ``stage`` against the epoch (counted from 0, as Lightning and the checkpoints'
        names count it): the ``step`` logged with them is the x value Lightning hands the loggers, so that every
        epoch-level scalar shares one axis; step-level scalars stay on the update count (``nndl.callbacks``)."""
        values = {}
        for name in self.metric_names:
            metric = self.metrics[f"{stage}_{name}"]
            values[f"{stage}/{name}"] = metric.compute().item()
            metric.reset()
        self.log_dict(values, prog_bar=stage != "test")
        epoch = self.current_epoch if epoch is None else epoch
        self.log_dict({"epoch": float(epoch), "step": float(epoch)})
        return values
