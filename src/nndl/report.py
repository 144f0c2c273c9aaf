"""What a run reports: ``metrics.json``, its hyperparameters and final metrics for TensorBoard's HPARAMS tab, and
the lines on the console, for every way a run ends (``ok``, ``diverged``, ``interrupted``, ``failed``)."""

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from nndl.build import Run
from nndl.callbacks import EpochTimer
from nndl.divergence import Diverged
from nndl.hparams import run_record, sweep_record, swept_hparams
from nndl.interrupt import Interrupted
from nndl.models import Network
from nndl.outcome import no_learning, worst_value
from nndl.run_names import swept_keys
from nndl.tensorboard_hparams import write_tensorboard

log = logging.getLogger(__name__)
CONFIG_TREE = "config_tree.txt"


def show_config(cfg: DictConfig, run_dir: Path) -> None:
    """Print the composed config once, as a tree (Rich), and keep the same text in ``run_dir/config_tree.txt``
    (``.hydra/config.yaml`` holds it as YAML)."""
    from rich.console import Console
    from rich.tree import Tree

    tree = Tree(f"config of {run_dir}", guide_style="dim")
    for group, node in cfg.items():
        if isinstance(node, DictConfig):
            branch = tree.add(f"[bold]{group}[/bold]")
            branch.add(OmegaConf.to_yaml(node, resolve=False).rstrip())
        else:
            tree.add(f"[bold]{group}[/bold]: {node}")
    Console(stderr=False, highlight=False).print(tree)
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / CONFIG_TREE).open("w") as f:
        Console(file=f, width=120, color_system=None, highlight=False).print(tree)


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
    worst = worst_value(cfg)
    log_final(run, cfg, "diverged", {cfg.monitor: worst})
    report = {
        "status": "diverged",
        "reason": err.reason,
        "diverged_at_update": err.step,
        "epochs": run.trainer.current_epoch,
        "train_time_s": train_time(run.trainer),
        "wall_time_s": wall_time(run_dir),
        cfg.monitor: worst,
    }
    write_metrics(run_dir, report)
    log.warning(f"Diverged by update {err.step}: {err.reason}. The run stops here, marked diverged: {run_dir}")
    return worst


def log_final(
    run: Run, cfg: DictConfig, status: str, final: dict[str, float], step: int | None = None
) -> dict[str, Any]:
    """The run's hyperparameters, its status and final metrics, in every logger (TensorBoard's HPARAMS tab, CSV's
    and TensorBoard's ``hparams.yaml``, MLflow's params); returns what ``hparams.yaml`` holds.

    In a sweep, TensorBoard's record holds only what the sweep varies, with the experiment's configuration: the
    swept keys first, then the final metrics, the monitored one first (``nndl.tensorboard_hparams``). ``step``: the
    epoch the final metrics belong to (the best one), on the epoch axis of the other epoch-level scalars."""
    hydra = HydraConfig.get()
    run_dir = Path(hydra.runtime.output_dir)
    full = {**run_hparams(cfg, run.model, run.datamodule), "status": status}
    metrics = {f"hp/{name.replace('/', '_')}": value for name, value in _monitor_first(final, cfg.monitor).items()}
    step = max(run.trainer.current_epoch - 1, 0) if step is None else step
    swept = None
    if hydra.mode == RunMode.MULTIRUN:
        params = OmegaConf.select(hydra, "sweeper.params", default=None)
        swept = swept_keys(hydra.sweep.dir, OmegaConf.to_container(params) if params is not None else None)
    for logger in run.trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.hparams.update(full)
            if swept is None:  # a single run: its own keys; TensorBoard lists every run's keys, differing first
                record, experiment = full, None
            else:
                record = {**sweep_record(cfg, full, swept), "status": status}
                primary, derived = swept_hparams(cfg, swept)
                experiment = (primary, [*derived, "status"])
            start = _start_time(run_dir)
            write_tensorboard(
                logger.experiment, record, metrics, status=status, run_name=run_dir.name, step=step,
                start_time=start, experiment=experiment, tags=[str(tag) for tag in cfg.get("tags") or []],
            )  # fmt: skip
            # Lightning wrote hparams.yaml at the first logged step, still empty, and never overwrites it.
            (Path(logger.log_dir) / logger.NAME_HPARAMS_FILE).unlink(missing_ok=True)
        else:
            logger.log_hyperparams(full)
            logger.log_metrics(metrics, step=step)
        logger.finalize("success")  # flush the events, write hparams.yaml (and metrics.csv)
    return full


def _monitor_first(final: dict[str, float], monitor: str) -> dict[str, float]:
    """The final metrics with ``monitor`` first, then its test counterpart, then the rest in order."""
    test = monitor.replace("val/", "test/", 1)
    order = [name for name in (monitor, test) if name in final]
    return {**{name: final[name] for name in order}, **{k: v for k, v in final.items() if k not in order}}


def _start_time(run_dir: Path) -> float | None:
    """When the job started: Hydra writes the run's config before the job runs."""
    config = run_dir / ".hydra" / "config.yaml"
    return config.stat().st_mtime if config.is_file() else None


def wall_time(run_dir: Path) -> float | None:
    """Seconds from the job's start (its config written) to now: start-up, data, fit, test; never below the
    training time, which it contains."""
    start = _start_time(run_dir)
    return round(time.time() - start, 1) if start is not None else None


def train_time(trainer: L.Trainer) -> float | None:
    timers = [callback for callback in trainer.callbacks if isinstance(callback, EpochTimer)]
    return timers[0].total_train_s if timers else None


def write_metrics(run_dir: Path, report: dict[str, Any]) -> None:
    # written whole or not at all: a kill in the middle leaves the previous report, never half of one
    partial = run_dir / f".metrics.json.{os.getpid()}"
    partial.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(partial, run_dir / "metrics.json")


def run_hparams(cfg: DictConfig, model: Network, datamodule: L.LightningDataModule) -> dict[str, Any]:
    """The hyperparameters of a run that mean something for it, under the same keys for every model, so that
    MLP, CNN and curve runs compare (``nndl.hparams.run_record``)."""
    train_data = getattr(datamodule, "train_data", None)
    train_size = len(train_data[1]) if train_data is not None else None
    return run_record(cfg, model, train_size, HydraConfig.get().runtime.choices)


def report_ok(cfg: DictConfig, run: Run, best: dict[str, Any], final: dict[str, float], best_path: str) -> None:
    """``metrics.json`` and HPARAMS of a run that trained and tested, and its final metrics on the console.

    Epochs count from 0 everywhere (``best_epoch``, the summary, TensorBoard's epoch axis), as Lightning and the
    checkpoints' names (``epoch002.ckpt``) count them; ``epochs`` is how many ran. A run that trained without
    learning (``no_learning``) is marked ``no_learning``, with the reason."""
    final = {name: value for name, value in final.items() if name not in ("epoch", "step")}  # the axis, not metrics
    reason = no_learning(cfg, run, best)
    status = "no_learning" if reason else "ok"
    hparams = log_final(run, cfg, status, final, step=best["epoch"])
    trainer = run.trainer
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    report = {
        "status": status,
        **({"reason": reason} if reason else {}),
        "best_epoch": best["epoch"],
        "epochs": trainer.current_epoch,
        "train_time_s": train_time(trainer),
        "wall_time_s": wall_time(run_dir),
        "params": hparams.get("params"),
        **({"tags": list(cfg.tags)} if cfg.get("tags") else {}),
        "checkpoint": best_path,
        **final,
    }
    write_metrics(run_dir, report)
    epochs = trainer.current_epoch
    print(
        f"\nFinal metrics (best epoch {best['epoch']} of epochs 0–{epochs - 1}, counted from 0 as the checkpoints; "
        f"tested from {best_path or 'the last weights'}):\n"
        + "\n".join(f"  {name:<10} {value:.4f}" for name, value in final.items())
        + (f"\nNo learning: {reason}." if reason else "")
        + f"\nRun directory: {run_dir}"
    )
