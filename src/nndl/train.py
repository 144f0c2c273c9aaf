"""One run of the lab: compose → seed → data, model, trainer → fit → test the best checkpoint → report.

``scripts/train.py`` calls ``train(cfg)`` under ``@hydra.main``; every object comes from its config group with
``hydra.utils.instantiate``, so this file reads as the recipe and ``conf/`` holds the ingredients.
"""

import json
import logging
import os
import signal
import sys
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig

from nndl.callbacks import EpochTimer
from nndl.data import MNISTDataModule
from nndl.divergence import Diverged
from nndl.errors import ConfigError, NNDLError
from nndl.interrupt import Interrupted, StopOnSignal, interruptible
from nndl.models import Classifier, Network
from nndl.precision import resolve_precision
from nndl.summary import SweepSummary
from nndl.validate import check_config

log = logging.getLogger(__name__)


@dataclass
class Run:
    """Everything one run trains with, built from its config."""

    datamodule: L.LightningDataModule
    model: Network
    trainer: L.Trainer
    logger: TensorBoardLogger


def main(cfg: DictConfig) -> float:
    """One job of ``scripts/train.py``: ``train(cfg)``, with its end recorded whatever it is.

    Every run that ends other than ``ok`` or ``diverged`` says so in its ``metrics.json``:

    - ``failed``: a bad value or file (one line on stderr, exit status 1) or any other error (its traceback); the
      traceback is kept in ``traceback.txt`` either way. In a sweep (``-m``) the failed job returns the worst value instead, as a diverged run
      does, so that the sweep goes on (an Optuna search too); ``nndl.summary.SweepSummary`` names it at the end.
    - ``interrupted``: SIGTERM or SIGINT (``nndl.interrupt``), with the epochs completed and the last checkpoint;
      the script exits with 143 or 130, and a sweep stops there, its summary listing the jobs not started.
    """
    hydra = HydraConfig.get()
    run_dir = Path(hydra.runtime.output_dir)
    multirun = hydra.mode == RunMode.MULTIRUN
    try:
        with interruptible():
            return train(cfg)
    except Interrupted as err:
        _report_interrupted(run_dir, err)
        if multirun:
            SweepSummary.report(Path(hydra.sweep.dir))
        sys.exit(err.exit_status)
    except Exception as err:
        error = str(err) if isinstance(err, NNDLError) else f"{type(err).__name__}: {err}"
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "traceback.txt").write_text(traceback.format_exc())
        _write_metrics(run_dir, {"status": "failed", "error": error})
        if not multirun:
            if isinstance(err, NNDLError):
                print(f"error: {err}", file=sys.stderr)
                sys.exit(1)
            raise
        print(f"error: job {hydra.job.num} failed: {error}", file=sys.stderr)
        return float(cfg.monitor_worst)  # as a diverged run: every sweeper carries on, the summary tells them apart


def _report_interrupted(run_dir: Path, err: Interrupted) -> None:
    """``metrics.json`` of an interrupted run: the signal, the epochs completed and the last checkpoint saved."""
    trainer: L.Trainer | None = getattr(err, "trainer", None)
    last = run_dir / "checkpoints" / "last.ckpt"
    report = {
        "status": "interrupted",
        "signal": err.name,
        "epochs": trainer.current_epoch if trainer else 0,
        "checkpoint": str(last) if last.is_file() else None,
        "train_time_s": _train_time(trainer) if trainer else None,
    }
    report["reason"] = f"{err.name} after {report['epochs']} complete epoch(s)"
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_metrics(run_dir, report)
    print(
        f"\nInterrupted by {err.name} after {report['epochs']} complete epoch(s); last checkpoint: "
        f"{report['checkpoint'] or 'none'}. Run directory: {run_dir}",
        file=sys.stderr,
    )


def build_run(cfg: DictConfig) -> Run:
    """Seed, then build the data (checked and read before anything else), the model and the trainer."""
    quiet_library_noise()
    _set_threads(cfg.get("threads"))
    L.seed_everything(cfg.seed, workers=True)

    datamodule = build(cfg.data)
    datamodule.prepare_data()  # bad or missing files fail here, before anything is built
    datamodule.setup("fit")

    model = build_model(cfg)
    if isinstance(model, Classifier) != isinstance(datamodule, MNISTDataModule):
        choices = HydraConfig.get().runtime.choices
        raise ConfigError(
            f"model={choices.get('model')} cannot train on data={choices.get('data')}: the digit classifiers "
            "(model=mlp, model=cnn) train on data=mnist, model=curve on data=function"
        )
    logger = instantiate(cfg.logger)
    callbacks = [instantiate(callback) for callback in cfg.callbacks.values()] + [StopOnSignal()]
    progress_bar = cfg.trainer.enable_progress_bar
    precision, why = resolve_precision(cfg.trainer.precision, cfg.trainer.accelerator)  # precision=auto: bf16 if native
    log.info(why)
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        precision=precision,
        logger=logger,
        callbacks=callbacks,
        enable_progress_bar=sys.stderr.isatty() if progress_bar is None else progress_bar,
    )
    return Run(datamodule, model, trainer, logger)


def train(cfg: DictConfig) -> float:
    """Train and test one configuration; return its best value of ``cfg.monitor`` (what a sweeper optimises).

    The best epoch is the one with the best ``monitor`` on the validation set (``val/acc`` by default): its
    checkpoint is tested, and its validation metrics with the test metrics are the run's final metrics, shown in
    TensorBoard's HPARAMS tab as ``hp/val_acc``, ``hp/test_acc``, ... next to the run's hyperparameters.
    """
    check_config(cfg)  # every value in range, before any data is read
    run = build_run(cfg)
    datamodule, model, trainer = run.datamodule, run.model, run.trainer
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        trainer.fit(model, datamodule=datamodule)
        best_path = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        test = trainer.test(model, datamodule=datamodule, ckpt_path=best_path or None, verbose=False)[0]
    except Diverged as err:
        return _report_diverged(cfg, run, err, run_dir)
    except (Interrupted, SIGTERMException) as err:  # Lightning's own, should it stop the loop before StopOnSignal
        interrupted = err if isinstance(err, Interrupted) else Interrupted(signal.SIGTERM)
        interrupted.trainer = trainer  # for main's report: the epochs completed
        raise interrupted from None
    pick = max if cfg.monitor_mode == "max" else min  # the first best epoch, as ModelCheckpoint keeps it
    # No validation ran (e.g. +trainer.limit_val_batches=0): the last epoch stands in, without val/ metrics.
    best = pick(model.val_history, key=lambda epoch: epoch[cfg.monitor], default={"epoch": trainer.current_epoch - 1})
    final = {**{k: v for k, v in best.items() if k.startswith("val/")}, **test}

    _log_final(run, cfg, "ok", final)
    report = {
        "status": "ok",
        "best_epoch": best["epoch"],
        "epochs": trainer.current_epoch,
        "train_time_s": _train_time(trainer),
        "checkpoint": best_path,
        **final,
    }
    _write_metrics(run_dir, report)
    print(
        f"\nFinal metrics (best epoch {best['epoch'] + 1} of {trainer.current_epoch}, tested from "
        f"{best_path or 'the last weights'}):\n"
        + "\n".join(f"  {name:<10} {value:.4f}" for name, value in final.items())
        + f"\nRun directory: {run_dir}"
    )
    return best.get(cfg.monitor, float("nan"))


def _report_diverged(cfg: DictConfig, run: Run, err: Diverged, run_dir: Path) -> float:
    """A diverged run is not tested: it is marked ``diverged`` and gives the sweeper the worst value."""
    worst = float(cfg.monitor_worst)
    _log_final(run, cfg, "diverged", {cfg.monitor: worst})
    report = {
        "status": "diverged",
        "reason": err.reason,
        "diverged_at_update": err.step,
        "epochs": run.trainer.current_epoch,
        "train_time_s": _train_time(run.trainer),
        cfg.monitor: worst,
    }
    _write_metrics(run_dir, report)
    log.warning(f"Diverged by update {err.step}: {err.reason}. The run stops here, marked diverged: {run_dir}")
    return worst


def _log_final(run: Run, cfg: DictConfig, status: str, final: dict[str, float]) -> None:
    """The run's hyperparameters, its status and final metrics, for TensorBoard's HPARAMS tab."""
    run.logger.log_hyperparams(
        {**run_hparams(cfg, run.model, run.datamodule), "status": status},
        metrics={f"hp/{name.replace('/', '_')}": value for name, value in final.items()},
        step=run.trainer.global_step,
    )
    # Lightning wrote hparams.yaml at the first logged step, still empty, and never overwrites it: write it anew.
    (Path(run.logger.log_dir) / run.logger.NAME_HPARAMS_FILE).unlink(missing_ok=True)
    run.logger.finalize("success")  # flush the events and write hparams.yaml


def _train_time(trainer: L.Trainer) -> float | None:
    timers = [callback for callback in trainer.callbacks if isinstance(callback, EpochTimer)]
    return timers[0].total_train_s if timers else None


def _write_metrics(run_dir: Path, report: dict[str, Any]) -> None:
    (run_dir / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")


def _set_threads(threads: int | None) -> None:
    """Torch's intra-op threads: ``threads`` if set; under the joblib launcher the cores shared among its jobs."""
    if threads is None:
        hydra = HydraConfig.get()
        n_jobs = hydra.launcher.get("n_jobs") if "joblib" in str(hydra.launcher.get("_target_", "")) else None
        if n_jobs is None:
            return
        cores = os.cpu_count() or 1
        jobs = cores + 1 + n_jobs if n_jobs < 0 else n_jobs  # joblib's n_jobs=-1: one job per core
        asked = hydra.sweeper.get("n_jobs")  # an Optuna search launches this many trials at a time
        jobs = min(jobs, asked) if isinstance(asked, int) and asked > 0 else jobs
        threads = max(1, cores // min(max(jobs, 1), cores))
    if not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads={threads!r} is out of range: it must be an integer ≥ 1 or null (all cores)")
    torch.set_num_threads(threads)
    log.info(f"torch threads: {threads}")


def build_model(cfg: DictConfig) -> Network:
    """The model of conf/model, given the cost, hidden activation and optimizer of their own groups."""
    return build(
        cfg.model,
        cost=build(cfg.cost),
        activation=build(cfg.activation),
        optimizer=build(cfg.optimizer),
        scheduler=build(cfg.scheduler) if cfg.get("scheduler") else None,
        _convert_="all",  # plain lists in the model's hyperparameters, not OmegaConf containers
    )


def build(config: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate``, letting the project's own errors (bad config values) through unwrapped."""
    try:
        return instantiate(config, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, NNDLError):
            raise err.__cause__ from None
        raise


def quiet_library_noise() -> None:
    """Keep the console to what a user of the lab needs."""
    # Hydra's handlers on the root logger print and file every message already; Lightning adds a console handler
    # of its own, which would print each of its messages twice.
    if logging.getLogger().hasHandlers():
        logging.getLogger("lightning").handlers.clear()
    # The batches are cut from tensors in memory: worker processes would only add overhead.
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    # Raised inside Lightning itself with recent torch releases; nothing a user can act on.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


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
