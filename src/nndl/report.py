"""What a run reports: ``metrics.json``, its hyperparameters and final metrics for TensorBoard's HPARAMS tab, and
the lines on the console, for every way a run ends (``ok``, ``diverged``, ``interrupted``, ``failed``)."""

import json
import logging
import sys
from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from nndl.build import Run
from nndl.callbacks import EpochTimer
from nndl.divergence import Diverged
from nndl.interrupt import Interrupted
from nndl.models import Network

log = logging.getLogger(__name__)


def report_interrupted(run_dir: Path, err: Interrupted) -> None:
    """``metrics.json`` of an interrupted run: the signal, the epochs completed and the last checkpoint saved."""
    trainer: L.Trainer | None = getattr(err, "trainer", None)
    last = run_dir / "checkpoints" / "last.ckpt"
    report = {
        "status": "interrupted",
        "signal": err.name,
        "epochs": trainer.current_epoch if trainer else 0,
        "checkpoint": str(last) if last.is_file() else None,
        "train_time_s": train_time(trainer) if trainer else None,
    }
    report["reason"] = f"{err.name} after {report['epochs']} complete epoch(s)"
    run_dir.mkdir(parents=True, exist_ok=True)
    write_metrics(run_dir, report)
    print(
        f"\nInterrupted by {err.name} after {report['epochs']} complete epoch(s); last checkpoint: "
        f"{report['checkpoint'] or 'none'}. Run directory: {run_dir}",
        file=sys.stderr,
    )


def report_diverged(cfg: DictConfig, run: Run, err: Diverged, run_dir: Path) -> float:
    """A diverged run is not tested: it is marked ``diverged`` and gives the sweeper the worst value."""
    worst = float(cfg.monitor_worst)
    log_final(run, cfg, "diverged", {cfg.monitor: worst})
    report = {
        "status": "diverged",
        "reason": err.reason,
        "diverged_at_update": err.step,
        "epochs": run.trainer.current_epoch,
        "train_time_s": train_time(run.trainer),
        cfg.monitor: worst,
    }
    write_metrics(run_dir, report)
    log.warning(f"Diverged by update {err.step}: {err.reason}. The run stops here, marked diverged: {run_dir}")
    return worst


def log_final(run: Run, cfg: DictConfig, status: str, final: dict[str, float]) -> None:
    """The run's hyperparameters, its status and final metrics, for TensorBoard's HPARAMS tab."""
    run.logger.log_hyperparams(
        {**run_hparams(cfg, run.model, run.datamodule), "status": status},
        metrics={f"hp/{name.replace('/', '_')}": value for name, value in final.items()},
        step=run.trainer.global_step,
    )
    # Lightning wrote hparams.yaml at the first logged step, still empty, and never overwrites it: write it anew.
    (Path(run.logger.log_dir) / run.logger.NAME_HPARAMS_FILE).unlink(missing_ok=True)
    run.logger.finalize("success")  # flush the events and write hparams.yaml


def train_time(trainer: L.Trainer) -> float | None:
    timers = [callback for callback in trainer.callbacks if isinstance(callback, EpochTimer)]
    return timers[0].total_train_s if timers else None


def write_metrics(run_dir: Path, report: dict[str, Any]) -> None:
    (run_dir / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")


def run_hparams(cfg: DictConfig, model: Network, datamodule: L.LightningDataModule) -> dict[str, Any]:
    """The hyperparameters of a run, under the same keys for every model so that MLP and CNN runs compare."""
    choices = HydraConfig.get().runtime.choices
    return {
        "model": choices.get("model"),
        "architecture": model.architecture,
        "cost": choices.get("cost"),
        "activation": choices.get("activation"),
        "conv_activation": choices.get("activation@model.conv_activation") or "none",
        "optimizer": choices.get("optimizer"),
        "scheduler": choices.get("scheduler") or "none",
        "lr": cfg.optimizer.lr,
        "weight_decay": cfg.optimizer.get("weight_decay", 0.0),
        "batch_size": cfg.data.batch_size,
        "train_size": len(datamodule.train_data[1]),
        "init": cfg.model.get("init", "pytorch"),
        "max_epochs": cfg.trainer.max_epochs,
        "seed": cfg.seed,
        "experiment": choices.get("experiment") or "none",
        "book_accuracy": cfg.get("book_accuracy") or 0.0,
    }


def report_ok(cfg: DictConfig, run: Run, best: dict[str, Any], final: dict[str, float], best_path: str) -> None:
    """``metrics.json`` and HPARAMS of a run that trained and tested, and its final metrics on the console."""
    log_final(run, cfg, "ok", final)
    trainer = run.trainer
    report = {
        "status": "ok",
        "best_epoch": best["epoch"],
        "epochs": trainer.current_epoch,
        "train_time_s": train_time(trainer),
        "checkpoint": best_path,
        **final,
    }
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    write_metrics(run_dir, report)
    print(
        f"\nFinal metrics (best epoch {best['epoch'] + 1} of {trainer.current_epoch}, tested from "
        f"{best_path or 'the last weights'}):\n"
        + "\n".join(f"  {name:<10} {value:.4f}" for name, value in final.items())
        + f"\nRun directory: {run_dir}"
    )
