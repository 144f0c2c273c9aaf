"""The digit classifiers' common part: a ``Network`` whose 10 outputs are scored by accuracy."""

from torchmetrics import Metric
from torchmetrics.classification import MulticlassAccuracy

from nndl.costs import NUM_CLASSES
from nndl.models.network import Network


class Classifier(Network):
    """A ``Network`` with one output per digit; the predicted digit is argmax_j z^L_j.

    Logs ``train/acc``, ``val/acc`` and ``test/acc`` besides the losses: the fraction of examples whose
    predicted digit is the label.
    """

    def task_metrics(self) -> dict[str, Metric]:
        return {"acc": MulticlassAccuracy(NUM_CLASSES, average="micro")}
