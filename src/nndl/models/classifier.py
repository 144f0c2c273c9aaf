"""What every model of the lab shares: the cost, the optimizer, accuracy and loss per stage, and logging.

A model subclasses ``Classifier`` and defines ``forward(x) -> z^L`` (the output layer's weighted input) and
``architecture`` (a short description for the run's hyperparameters); the cost turns z^L into a^L and C.
"""

from collections.abc import Callable, Iterable

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from nndl.costs import NUM_CLASSES, Cost

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
Activation = Callable[[], nn.Module]
STAGES = ("train", "val", "test")


class Classifier(L.LightningModule):
    """A digit classifier trained by mini-batch gradient descent on a cost from ``nndl.costs``.

    Logged per epoch, to TensorBoard and the progress bar: ``train/loss``, ``train/acc``, ``val/loss``,
    ``val/acc``, ``test/loss``, ``test/acc``. Loss is the cost averaged over the epoch's examples; accuracy the
    fraction of examples whose argmax_j z^L_j is the label.

    Args:
        cost: one of ``nndl.costs`` (conf/cost).
        optimizer: called with the parameters, returns the optimizer (conf/optimizer, a Hydra partial).
    """

    def __init__(self, cost: Cost, optimizer: OptimizerFactory) -> None:
        super().__init__()
        self.cost = cost
        self.make_optimizer = optimizer
        self.metrics = nn.ModuleDict()  # "train_loss", "train_acc", "val_loss", ...
        for stage in STAGES:
            self.metrics[f"{stage}_loss"] = MeanMetric()
            self.metrics[f"{stage}_acc"] = MulticlassAccuracy(NUM_CLASSES, average="micro")
        self.val_history: list[dict[str, float]] = []  # val/* of every epoch, to report the best one

    @property
    def architecture(self) -> str:
        raise NotImplementedError

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.make_optimizer(self.parameters())

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._step("train", batch)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step("val", batch)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step("test", batch)

    def _step(self, stage: str, batch: tuple[Tensor, Tensor]) -> Tensor:
        x, y = batch
        z = self(x)
        loss = self.cost(z, y)
        # Metrics accumulate on the device and are logged once per epoch: a self.log per step costs more
        # than the book's mini-batch of 10 does to compute.
        self.metrics[f"{stage}_loss"].update(loss.detach(), weight=len(y))
        self.metrics[f"{stage}_acc"].update(z.detach(), y)
        return loss

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        values = self._log_epoch("val")
        if not self.trainer.sanity_checking:
            self.val_history.append({"epoch": self.current_epoch, **values})

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def _log_epoch(self, stage: str) -> dict[str, float]:
        values = {}
        for name in ("loss", "acc"):
            metric = self.metrics[f"{stage}_{name}"]
            values[f"{stage}/{name}"] = metric.compute().item()
            metric.reset()
        self.log_dict(values, prog_bar=stage != "test")
        return values
