"""One run of the lab: compose → check → seed → data, model, trainer → fit → test the best checkpoint → report.

``scripts/train.py`` calls ``main(cfg)`` under ``@hydra.main``. ``train`` is the recipe, top to bottom; the
objects come from ``nndl.build``, the records from ``nndl.report``.
"""

import signal
import sys
import traceback
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig

from nndl.build import build_run
from nndl.divergence import Diverged
from nndl.errors import ConfigError, NNDLError
from nndl.interrupt import Interrupted, interruptible
from nndl.outcome import worst_value
from nndl.report import report_diverged, report_interrupted, report_ok, show_config, write_metrics
from nndl.resume import BEFORE as RUN_FILES_BEFORE
from nndl.resume import FINISHED, check_resumable, job_state, restore_run_files, resume_from
from nndl.summary import SweepSummary
from nndl.validate import check_config


def main(cfg: DictConfig) -> float:
    """One job of ``scripts/train.py``: ``train(cfg)``, with its end recorded whatever it is.

    Every run that ends other than ``ok`` or ``diverged`` says so in its ``metrics.json``:

    - ``failed``: a bad value or file (one line on stderr, exit status 1) or any other error (its traceback); the
      traceback is kept in ``traceback.txt`` either way. In a sweep (``-m``) the failed job returns the worst
      value instead, as a diverged run does, so that the sweep goes on (an Optuna search too);
      ``nndl.summary.SweepSummary`` names it at the end.
    - ``interrupted``: SIGTERM or SIGINT (``nndl.interrupt``), with the epochs completed and the last checkpoint;
      the script exits with 143 or 130, and a sweep stops there, its summary listing the jobs not started.
    """
    hydra = HydraConfig.get()
    run_dir = Path(hydra.runtime.output_dir)
    multirun = hydra.mode == RunMode.MULTIRUN
    if multirun and cfg.get("resume") in (True, "auto"):  # a sweep resumed: a job that ended keeps its result
        status, report = job_state(run_dir)
        if status in FINISHED:
            print(f"Job {hydra.job.num} ended {status} already: kept as it is ({run_dir})")
            return float(report.get(cfg.monitor, worst_value(cfg)) if status == "ok" else worst_value(cfg))
    try:
        with interruptible():
            return train(cfg)
    except Interrupted as err:
        if rank_zero_only.rank == 0:
            report_interrupted(run_dir, err)
        if multirun and rank_zero_only.rank == 0:
            SweepSummary.report(Path(hydra.sweep.dir))
        sys.exit(err.exit_status)
    except Exception as err:
        error = str(err) if isinstance(err, NNDLError) else f"{type(err).__name__}: {err}"
        # resume=<run_dir> refused for a bad value or file: the run is left as it was (its report, or none, and
        # its .hydra files), resumable with a corrected command
        kept = not multirun and isinstance(err, NNDLError) and bool(RUN_FILES_BEFORE)
        if rank_zero_only.rank == 0:
            run_dir.mkdir(parents=True, exist_ok=True)
            if kept:
                restore_run_files()
            else:
                (run_dir / "traceback.txt").write_text(traceback.format_exc())
                write_metrics(run_dir, {"status": "failed", "error": error})
        if not multirun:
            if isinstance(err, NNDLError):
                print(f"error: {err}", file=sys.stderr)
                sys.exit(1)
            raise
        print(f"error: job {hydra.job.num} failed: {error}", file=sys.stderr)
        return worst_value(cfg)  # as a diverged run: every sweeper carries on, the summary tells them apart


def train(cfg: DictConfig) -> float:
    """Train and test one configuration; return its best value of ``cfg.monitor`` (what a sweeper optimises).

    The best epoch is the one with the best ``monitor`` on the validation set (``val/acc`` by default): its
    checkpoint is tested, and its validation metrics with the test metrics are the run's final metrics, shown in
    TensorBoard's HPARAMS tab as ``hp/val_acc``, ``hp/test_acc``, ... next to the run's hyperparameters.
    """
    check_config(cfg)  # every value in range, before any data is read
    hydra = HydraConfig.get()
    search = hydra.runtime.choices.get("hparams_search")
    # Hydra runs a sweeper only with -m: without it, one run of the defaults (a trial resumed alone is meant so)
    if search and hydra.mode != RunMode.MULTIRUN and not cfg.get("resume"):
        raise ConfigError(
            f"hparams_search={search} searches only in a sweep: add -m to search (python scripts/train.py -m "
            f"hparams_search={search}), or drop hparams_search to train one run"
        )
    run_dir = Path(hydra.runtime.output_dir)
    if rank_zero_only.rank == 0:
        show_config(cfg, run_dir)
    ckpt = resume_from(cfg, run_dir)  # resume=...: the last.ckpt to go on from; None: a fresh start
    run = build_run(cfg, resumed_at=check_resumable(cfg, ckpt) if ckpt else None)
    datamodule, model, trainer = run.datamodule, run.model, run.trainer
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt, weights_only=True)
        best_path = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        test = trainer.test(model, datamodule=datamodule, ckpt_path=best_path or None, verbose=False, weights_only=True)
        test = {name: value for name, value in test[0].items() if name.startswith("test/")}  # not the x values
    except Diverged as err:
        return report_diverged(cfg, run, err, run_dir) if trainer.is_global_zero else worst_value(cfg)
    except (Interrupted, SIGTERMException) as err:  # Lightning's own, should it stop the loop before StopOnSignal
        interrupted = err if isinstance(err, Interrupted) else Interrupted(signal.SIGTERM)
        interrupted.trainer = trainer  # for main's report: the epochs completed
        raise interrupted from None
    pick = max if cfg.monitor_mode == "max" else min  # the first best epoch, as ModelCheckpoint keeps it
    # No validation ran (e.g. +trainer.limit_val_batches=0): the last epoch stands in, without val/ metrics.
    best = pick(model.val_history, key=lambda epoch: epoch[cfg.monitor], default={"epoch": trainer.current_epoch - 1})
    final = {**{k: v for k, v in best.items() if k.startswith("val/")}, **test}

    if trainer.is_global_zero:  # data-parallel: one process writes the record
        report_ok(cfg, run, best, final, best_path)
    return best.get(cfg.monitor, float("nan"))
