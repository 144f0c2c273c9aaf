"""Stop a run whose training has diverged, within a few steps, so that a sweep moves on to its next job.

A learning rate far too large (chapter 3: "if η is too large then the steps will be so large that they may
actually overshoot the minimum") shows in one of three ways, checked on the training losses of every Lightning
step (``Network.training_step`` returns the loss of each of its mini-batches):

- a mini-batch's loss is NaN or infinite;
- the step's mean loss rises to ``max_loss_ratio`` times the lowest step mean so far (the rule Lightning's
  learning-rate finder stops on, with a wider margin for the noise of small mini-batches);
- the network has collapsed: its outputs a^L are the same for every input (over the step's last ``tail``
  examples, no output varies by more than ``min_output_std``), so it can no longer learn. This is how the book's
  sigmoid networks diverge: with the quadratic cost and η = 100 the first update moves the weights by about a
  third of their norm and saturates every neuron; from then on every output is 0 or 1 whatever the image (their
  standard deviation over the examples 1e-8 to 2e-6), the gradient near 1e-4, the accuracy at chance — while the
  loss stays finite and below its starting value. Learning networks' outputs vary by 0.02 to 0.3 from the first
  step on (measured over the presets: chapters 1, 5 and 6, the CNN, the speedrun, the universality curve).
"""

import math
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
        max_loss_ratio: diverged when a step's mean loss exceeds this times the lowest step mean so far.
        min_output_std: collapsed when no output a^L_j has a standard deviation over the examples above this.
        tail: how many of the step's last examples that is judged on (those after its first updates).
    """

    def __init__(self, max_loss_ratio: float = 10.0, min_output_std: float = 1e-4, tail: int = 200) -> None:
        self.max_loss_ratio, self.min_output_std, self.tail = max_loss_ratio, min_output_std, tail
        self.lowest_loss = math.inf

    def state_dict(self) -> dict[str, float]:
        return {"lowest_loss": self.lowest_loss}  # checkpointed: a resumed run keeps judging against it

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        self.lowest_loss = state_dict["lowest_loss"]

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not isinstance(outputs, dict) or "losses" not in outputs:
            return
        losses = outputs["losses"].float().cpu()  # one copy from the device per Lightning step
        step = trainer.global_step
        if not torch.isfinite(losses).all():
            raise Diverged(f"the training loss is {losses[~torch.isfinite(losses)][0].item()}", step)
        loss = losses.mean().item()
        if loss > self.max_loss_ratio * self.lowest_loss:
            raise Diverged(
                f"the training loss rose to {loss:.4g}, over {self.max_loss_ratio:g} times its lowest "
                f"({self.lowest_loss:.4g})",
                step,
            )
        self.lowest_loss = min(self.lowest_loss, loss)
        z = outputs.get("z")
        if z is None or len(z) < 2:
            return
        spread = pl_module.cost.output(z[-self.tail :]).float().std(dim=0).max().item()
        if spread <= self.min_output_std:
            raise Diverged(
                f"the network has collapsed: its outputs are the same for every input (they vary by {spread:.1e} "
                "over the last examples); it can no longer learn: the learning rate is too large",
                step,
            )
