"""The SGD loop every network of the lab shares — chapter 1's ``SGD`` and ``update_mini_batch`` live here — with
the cost, the optimizer, L2 and an optional learning-rate schedule.

A model subclasses ``Network`` (through ``Classifier`` for the digit classifiers) and defines
``forward(x) -> z^L`` (the output layer's weighted input) and ``architecture`` (a short description for the
run's hyperparameters); the cost turns z^L into a^L and C. What is logged and kept of each epoch is
``nndl.models.records``.

The training loop is the book's ``SGD``: one gradient step per mini-batch. Lightning hands ``training_step``
consecutive mini-batches of the epoch's shuffled order (those of ``data.examples_per_step`` examples, as
``MiniBatches``) and the step updates the weights once per mini-batch, as ``network.py``'s
``update_mini_batch`` does. Taking many mini-batches per Lightning step spreads Lightning's own per-step cost
over them: with the book's mini-batches of 10, that cost would otherwise exceed the arithmetic.
"""

import logging
from collections.abc import Callable, Iterable
from typing import Protocol

import torch
from torch import Tensor, nn

from nndl.costs import Cost
from nndl.data.batches import MiniBatches
from nndl.errors import ConfigError
from nndl.models.records import EpochRecords

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]  # (optimizer, total_steps=...) -> scheduler
Activation = Callable[[], nn.Module]
# Constructor arguments that are objects built from their own config groups, not hyperparameters to save.
BUILT_ARGUMENTS = ["cost", "optimizer", "scheduler", "activation", "conv_activation"]

log = logging.getLogger(__name__)


class FastPath(Protocol):
    """An update of the whole network on a mini-batch written out, in place (``nndl.fast_backprop``,
    ``nndl.fast_conv``): what ``model.backprop=fast`` takes where it reproduces autograd and the optimizer."""

    SUMMARY: str

    def update(self, x: Tensor, y: Tensor, optimizer: torch.optim.Optimizer) -> Tensor: ...

    def expose_gradients(self) -> None: ...


class Network(EpochRecords):
    """A network trained by mini-batch gradient descent on a cost from ``nndl.costs``.

    Logs, besides the epoch records of ``EpochRecords``, ``train/loss_step``: the training loss within an epoch
    (the mean over each Lightning step's mini-batches).

    Args:
        cost: one of ``nndl.costs`` (conf/cost).
        optimizer: called with the parameters, returns the optimizer (conf/optimizer, a Hydra partial).
        scheduler: ``None`` keeps the learning rate fixed, as the book does; else called with the optimizer and
            ``total_steps`` (the run's number of mini-batch updates), returns a learning-rate schedule that
            advances after every update (conf/scheduler, e.g. one-cycle).
        l2: λ of the book's L2 regularisation (chapter 3, eq. 87): C = C_0 + λ/2n Σ_w w², on the weights only,
            n the number of training examples; each update is then w → (1 − ηλ/n) w − η ∂C_0/∂w (eq. 93).
            The logged loss is C_0.

    L2 and a schedule need to know the training data: hand it over with ``set_training_set`` before training.
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
        self.n_train: int | None = None  # set_training_set: the book's n
        self.updates_per_epoch: int | None = None
        self.backprop = "autograd"  # models with a fast path take "fast" (model.backprop)
        self._fast: FastPath | None = None  # the fast path of the optimizer it was set up for, if it applies
        self._fast_for: torch.optim.Optimizer | None = None

    @property
    def architecture(self) -> str:
        raise NotImplementedError

    def set_training_set(self, n: int, updates_per_epoch: int) -> None:
        """What training needs to know of the data, before ``fit``: ``n``, the number of training examples (L2's
        λ/n), and ``updates_per_epoch``, the mini-batches of an epoch (× ``trainer.max_epochs``: a schedule's
        length). ``nndl.build.build_run`` hands over the data module's ``n_train`` and ``mini_batches_per_epoch``."""
        self.n_train, self.updates_per_epoch = n, updates_per_epoch

    def configure_optimizers(self) -> torch.optim.Optimizer | dict:
        optimizer = self.make_optimizer(self._parameter_groups())
        if self.l2 and optimizer.defaults.get("weight_decay"):  # the optimizer's own decay, on every parameter
            raise ConfigError("set either model.l2 (the book's λ, on weights only) or optimizer.weight_decay, not both")
        if self.make_scheduler is None:
            return optimizer
        epochs = self.trainer.max_epochs
        if not epochs or epochs < 1:
            raise ConfigError(f"scheduler needs a known number of updates: set trainer.max_epochs (got {epochs})")
        total_steps = epochs * self._training_set("updates_per_epoch", "a learning-rate schedule")
        # Returned to Lightning so that its state is checkpointed; training_step advances it.
        return {"optimizer": optimizer, "lr_scheduler": self.make_scheduler(optimizer, total_steps=total_steps)}

    def _parameter_groups(self) -> list[dict]:
        """All parameters, the weights (tensors of 2 or more dimensions) decayed by λ/n when ``l2`` is set.

        Adding (λ/n) w to the gradient of the weights is the gradient of λ/2n Σ w², for any optimizer; for plain
        SGD it is network2.py's update (1 − ηλ/n) w − η ∂C_0/∂w exactly.
        """
        if not self.l2:
            return [{"params": list(self.parameters())}]
        n = self._training_set("n_train", "model.l2")
        weights = [p for p in self.parameters() if p.ndim > 1]
        others = [p for p in self.parameters() if p.ndim <= 1]
        return [{"params": weights, "weight_decay": self.l2 / n}, {"params": others, "weight_decay": 0.0}]

    def _training_set(self, name: str, needed_by: str) -> int:
        """``n_train`` or ``updates_per_epoch``; a clear error when ``set_training_set`` was not called."""
        value = getattr(self, name)
        if value is None:
            raise RuntimeError(f"{needed_by} needs the training set's size: call set_training_set() before fitting")
        return value

    def gradients(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Feed forward, compute the cost and fill every parameter's ``.grad`` with ∂C/∂parameter.

        Returns (z^L, C). Here autograd backpropagates (chapter 2); ``MLP`` can use the book's equations instead.
        """
        z = self(x)
        loss = self.cost(z, y)
        loss.backward()
        return z, loss

    def update_mini_batch(self, x: Tensor, y: Tensor, optimizer: torch.optim.Optimizer) -> Tensor:
        """One step of gradient descent on the mini-batch (x, y), as network.py's ``update_mini_batch``: ∇C by
        backpropagation (chapter 2), then the optimizer's step (w → w − η ∇C for plain SGD, eq. 20–21). With
        ``model.backprop=fast``, where the model's fast path reproduces that exactly, the fast path makes it.

        Returns z^L of the mini-batch, before the step (its cost is computed from it, a step at a time)."""
        if optimizer is not self._fast_for:
            self._set_up_fast_path(optimizer)
        if self._fast is not None:
            return self._fast.update(x, y, optimizer)
        optimizer.zero_grad()
        if len(y):
            z, _ = self.gradients(x, y)
        else:  # data-parallel: this process's share of a last, small mini-batch is empty
            z = self(x)
        if self.trainer.world_size > 1:
            self.average_gradients(len(y))
        optimizer.step()
        return z

    def fast_path(self, optimizer: torch.optim.Optimizer, world_size: int, precision: str | None) -> FastPath | str:
        """The model's fast path for this optimizer, or why it does not apply; a model without one says so."""
        return f"{type(self).__name__} has none"

    def _set_up_fast_path(self, optimizer: torch.optim.Optimizer) -> None:
        """Decide, once per optimizer, whether the fast path applies; log which path the run takes and why."""
        self._fast_for, self._fast = optimizer, None
        if self.backprop != "fast":
            return
        trainer = self._trainer
        world_size = trainer.world_size if trainer is not None else 1
        fast = self.fast_path(optimizer, world_size, str(trainer.precision) if trainer is not None else None)
        if isinstance(fast, str):
            log.info(f"model.backprop=fast does not apply ({fast}): autograd and the torch optimizer")
        else:
            self._fast = fast
            # The fast path makes the optimizer's steps; the flag torch's step sets, so that a learning-rate schedule
            # does not warn that it is stepped before the optimizer.
            optimizer._opt_called = True  # type: ignore[attr-defined]
            log.info(f"model.backprop=fast: {fast.SUMMARY}")

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

    def mini_batch_costs(self, zs: list[Tensor], y: Tensor) -> Tensor:
        """The cost C of each mini-batch (eq. 6: the mean of C_x over its examples) from its outputs ``zs`` and
        the step's labels ``y``: one computation for the whole step instead of one per mini-batch. An empty
        mini-batch (a data-parallel share) costs 0."""
        sizes = torch.tensor([len(z) for z in zs], device=y.device)
        mini_batch = torch.repeat_interleave(torch.arange(len(zs), device=y.device), sizes)  # of each example
        costs = self.cost.per_example(torch.cat(zs), y)
        return costs.new_zeros(len(zs)).index_add_(0, mini_batch, costs) / sizes.clamp(min=1)

    def training_step(self, batch: MiniBatches, batch_idx: int) -> dict[str, Tensor]:
        # The updates go straight to the torch optimizer: Lightning's optimizer wrapper runs its hooks on every
        # step, which costs more than a mini-batch of 10 takes to train. What the wrapper would add for the
        # precisions allowed here is the step count (trainer.global_step), kept below as Lightning keeps it.
        optimizer = self.optimizers().optimizer
        scheduler = self.lr_schedulers()
        steps = self.trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
        zs = []
        for x, y in batch.split():  # one gradient descent step per mini-batch (chapter 1, eq. 20–21)
            zs.append(self.update_mini_batch(x, y, optimizer).detach())
            if scheduler is not None:
                scheduler.step()
            steps.increment_ready()
            steps.increment_completed()
        losses = self.mini_batch_costs(zs, batch.y)
        mean_loss = self._accumulate("train", batch, zs, losses)
        self.log("train/loss_step", mean_loss, on_step=True, on_epoch=False, batch_size=1)
        if self._fast is not None:
            self._fast.expose_gradients()  # .grad of every parameter: the last mini-batch's ∂C/∂w, ∂C/∂b
        self.log_gradients()
        # for the callbacks (on_train_batch_end's outputs): nndl.divergence judges the losses and outputs z^L
        return {"loss": mean_loss, "losses": losses, "z": torch.cat(zs)}

    def validation_step(self, batch: MiniBatches, batch_idx: int) -> None:
        self._evaluate("val", batch)

    def test_step(self, batch: MiniBatches, batch_idx: int) -> None:
        self._evaluate("test", batch)

    def _evaluate(self, stage: str, batch: MiniBatches) -> None:
        pairs = [(x, y) for x, y in batch.split() if len(y)]  # data-parallel: a share may be empty
        zs = [self(x) for x, _ in pairs]
        self._accumulate(stage, batch, zs, self.mini_batch_costs(zs, batch.y) if zs else torch.zeros(0))
