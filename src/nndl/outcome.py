"""How a run's end is judged for its records and for a sweeper: whether it learned (``no_learning``), and the value a
run without a result (diverged, failed) gives the sweeper in place of its best ``monitor`` (``worst_value``)."""

import math
from typing import Any

from omegaconf import DictConfig

from nndl.build import Run

CHANCE = 0.12  # best val/acc at or below this: chance for 10 balanced digits (0.1), give or take the noise


def worst_value(cfg: DictConfig) -> float:
    """The worst value ``cfg.monitor`` can take when ``cfg.monitor_mode`` (max, min) is sought: what a diverged or
    failed run returns, so that every sweeper carries on and ranks it last.

    An accuracy's is its floor, 0: a finite number keeps ``metrics.json`` plain JSON (``json.dumps`` writes
    ``-Infinity``, which JavaScript refuses and jq turns into -1.8e308) and TensorBoard's HPARAMS axis in [0, 1].
    Any other monitor gets -inf when maximised and +inf when minimised (a loss has no ceiling): Optuna stores and
    ranks ±inf (nan would fail the trial), Hydra's basic sweeper only collects the values.
    """
    if cfg.monitor_mode == "min":
        return math.inf
    return 0.0 if str(cfg.monitor).rsplit("/", 1)[-1] == "acc" else -math.inf


def no_learning(cfg: DictConfig, run: Run, best: dict[str, Any]) -> str | None:
    """Why a run that trained did not learn, or ``None``: its best val/acc at chance (``CHANCE``), or its training
    loss ending above where it started (the untrained network's first mini-batch, as the divergence guard
    judges, else the first epoch's)."""
    if "val/acc" in best and best["val/acc"] <= CHANCE:
        return f"best val/acc {best['val/acc']:.4f} is at chance (≤ {CHANCE} for 10 digits)"
    losses = getattr(run.model, "train_losses", [])
    guards = [c for c in run.trainer.callbacks if isinstance(getattr(c, "initial_loss", None), float)]
    start = guards[0].initial_loss if guards else (losses[0] if losses else None)
    if losses and start is not None and losses[-1] > start:
        return f"the training loss ended at {losses[-1]:.4g}, above its start ({start:.4g})"
    return None
