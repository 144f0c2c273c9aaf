"""Stop a run whose training has diverged, within a Lightning step, so that a sweep moves on to its next job.

A learning rate far too large (chapter 3: "if η is too large then the steps will be so large that they may
actually overshoot the minimum") shows in one of three ways, checked on the training losses and outputs of every
Lightning step (``Network.training_step`` returns the loss of each of its mini-batches):

- a mini-batch's loss is NaN or infinite;
- the loss rises to ``max_loss_ratio`` times the untrained network's (its first mini-batch's), judged on the mean
  of the step's last ``tail_batches`` mini-batch losses, so that a first step that blows up is caught at its end.
  The reference is the untrained loss, not the lowest so far: against the lowest, a late spike of Adam's in a run
  that learns would look like divergence;
- the network has collapsed: over the step's last ``tail`` examples no output a^L_j varies by more than
  ``min_output_std``, so the outputs no longer depend on the input and it can no longer learn. This is how the
  book's sigmoid networks diverge: the first update saturates every neuron, and from then on every output is 0 or
  1 whatever the image, while the loss stays finite and below its start.

The defaults (4×, 1e-4) lie far from both the learning and the diverging runs measured (docs/sweeps.md).
"""

from typing import Any

import lightning as L
import torch


class Diverged(Exception):
    """Raised inside ``Trainer.fit`` by ``DivergenceGuard``; ``nndl.train`` marks the run ``diverged``."""

    def __init__(self, reason: str, step: int) -> None:
        super().__init__(f"training diverged by update {step}: {reason}")
        self.reason, self.step = reason, step


class DivergenceGuard(L.Callback):
    """Raise ``Diverged`` as soon as a Lightning step's training losses or outputs show the run has diverged.

    Args:
        max_loss_ratio: diverged when the step's last mini-batch losses average more than this times the loss of
            the run's first mini-batch.
        min_output_std: collapsed when no output a^L_j has a standard deviation over the examples above this.
        tail: how many of the step's last examples the collapse is judged on (those after its first updates).
        tail_batches: how many of the step's last mini-batch losses the rise is judged on.
    """

    def __init__(
        self, max_loss_ratio: float = 4.0, min_output_std: float = 1e-4, tail: int = 200, tail_batches: int = 20
    ) -> None:
        self.max_loss_ratio, self.min_output_std = max_loss_ratio, min_output_std
        self.tail, self.tail_batches = tail, tail_batches
        self.initial_loss: float | None = None

    def state_dict(self) -> dict[str, float | None]:
        return {"initial_loss": self.initial_loss}  # checkpointed: a resumed run keeps judging against it

    def load_state_dict(self, state_dict: dict[str, float | None]) -> None:
        self.initial_loss = state_dict["initial_loss"]

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not isinstance(outputs, dict) or "losses" not in outputs:
            return
        reason = self._judge(pl_module, outputs)
        # data-parallel: every process stops together, or none (no process is left waiting for the others)
        anyone = trainer.world_size > 1 and trainer.strategy.reduce_boolean_decision(reason is not None, all=False)
        if anyone and reason is None:
            reason = "another process's training diverged"
        if reason is not None:
            raise Diverged(reason, trainer.global_step)

    def _judge(self, pl_module: L.LightningModule, outputs: dict) -> str | None:
        """Why this Lightning step's losses and outputs show a diverged run, or ``None``."""
        losses = outputs["losses"].float().cpu()  # one copy from the device per Lightning step
        if not torch.isfinite(losses).all():
            return f"the training loss is {losses[~torch.isfinite(losses)][0].item()}"
        if self.initial_loss is None:
            self.initial_loss = losses[0].item()
        loss = losses[-self.tail_batches :].mean().item()
        if loss > self.max_loss_ratio * self.initial_loss:
            return (
                f"the training loss rose to {loss:.4g}, over {self.max_loss_ratio:g} times the untrained "
                f"network's ({self.initial_loss:.4g}): the learning rate is too large"
            )
        z = outputs.get("z")
        if z is None or len(z) < 2:
            return None
        spread = pl_module.cost.output(z[-self.tail :]).float().std(dim=0).max().item()
        if spread <= self.min_output_std:
            return (
                f"the network has collapsed: its outputs are the same for every input (they vary by {spread:.1e} "
                "over the last examples); it can no longer learn: the learning rate is too large"
            )
        return None
