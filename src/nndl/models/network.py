"""What every network of the lab shares: the SGD loop, the cost, the optimizer, L2, the loss per stage, logging.

A model subclasses ``Network`` (through ``Classifier`` for the digit classifiers) and defines
``forward(x) -> z^L`` (the output layer's weighted input) and ``architecture`` (a short description for the
run's hyperparameters); the cost turns z^L into a^L and C.

The training loop is the book's ``SGD``: one gradient step per mini-batch. Lightning hands ``training_step``
consecutive mini-batches of the epoch's shuffled order (``data.mini_batches_per_step`` of them, as
``MiniBatches``) and the step updates the weights once per mini-batch, as ``network.py``'s
``update_mini_batch`` does. Taking many mini-batches per Lightning step spreads Lightning's own per-step cost
over them: with the book's mini-batches of 10, that cost would otherwise exceed the arithmetic.
"""

from collections.abc import Callable, Iterable

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric, Metric

from nndl.costs import Cost
from nndl.data.batches import MiniBatches
from nndl.errors import ConfigError

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]  # (optimizer, total_steps=...) -> scheduler
Activation = Callable[[], nn.Module]
STAGES = ("train", "val", "test")
# Constructor arguments that are objects built from their own config groups, not hyperparameters to save.
BUILT_ARGUMENTS = ["cost", "optimizer", "scheduler", "activation", "conv_activation"]


class Network(L.LightningModule):
    """A network trained by mini-batch gradient descent on a cost from ``nndl.costs``.

    Logged per epoch, to TensorBoard and the progress bar: ``train/loss``, ``val/loss``, ``test/loss`` (the
    cost averaged over the epoch's examples), and the same for each of ``task_metrics`` (``Classifier``: ``acc``).
    ``train/loss_step`` follows the training loss within an epoch (the mean over each Lightning step's
    mini-batches); ``train/lr`` is the learning rate at each epoch's end.

    Args:
        cost: one of ``nndl.costs`` (conf/cost).
        optimizer: called with the parameters, returns the optimizer (conf/optimizer, a Hydra partial).
        scheduler: ``None`` keeps the learning rate fixed, as the book does; else called with the optimizer and
            ``total_steps`` (the run's number of mini-batch updates), returns a learning-rate schedule that
            advances after every update (conf/scheduler, e.g. one-cycle).
        l2: λ of the book's L2 regularisation (chapter 3, eq. 87): C = C_0 + λ/2n Σ_w w², on the weights only,
            n the number of training examples; each update is then w → (1 − ηλ/n) w − η ∂C_0/∂w (eq. 93).
            The logged loss is C_0.
    """

    def __init__(
        self, cost: Cost, optimizer: OptimizerFactory, scheduler: SchedulerFactory | None = None, l2: float = 0.0
    ) -> None:
        super().__init__()
        self.automatic_optimization = False  # the loop over mini-batches is ours, in training_step
        self.cost = cost
        self.make_optimizer = optimizer
        self.make_scheduler = scheduler
        self.l2 = l2
        self.metric_names = ["loss", *self.task_metrics()]
        self.metrics = nn.ModuleDict()  # "train_loss", "train_acc", "val_loss", ...
        for stage in STAGES:
            self.metrics[f"{stage}_loss"] = MeanMetric()
            for name, metric in self.task_metrics().items():
                self.metrics[f"{stage}_{name}"] = metric
        self.val_history: list[dict[str, float]] = []  # val/* of every epoch, to report the best one

    @property
    def architecture(self) -> str:
        raise NotImplementedError

    def task_metrics(self) -> dict[str, Metric]:
        """Metrics of the outputs z^L against the targets y, besides the loss; a new set on each call."""
        return {}

    def configure_optimizers(self) -> torch.optim.Optimizer | dict:
        optimizer = self.make_optimizer(self._parameter_groups())
        if self.make_scheduler is None:
            return optimizer
        epochs, per_epoch = self.trainer.max_epochs, getattr(self.trainer.datamodule, "mini_batches_per_epoch", None)
        if not epochs or epochs < 1 or per_epoch is None:
            raise ConfigError(f"scheduler needs a known number of updates: set trainer.max_epochs (got {epochs})")
        total_steps = epochs * per_epoch
        warmup = getattr(self.make_scheduler, "keywords", {}).get("pct_start")
        if warmup is not None and warmup * total_steps <= 1:  # one-cycle's rise would take one update or none
            raise ConfigError(
                f"scheduler.pct_start={warmup} of the run's {total_steps} updates leaves the schedule's rise under "
                "2 updates: train longer (trainer.max_epochs, data.train_size, data.batch_size) or raise pct_start"
            )
        # Returned to Lightning so that its state is checkpointed; training_step advances it.
        return {"optimizer": optimizer, "lr_scheduler": self.make_scheduler(optimizer, total_steps=total_steps)}

    def _parameter_groups(self) -> list[dict]:
        """All parameters, the weights (tensors of 2 or more dimensions) decayed by λ/n when ``l2`` is set.

        Adding (λ/n) w to the gradient of the weights is the gradient of λ/2n Σ w², for any optimizer; for plain
        SGD it is network2.py's update (1 − ηλ/n) w − η ∂C_0/∂w exactly.
        """
        if not self.l2:
            return [{"params": list(self.parameters())}]
        if getattr(self.make_optimizer, "keywords", {}).get("weight_decay"):
            raise ConfigError("set either model.l2 (the book's λ, on weights only) or optimizer.weight_decay, not both")
        n = len(self.trainer.datamodule.train_data[1])
        weights = [p for p in self.parameters() if p.ndim > 1]
        others = [p for p in self.parameters() if p.ndim <= 1]
        return [{"params": weights, "weight_decay": self.l2 / n}, {"params": others, "weight_decay": 0.0}]

    def gradients(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Feed forward, compute the cost and fill every parameter's ``.grad`` with ∂C/∂parameter.

        Returns (z^L, C). Here autograd backpropagates (chapter 2); ``MLP`` can use the book's equations instead.
        """
        z = self(x)
        loss = self.cost(z, y)
        loss.backward()
        return z, loss

    def update_mini_batch(self, x: Tensor, y: Tensor, optimizer: torch.optim.Optimizer) -> tuple[Tensor, Tensor]:
        """One step of gradient descent on the mini-batch (x, y), as network.py's ``update_mini_batch``: ∇C by
        backpropagation (chapter 2), then the optimizer's step (w → w − η ∇C for plain SGD, eq. 20–21).

        Returns (z^L, C) of the mini-batch, before the step."""
        optimizer.zero_grad()
        if len(y):
            z, loss = self.gradients(x, y)
        else:  # data-parallel: this process's share of a last, small mini-batch is empty
            z, loss = self(x), torch.zeros((), device=self.device)
        if self.trainer.world_size > 1:
            self.average_gradients(len(y))
        optimizer.step()
        return z, loss

    def average_gradients(self, n: int) -> None:
        """Data-parallel training: replace each process's ∇C over its ``n`` examples of the mini-batch by ∇C over
        the whole (global) mini-batch, Σ_r n_r ∇C_r / Σ_r n_r, in one all-reduce of every gradient and ``n``;
        every process then makes the same update, the book's, from the same parameters."""
        params = [p for p in self.parameters() if p.requires_grad]
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([*(g.reshape(-1) for g in grads), torch.ones(1, device=self.device, dtype=grads[0].dtype)])
        flat.mul_(n)
        torch.distributed.all_reduce(flat)
        flat = flat[:-1] / flat[-1]
        for p, g in zip(params, flat.split([g.numel() for g in grads]), strict=True):
            if p.grad is None:
                p.grad = torch.empty_like(p)
            p.grad.copy_(g.view_as(p))  # in the gradient's own memory layout (channels-last for the CNN)

    def log_gradients(self) -> None:
        """Log what the latest mini-batch's gradients show (called once per Lightning step); nothing by default."""

    def on_fit_start(self) -> None:
        if getattr(self.trainer.precision_plugin, "scaler", None) is not None:
            raise ConfigError(
                f"trainer.precision={self.trainer.precision} is not supported: its loss scaling needs Lightning's "
                "own backward and step for every mini-batch; use 32-true or bf16-mixed"
            )

    def training_step(self, batch: MiniBatches, batch_idx: int) -> dict[str, Tensor]:
        # The updates go straight to the torch optimizer: Lightning's optimizer wrapper runs its hooks on every
        # step, which costs more than a mini-batch of 10 takes to train. What the wrapper would add for the
        # precisions allowed here is the step count (trainer.global_step), kept below as Lightning keeps it.
        optimizer = self.optimizers().optimizer
        scheduler = self.lr_schedulers()
        steps = self.trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
        zs, losses = [], []
        for x, y in batch.split():  # one gradient descent step per mini-batch (chapter 1, eq. 20–21)
            z, loss = self.update_mini_batch(x, y, optimizer)
            if scheduler is not None:
                scheduler.step()
            steps.increment_ready()
            steps.increment_completed()
            zs.append(z.detach())
            losses.append(loss.detach())
        mean_loss = self._accumulate("train", batch, zs, losses)
        self.log("train/loss_step", mean_loss, on_step=True, on_epoch=False, batch_size=1)
        self.log_gradients()
        # for the callbacks (on_train_batch_end's outputs): nndl.divergence judges the losses and outputs z^L
        return {"loss": mean_loss, "losses": torch.stack(losses), "z": torch.cat(zs)}

    def validation_step(self, batch: MiniBatches, batch_idx: int) -> None:
        self._evaluate("val", batch)

    def test_step(self, batch: MiniBatches, batch_idx: int) -> None:
        self._evaluate("test", batch)

    def _evaluate(self, stage: str, batch: MiniBatches) -> None:
        pairs = [(x, y) for x, y in batch.split() if len(y)]  # data-parallel: a share may be empty
        zs = [self(x) for x, _ in pairs]
        losses = [self.cost(z, y) for z, (_, y) in zip(zs, pairs, strict=True)]
        self._accumulate(stage, batch, zs, losses)

    def _accumulate(self, stage: str, batch: MiniBatches, zs: list[Tensor], losses: list[Tensor]) -> Tensor:
        """Add a step's mini-batches to the epoch's loss and task metrics, on the device; return their mean loss.

        One metric update per step rather than per mini-batch: an update costs about as much as a
        mini-batch of 10 takes to train.
        """
        if not zs:  # data-parallel evaluation: nothing of this step fell to this process
            return torch.zeros((), device=self.device)
        sizes = torch.tensor([len(z) for z in zs], device=self.device, dtype=torch.float32)
        loss = torch.stack(losses).float()
        self.metrics[f"{stage}_loss"].update(loss, weight=sizes)
        for name in self.metric_names[1:]:
            self.metrics[f"{stage}_{name}"].update(torch.cat(zs), batch.y)
        return (loss * sizes).sum() / sizes.sum()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """What a resumed run needs besides the weights and the optimizer: the validation history (the best epoch)
        and the random generators that dropout draws from."""
        checkpoint["nndl"] = {
            "val_history": self.val_history,
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("nndl", {})
        self.val_history = list(state.get("val_history", []))
        if "rng" in state:
            torch.set_rng_state(state["rng"])
        if state.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    def on_train_epoch_end(self) -> None:
        values = self._log_epoch("train")
        self.log("train/lr", self.optimizers().optimizer.param_groups[0]["lr"])  # at the epoch's end
        if not hasattr(self, "train_losses"):
            self.train_losses: list[float] = []
        self.train_losses.append(values["train/loss"])  # each epoch's: whether the run learned (nndl.report)

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
