"""The digit classifiers' common part: a ``Network`` whose 10 outputs are scored by accuracy, and whose test
pass ends with two figures in TensorBoard: the confusion matrix and the most confident mistakes."""

import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from nndl.costs import Cost
from nndl.data.batches import MiniBatches
from nndl.loggers import tensorboard_logger
from nndl.mnist_shape import IMAGE_SHAPE, NUM_CLASSES
from nndl.models.network import Network, OptimizerFactory, SchedulerFactory

MISTAKES_SHOWN = 25  # a 5×5 grid


class Classifier(Network):
    """A ``Network`` with one output per digit; the predicted digit is argmax_j z^L_j.

    Logs ``train/acc``, ``val/acc`` and ``test/acc`` besides the losses: the fraction of examples whose
    predicted digit is the label. At the end of a test pass, when the run logs to TensorBoard, two figures
    (IMAGES tab): ``test/confusion_matrix``, how often each digit is predicted as each other digit, and
    ``test/most_confident_mistakes``, the misclassified test digits the network was surest of — often digits
    a person would misread too, as the book's chapter 1 shows. Without a TensorBoard logger the test pass
    tracks neither.
    """

    def __init__(
        self, cost: Cost, optimizer: OptimizerFactory, scheduler: SchedulerFactory | None = None, l2: float = 0.0
    ) -> None:
        super().__init__(cost, optimizer, scheduler, l2)
        # Submodules, so that their states move with the model to its device and stay out of checkpoints.
        self.test_confusion = MulticlassConfusionMatrix(NUM_CLASSES, validate_args=False)
        self.test_mistakes = MostConfidentMistakes(MISTAKES_SHOWN, IMAGE_SHAPE)
        self._test_figures = False  # set at each test pass's start: whether a TensorBoard logger will show them

    def digit_probabilities(self, z: Tensor) -> Tensor:
        """Each example's probability of each digit from its weighted inputs z^L: the output activations a^L
        (``cost.output``), normalised to sum to 1, in float32 at least. With the log-likelihood cost a^L is a
        softmax, a probability distribution already; the book's sigmoid outputs (quadratic and cross-entropy
        costs) each lie in (0, 1) and are divided by their sum. Either way the most probable digit is argmax_j z^L_j."""
        a = self.cost.output(z)
        a = a.float() if a.dtype in (torch.float16, torch.bfloat16) else a
        return a / a.sum(dim=1, keepdim=True).clamp_min(torch.finfo(a.dtype).tiny)

    def predict_step(self, batch: MiniBatches, batch_idx: int) -> Tensor:
        """``Trainer.predict``: the digit probabilities of the batch's examples, z^L computed as the test pass
        computes it (the same mini-batches, the run's precision): what ``scripts/ensemble.py`` votes with."""
        return self.digit_probabilities(torch.cat([self(x) for x, _ in batch.split()]))

    def task_metrics(self) -> dict[str, Metric]:
        return {"acc": MulticlassAccuracy(NUM_CLASSES, average="micro")}

    def on_test_epoch_start(self) -> None:
        super().on_test_epoch_start()
        self._test_figures = self._tensorboard() is not None
        self.test_confusion.reset()
        self.test_mistakes.reset()

    def _accumulate(self, stage: str, batch: MiniBatches, zs: list[Tensor], losses: list[Tensor]) -> Tensor:
        mean_loss = super()._accumulate(stage, batch, zs, losses)
        if stage == "test" and self._test_figures:
            # a^L: σ(z^L), or the softmax for the log-likelihood cost; the predicted digit and its activation
            output, prediction = self.cost.output(torch.cat(zs)).float().max(dim=1)
            self.test_confusion.update(prediction, batch.y)
            self.test_mistakes.update(batch.x, output, prediction, batch.y)
        return mean_loss

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        if not self._test_figures:
            return
        from nndl import figures  # matplotlib loads only when a figure is drawn

        counts = self.test_confusion.compute().cpu()  # computed on every process: it gathers their counts
        images, labels, predictions, outputs = (t.cpu() for t in self.test_mistakes.compute())
        self.test_confusion.reset()
        self.test_mistakes.reset()
        if not self.trainer.is_global_zero:  # the other processes only took part in gathering the states
            return
        writer, step = self._tensorboard().experiment, getattr(self, "test_epoch", 0)  # the tested weights' epoch
        writer.add_figure("test/confusion_matrix", figures.confusion_matrix(counts), global_step=step)
        mistakes = figures.mistakes(images, labels, predictions, outputs, probabilities=self.cost.softmax)
        writer.add_figure("test/most_confident_mistakes", mistakes, global_step=step)

    def _tensorboard(self) -> TensorBoardLogger | None:
        """The run's TensorBoard logger, if it has one (``None`` with no logger or only others)."""
        return tensorboard_logger(self.loggers)


class MostConfidentMistakes(Metric):
    """The ``k`` misclassified examples whose predicted digit had the largest output activation a^L_j.

    The activation is the cost's own output a^L (``Cost.output``): with the log-likelihood cost the softmax
    probability of the predicted digit; with the quadratic and cross-entropy costs the predicted digit's sigmoid
    output, in (0, 1) but not normalised over the digits. Only a running top ``k`` stays on the device (each
    update merges the batch's top ``k`` into it), never the whole test set; across processes the states are
    gathered and ranked again.
    """

    full_state_update = False

    def __init__(self, k: int, image_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.k = k
        self.add_state("scores", default=torch.full((k,), -torch.inf), dist_reduce_fx="cat")
        self.add_state("images", default=torch.zeros(k, *image_shape), dist_reduce_fx="cat")
        self.add_state("labels", default=torch.zeros(k, dtype=torch.long), dist_reduce_fx="cat")
        self.add_state("predictions", default=torch.zeros(k, dtype=torch.long), dist_reduce_fx="cat")

    def update(self, x: Tensor, output: Tensor, prediction: Tensor, y: Tensor) -> None:
        """A batch's inputs x, predicted digits with their activation a^L_j (``a.max(dim=1)``), and labels y."""
        score = output.float().masked_fill(prediction == y, -torch.inf)  # right answers never enter
        top = score.topk(min(self.k, len(score))).indices
        self._keep(
            torch.cat([self.scores, score[top]]),
            torch.cat([self.images, x[top].to(self.images.dtype)]),
            torch.cat([self.labels, y[top]]),
            torch.cat([self.predictions, prediction[top]]),
        )

    def _keep(self, scores: Tensor, images: Tensor, labels: Tensor, predictions: Tensor) -> None:
        best = scores.topk(self.k).indices
        self.scores, self.images, self.labels, self.predictions = (
            t[best] for t in (scores, images, labels, predictions)
        )

    def compute(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(images, labels, predictions, activations) of the mistakes, the most confident first; fewer than
        ``k`` when the model made fewer mistakes."""
        # After a gather across processes the states are stacked, one row per process: rank them all together.
        scores, labels, predictions = (t.reshape(-1) for t in (self.scores, self.labels, self.predictions))
        images = self.images.reshape(len(scores), *self.images.shape[-(self.images.ndim - self.scores.ndim) :])
        order = scores.argsort(descending=True)[: self.k]
        found = order[scores[order] > -torch.inf]
        return images[found], labels[found], predictions[found], scores[found]
