"""A sweep's (or a single run's) summary, read back from what its runs wrote: nothing is re-run.

For each run directory (a Hydra job directory: ``.hydra/``, TensorBoard event files, ``metrics.json``) one row:
its overrides, its status (``ok``, ``diverged``, ``failed``, ``interrupted``, or ``unfinished`` when the run left no
``metrics.json``; a sweep's jobs that never started are listed as ``not started``), best
val/acc and its epoch, test/acc, final training loss, epochs, training and wall time, and a note (the error of a
failed run, the reason of a diverged one). ``write_summary`` writes them, sorted by best val/acc, to
``summary.md`` and ``summary.csv``, and draws ``curves.png``: val/acc against epoch, one labelled line per run.

``SweepSummary`` is the Hydra callback (conf/hydra/default.yaml) that writes the summary at the end of every sweep.
"""

import csv
import json
import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

COLUMNS = ["run", "overrides", "status", "best_val_acc", "best_epoch", "test_acc", "train_loss", "epochs",
           "train_time_s", "wall_time_s", "note"]  # fmt: skip
STATUS_ORDER = {"ok": 0, "diverged": 1, "interrupted": 2, "unfinished": 3, "failed": 4, "not started": 5}


def run_dirs(root: Path) -> list[Path]:
    """The directory itself if it is a run, else its sub-directories that are runs, in job order."""
    if _is_run(root):
        return [root]
    return sorted((d for d in root.iterdir() if d.is_dir() and _is_run(d)), key=_job_order)


def _is_run(path: Path) -> bool:
    return (path / ".hydra").is_dir() or any(path.glob("events.out.tfevents.*"))


def _job_order(path: Path) -> tuple[int, str]:
    number = path.name.split("_", 1)[0]
    return (int(number), path.name) if number.isdigit() else (sys.maxsize, path.name)


def summarize_run(run: Path) -> tuple[dict[str, Any], dict[int, float]]:
    """One run's row, and its val/acc by epoch (counted from 1)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logging.getLogger("tensorboard").setLevel(logging.WARNING)  # not a line per event file it reads
    events = EventAccumulator(str(run))
    events.Reload()
    tags = set(events.Tags()["scalars"])

    def values(tag: str) -> list[float]:
        return [e.value for e in events.Scalars(tag)] if tag in tags else []

    test_acc, train_loss = values("test/acc"), values("train/loss")
    # the epoch of each validation from Lightning's `epoch` scalar, logged at the same step (it validates every
    # trainer.check_val_every_n_epoch epochs)
    epoch_at = {e.step: int(e.value) + 1 for e in events.Scalars("epoch")} if "epoch" in tags else {}
    val_acc = {
        epoch_at.get(e.step, i + 1): e.value
        for i, e in enumerate(events.Scalars("val/acc") if "val/acc" in tags else [])
    }
    overrides_file = run / ".hydra" / "overrides.yaml"
    overrides = " ".join(OmegaConf.load(overrides_file)) if overrides_file.is_file() else ""
    metrics_file = run / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {"status": "unfinished"}
    walls = [e.wall_time for tag in tags for e in events.Scalars(tag)]
    best = max(val_acc, key=val_acc.__getitem__, default=None)
    row = {
        "run": run.name,
        "overrides": overrides,
        "status": metrics.get("status", "ok"),  # metrics.json of runs from before the status field
        "best_val_acc": f"{val_acc[best]:.4f}" if best is not None else "",
        "best_epoch": best if best is not None else "",
        "test_acc": f"{test_acc[-1]:.4f}" if test_acc else "",
        "train_loss": f"{train_loss[-1]:.4f}" if train_loss else "",
        "epochs": len(train_loss),
        "train_time_s": f"{sum(values('time/train_s')):.1f}" if "time/train_s" in tags else "",
        "wall_time_s": f"{max(walls) - min(walls):.1f}" if walls else "",
        "note": metrics.get("error") or metrics.get("reason") or "",
    }
    return row, val_acc


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


def write_summary(root: Path) -> list[dict[str, Any]]:
    """Write ``summary.md``, ``summary.csv`` and ``curves.png`` into ``root``; return the rows, best first."""
    runs = run_dirs(root)
    summaries = [summarize_run(run) for run in runs]
    started = {_job_order(run)[0] for run in runs}
    not_started = [
        {**dict.fromkeys(COLUMNS, ""), "run": str(num), "overrides": overrides, "status": "not started"}
        for num, overrides in enumerate(planned_jobs(root) or [])
        if num not in started
    ]
    rows = sorted(
        [*(row for row, _ in summaries), *not_started],
        key=lambda row: (STATUS_ORDER.get(row["status"], 2), -float(row["best_val_acc"] or -1)),
    )
    with open(root / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (root / "summary.md").write_text(markdown_table(rows) + "\n")
    labels = _distinct_overrides([row["overrides"] for row, _ in summaries])
    curves = {f"{row['run'].split('_', 1)[0]}: {label}" if label else row["run"]: accs
              for (row, accs), label in zip(summaries, labels, strict=True) if accs}  # fmt: skip
    plot(curves, root / "curves.png")
    return rows


def _distinct_overrides(overrides: list[str]) -> list[str]:
    """Each run's overrides without those that every run shares: what tells the runs apart."""
    shared = set.intersection(*(set(o.split()) for o in overrides)) if len(overrides) > 1 else set()
    return [" ".join(_short(item) for item in o.split() if item not in shared) for o in overrides]


def _short(override: str) -> str:
    """``optimizer.lr=0.9316087292291501`` as ``optimizer.lr=0.9316``: a sampler's values, legible in a legend."""
    key, _, value = override.partition("=")
    try:
        return f"{key}={float(value):.4g}" if len(value) > 6 else override
    except ValueError:
        return override


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(row[c]).replace("|", "\\|") for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def plot(curves: dict[str, dict[int, float]], path: Path) -> None:
    """val/acc against epoch, one labelled line per run (an empty frame when no run validated)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(8, 5))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for label, accs in curves.items():
        ax.plot(list(accs), list(accs.values()), marker="o", markersize=3, label=label)
    ax.set(xlabel="epoch", ylabel="val/acc", title="validation accuracy")
    if len({epoch for accs in curves.values() for epoch in accs}) == 1:
        ax.set_xticks(list(next(iter(curves.values()))))
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the plot, however long
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


class SweepSummary(Callback):
    """At the end of a sweep (``-m``), write its summary into the sweep directory and name the jobs that failed.

    A sweep with failed jobs ends with exit status 1, after every job has run and the summary is written.
    The sweep directory is made at the start, so that a sweeper can keep its state there (Optuna's study).
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        Path(config.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self.report(Path(config.hydra.sweep.dir))

    @staticmethod
    def report(root: Path) -> None:
        """Write the summary of the sweep in ``root`` (so far), print its counts, name its failed jobs; exit
        status 1 when a job failed."""
        if not root.is_dir() or not run_dirs(root):
            return
        rows = write_summary(root)
        counts = {status: sum(row["status"] == status for row in rows) for status in STATUS_ORDER}
        print(
            f"\nSweep of {len(rows)} runs: "
            + ", ".join(f"{n} {status}" for status, n in counts.items() if n)
            + f". Summary: {root / 'summary.md'}"
        )
        failed = [row for row in rows if row["status"] == "failed"]
        for row in failed:
            print(f"error: {row['run']} failed: {row['note']}", file=sys.stderr)
        if failed:
            sys.exit(1)
