"""A run's row of a sweep's summary, read back from what the run wrote: nothing is re-run.

A run directory is a Hydra job directory (``.hydra/``, TensorBoard event files, ``metrics.json``). Its row: its
name (a sweep job's shows what varies, ``nndl.run_names``), its overrides, its status (``ok``, ``no_learning``,
``diverged``, ``failed``, ``interrupted``, or ``unfinished`` when the run left no ``metrics.json``), the best value of
the monitored metric (``val/acc``; ``val/loss`` for ``model=curve``) and its epoch (counted from 0, as training
counts it), the test value, final training loss, epochs, parameters, training and wall time (from the job's start
to its report: it holds the training time), tags, and a note (the error of a failed run, why a run diverged or did
not learn). ``planned_jobs`` lists the jobs a sweep planned, so that those that never started are listed too.
"""

import logging
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from nndl.resume import read_report


def columns(monitor: str = "val/acc") -> list[str]:
    """The summary's columns; the monitored metric's (``val/acc``, or ``val/loss`` for ``model=curve``)."""
    metric = monitor.split("/", 1)[-1]
    return ["run", "overrides", "status", f"best_val_{metric}", "best_epoch", f"test_{metric}", "train_loss",
            "epochs", "params", "train_time_s", "wall_time_s", "tags", "note"]  # fmt: skip


COLUMNS = columns()


def run_dirs(root: Path) -> list[Path]:
    """The directory itself if it is a run, else its sub-directories that are runs, in job order."""
    if _is_run(root):
        return [root]
    return sorted((d for d in root.iterdir() if d.is_dir() and _is_run(d)), key=job_order)


def _is_run(path: Path) -> bool:
    return (path / ".hydra").is_dir() or any(path.glob("events.out.tfevents.*"))


def job_order(path: Path) -> tuple[int, str]:
    """A run directory's place: a sweep job's by its number (``3_cost=...``), other runs after them by name."""
    number = path.name.split("_", 1)[0]
    return (int(number), path.name) if number.isdigit() else (sys.maxsize, path.name)


def _run_config(run: Path) -> DictConfig:
    file = run / ".hydra" / "config.yaml"
    try:
        return OmegaConf.load(file) if file.is_file() else OmegaConf.create()
    except Exception:  # a damaged config: the row still comes from the events and metrics.json
        return OmegaConf.create()


def monitor_of(run: Path) -> tuple[str, str]:
    """The metric the run monitored and whether its best is the ``max`` or the ``min``."""
    cfg = _run_config(run)
    return str(cfg.get("monitor", "val/acc")), str(cfg.get("monitor_mode", "max"))


def summarize_run(run: Path, monitor: str | None = None) -> tuple[dict[str, Any], dict[int, float]]:
    """One run's row, and its monitored metric (``val/acc``; the run's ``monitor``) by epoch, counted from 0 as
    training counts them (``metrics.json``'s ``best_epoch``, the checkpoints' names, TensorBoard's epoch axis)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logging.getLogger("tensorboard").setLevel(logging.WARNING)  # not a line per event file it reads
    events = EventAccumulator(str(run))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    own_monitor, mode = monitor_of(run)
    monitor = monitor or own_monitor
    metric = monitor.split("/", 1)[-1]

    def values(tag: str) -> list[float]:
        return [e.value for e in events.Scalars(tag)] if tag in tags else []

    # The epoch of each validation from the `epoch` scalar logged with it (the epoch axis; runs of before it
    # logged against Lightning's step count, and the epoch scalar maps those too).
    epoch_at = {e.step: int(e.value) for e in events.Scalars("epoch")} if "epoch" in tags else {}
    curve = {epoch_at.get(e.step, i): e.value for i, e in enumerate(events.Scalars(monitor) if monitor in tags else [])}
    test, train_loss = values(monitor.replace("val/", "test/", 1)), values("train/loss")
    cfg = _run_config(run)
    overrides_file = run / ".hydra" / "overrides.yaml"
    overrides = " ".join(OmegaConf.load(overrides_file)) if overrides_file.is_file() else ""
    metrics = read_report(run)
    pick = min if mode == "min" else max
    best = pick(curve, key=curve.__getitem__, default=None)
    train_time = metrics.get("train_time_s")
    if train_time is None and "time/train_s" in tags:
        train_time = sum(values("time/train_s"))
    row = {
        "run": run.name,
        "overrides": overrides,
        "status": metrics["status"],
        f"best_val_{metric}": f"{curve[best]:.4f}" if best is not None else "",
        "best_epoch": best if best is not None else "",
        f"test_{metric}": f"{test[-1]:.4f}" if test else "",
        "train_loss": f"{train_loss[-1]:.4f}" if train_loss else "",
        "epochs": metrics.get("epochs", len(train_loss)),
        "params": metrics.get("params", ""),
        "train_time_s": f"{train_time:.1f}" if train_time is not None else "",
        "wall_time_s": _wall_time(run, metrics, events, tags, train_time),
        "tags": " ".join(str(t) for t in cfg.get("tags") or []),
        "note": metrics.get("error") or metrics.get("reason") or "",
    }
    return row, curve


def _wall_time(run: Path, metrics: dict, events: Any, tags: set[str], train_time: float | None) -> str:
    """The run's wall time: from its start (Hydra writing its config) to its report (``metrics.json``'s
    ``wall_time_s``; for runs of before it, to their last event); it holds the training time."""
    wall = metrics.get("wall_time_s")
    if wall is None:
        config = run / ".hydra" / "config.yaml"
        walls = [e.wall_time for tag in tags for e in events.Scalars(tag)]
        if walls:
            start = config.stat().st_mtime if config.is_file() else min(walls)
            wall = max(walls) - start
    if wall is None:
        return ""
    return f"{max(wall, train_time or 0.0):.1f}"


def planned_jobs(root: Path) -> list[str] | None:
    """The overrides of every job a sweep of Hydra's basic sweeper planned, in job order, from the
    ``multirun.yaml`` it wrote at its start (``None`` for other sweepers, or no such file)."""
    file = root / "multirun.yaml"
    if not file.is_file():
        return None
    hydra = OmegaConf.load(file).get("hydra", {})
    if "BasicSweeper" not in str(OmegaConf.select(hydra, "sweeper._target_", default="")):
        return None
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = OverridesParser.create().parse_overrides(list(OmegaConf.select(hydra, "overrides.task") or []))
    return [" ".join(job) for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]
