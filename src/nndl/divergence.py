"""Stop a run whose training has diverged, within a few steps, so that a sweep moves on to its next job.

A learning rate far too large (chapter 3: "if η is too large then the steps will be so large that they may
actually overshoot the minimum") shows in one of three ways, checked at every Lightning step:

- the training loss becomes NaN or infinite;
- the training loss rises to ``max_loss_ratio`` times the lowest it has been (the rule Lightning's learning-rate
  finder stops on, with a wider margin for the noise of small mini-batches);
- one update moves the weights by more than ``max_update_ratio`` of their norm. This is what catches the sigmoid
  networks of the book: with the quadratic cost and η = 100 the first update moves the weights by about a third
  of their norm (29% with data.train_size=2000, 43% on the full set) and saturates every neuron, after which the
  loss sits at 0.5, finite, with gradients near 1e-4 and accuracy at chance. Healthy runs of the lab move them by
  under 6% in their largest update (measured over the presets, from chapter 1's η = 3.0 to the CNN and the
  speedrun); a rule of thumb puts a good ratio near 1e-3.

The update ratio is measured on the torch optimizer's own step hooks (every update for the first
``warmup_updates``, then every ``check_every``-th), kept on the device and read once per Lightning step.
"""

import math

import lightning as L
import torch
from torch import Tensor


class Diverged(Exception):
    """Raised inside ``Trainer.fit`` by ``DivergenceGuard``; ``nndl.train`` marks the run ``diverged``."""

    def __init__(self, reason: str, step: int) -> None:
        super().__init__(f"training diverged at update {step}: {reason}")
        self.reason, self.step = reason, step


class DivergenceGuard(L.Callback):
    """Raise ``Diverged`` as soon as the training loss or the size of an update shows the run has diverged.

    Args:
        max_loss_ratio: diverged when a Lightning step's mean training loss exceeds this times the lowest so far.
        max_update_ratio: diverged when an update's ‖Δw‖ exceeds this fraction of ‖w‖ (all parameters together).
        warmup_updates: measure every one of the first updates, where a too large step size shows first.
        check_every: after those, measure every n-th update (a measurement copies the parameters).
    """

    def __init__(
        self,
        max_loss_ratio: float = 10.0,
        max_update_ratio: float = 0.2,
        warmup_updates: int = 50,
        check_every: int = 10,
    ) -> None:
        self.max_loss_ratio, self.max_update_ratio = max_loss_ratio, max_update_ratio
        self.warmup_updates, self.check_every = warmup_updates, check_every
        self.lowest_loss = math.inf
        self._updates = 0
        self._before: list[Tensor] | None = None
        self._ratios: list[tuple[int, Tensor]] = []  # (update, ‖Δw‖/‖w‖ on the device) since the last check
        self._hooks: list = []

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        optimizer = trainer.optimizers[0]
        optimizer = getattr(optimizer, "optimizer", optimizer)  # the torch optimizer that Network steps
        params = [p for group in optimizer.param_groups for p in group["params"]]
        self._updates = trainer.global_step

        def before(*_: object) -> None:
            self._updates += 1
            if self._updates <= self.warmup_updates or self._updates % self.check_every == 0:
                self._before = [p.detach().clone() for p in params]

        def after(*_: object) -> None:
            if self._before is None:
                return
            change = _norm([p.detach() - b for p, b in zip(params, self._before, strict=True)])
            size = _norm(self._before)
            self._ratios.append((self._updates, (change / size.clamp_min(1e-12)).detach()))
            self._before = None

        self._hooks = [optimizer.register_step_pre_hook(before), optimizer.register_step_post_hook(after)]

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: object, batch: object, batch_idx: int
    ) -> None:
        if self._ratios:
            updates, ratios = zip(*self._ratios, strict=True)
            self._ratios = []
            ratios = torch.stack(ratios).tolist()  # one copy from the device per Lightning step
            for update, ratio in zip(updates, ratios, strict=True):
                if not math.isfinite(ratio) or ratio > self.max_update_ratio:
                    raise Diverged(
                        f"the update moved the weights by {ratio:.0%} of their norm (the limit is "
                        f"{self.max_update_ratio:.0%}): the learning rate is too large",
                        update,
                    )
        step = trainer.global_step
        loss = trainer.callback_metrics.get("train/loss_step")
        if loss is None:
            return
        loss = float(loss)
        if not math.isfinite(loss):
            raise Diverged(f"the training loss is {loss}", step)
        if loss > self.max_loss_ratio * self.lowest_loss:
            raise Diverged(
                f"the training loss rose to {loss:.4g}, over {self.max_loss_ratio:g} times its lowest "
                f"({self.lowest_loss:.4g})",
                step,
            )
        self.lowest_loss = min(self.lowest_loss, loss)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._remove_hooks()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._remove_hooks()

    def _remove_hooks(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []


def _norm(tensors: list[Tensor]) -> Tensor:
    """The norm of all the tensors together, as of one vector."""
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t) for t in tensors]))
