"""A sweep's (or a single run's) summary, read back from what its runs wrote: nothing is re-run.

For each run directory (a Hydra job directory: ``.hydra/``, TensorBoard event files, ``metrics.json``) one row:
its name (a sweep job's shows what varies, ``nndl.hparams``), its overrides, its status (``ok``, ``no_learning``,
``diverged``, ``failed``, ``interrupted``, or ``unfinished`` when the run left no ``metrics.json``; a sweep's jobs
that never started are listed as ``not started``), the best value of the monitored metric (``val/acc``;
``val/loss`` for ``model=curve``) and its epoch (counted from 0, as training counts it), the test value, final
training loss, epochs, parameters, training and wall time (from the job's start to its report: it holds the
training time), tags, and a note (the error of a failed run, why a run diverged or did not learn).
``write_summary`` writes them, best first, to ``summary.csv`` and ``summary.md`` (there the overrides every run
shares once above the table), and draws ``curves.png``: the monitored metric against epoch, each run its own
colour and marker, diverged runs dashed and runs that did not learn dotted, the runs with nothing to draw listed
under it; a sweep of one validation per run as a sorted dot chart.

``SweepSummary`` is the Hydra callback (conf/hydra/default.yaml) that writes the summary at the end of every sweep.
"""

import csv
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

# importing nndl.hparams registers the resolver of the sweep jobs' names (conf/hydra/default.yaml)
from nndl.hparams import job_name, swept_keys

STATUS_ORDER = {"ok": 0, "no_learning": 1, "diverged": 2, "interrupted": 3, "unfinished": 4, "failed": 5,
                "not started": 6}  # fmt: skip
MARKERS = "os^vDP*Xph<>"


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
    return sorted((d for d in root.iterdir() if d.is_dir() and _is_run(d)), key=_job_order)


def _is_run(path: Path) -> bool:
    return (path / ".hydra").is_dir() or any(path.glob("events.out.tfevents.*"))


def _job_order(path: Path) -> tuple[int, str]:
    number = path.name.split("_", 1)[0]
    return (int(number), path.name) if number.isdigit() else (sys.maxsize, path.name)


def _run_config(run: Path) -> DictConfig:
    file = run / ".hydra" / "config.yaml"
    try:
        return OmegaConf.load(file) if file.is_file() else OmegaConf.create()
    except Exception:  # a damaged config: the row still comes from the events and metrics.json
        return OmegaConf.create()


def _monitor(run: Path) -> tuple[str, str]:
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
    own_monitor, mode = _monitor(run)
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
    metrics_file = run / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {"status": "unfinished"}
    pick = min if mode == "min" else max
    best = pick(curve, key=curve.__getitem__, default=None)
    train_time = metrics.get("train_time_s")
    if train_time is None and "time/train_s" in tags:
        train_time = sum(values("time/train_s"))
    row = {
        "run": run.name,
        "overrides": overrides,
        "status": metrics.get("status", "ok"),  # metrics.json of runs from before the status field
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


def write_summary(root: Path) -> list[dict[str, Any]]:
    """Write ``summary.md``, ``summary.csv`` and ``curves.png`` into ``root``; return the rows, best first."""
    runs = run_dirs(root)
    monitors = [_monitor(run) for run in runs]
    monitor, mode = max(set(monitors), key=monitors.count) if monitors else ("val/acc", "max")
    cols = columns(monitor)
    summaries = [summarize_run(run, monitor) for run in runs]
    started = {_job_order(run)[0] for run in runs}
    planned = planned_jobs(root) or []
    swept = swept_keys(root) if (root / "multirun.yaml").is_file() else None
    not_started = [
        {
            **dict.fromkeys(cols, ""),
            "run": job_name(num, overrides.split(), swept),
            "overrides": overrides,
            "status": "not started",
        }
        for num, overrides in enumerate(planned)
        if num not in started
    ]
    best_key = cols[3]
    sign = -1 if mode == "max" else 1

    def order(row: dict[str, Any]) -> tuple[int, float]:
        return STATUS_ORDER.get(row["status"], 3), sign * float(row[best_key]) if row[best_key] else math.inf

    rows = sorted([*(row for row, _ in summaries), *not_started], key=order)
    with open(root / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, cols)
        writer.writeheader()
        writer.writerows(rows)
    shared = _shared_overrides([row["overrides"] for row in rows if row["overrides"]]) if swept is not None else []
    # A sweep's run names show what varies: the md table leaves the overrides to summary.csv, the shared ones above.
    md_cols = [c for c in cols if c != "overrides"] if swept is not None else cols
    tags = sorted({tag for row in rows for tag in row["tags"].split()})
    header = []
    if swept is not None:
        header.append(f"Every run: {' '.join(shared) or '(defaults)'}; swept: {', '.join(swept) or 'nothing'}.")
    if tags:
        header.append(f"Tags: {', '.join(tags)}.")
    md_cols = [c for c in md_cols if c != "tags" or len({row["tags"] for row in rows}) > 1]
    (root / "summary.md").write_text("\n\n".join([*header, markdown_table(rows, md_cols)]) + "\n")
    plot([(row, curve) for row, curve in summaries], root / "curves.png", monitor, mode, [*not_started])
    return rows


def _shared_overrides(overrides: list[str]) -> list[str]:
    """The overrides every run shares, in the order of the first."""
    if not overrides:
        return []
    common = set.intersection(*(set(o.split()) for o in overrides))
    return [item for item in overrides[0].split() if item in common]


def markdown_table(rows: list[dict[str, Any]], cols: list[str] | None = None) -> str:
    cols = cols or (list(rows[0]) if rows else COLUMNS)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(row.get(c, "")).replace("|", "\\|") for c in cols) + " |" for row in rows]
    return "\n".join(lines)


def styles(n: int) -> list[tuple[Any, str]]:
    """A colour and a marker for each of ``n`` runs, no two runs alike: tab10 or tab20, else an even spread of
    a perceptually uniform colormap; the markers cycle besides."""
    from matplotlib import colormaps

    if n <= 10:
        colors = [colormaps["tab10"](i) for i in range(n)]
    elif n <= 20:
        colors = [colormaps["tab20"](i) for i in range(n)]
    else:
        colors = [colormaps["turbo"](0.05 + 0.9 * i / (n - 1)) for i in range(n)]
    return [(color, MARKERS[i % len(MARKERS)]) for i, color in enumerate(colors)]


def plot(
    summaries: list[tuple[dict[str, Any], dict[int, float]]],
    path: Path,
    monitor: str = "val/acc",
    mode: str = "max",
    not_started: list[dict[str, Any]] | None = None,
) -> None:
    """The monitored metric against epoch, one line of its own colour and marker per run; a sweep whose runs
    validated once (1-epoch sweeps) as one dot per run, sorted. Diverged runs dashed, runs that did not learn
    dotted, and the runs with nothing to draw listed under the plot, with why."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    drawn = [(row, curve) for row, curve in summaries if curve]
    missing = [row for row, curve in summaries if not curve] + list(not_started or [])
    epochs = {epoch for _, curve in drawn for epoch in curve}
    one_epoch = len(epochs) == 1 and len(drawn) > 1
    height = max(3.0, 0.28 * len(drawn) + 1.2) if one_epoch else 5.0
    fig, ax = plt.subplots(figsize=(8, height))
    label_of = {"diverged": " (diverged)", "no_learning": " (no learning)"}
    if one_epoch:  # one point per run: a dot chart, sorted, each run on its own row
        order = sorted(drawn, key=lambda rc: next(iter(rc[1].values())), reverse=mode == "min")
        for y, ((_, curve), (color, marker)) in enumerate(zip(order, styles(len(order)), strict=True)):
            value = next(iter(curve.values()))
            ax.plot([value], [y], marker=marker, color=color, markersize=8, linestyle="none")
            ax.annotate(f"{value:.4f}", (value, y), xytext=(6, 0), textcoords="offset points", va="center",
                        fontsize="small")  # fmt: skip
        ax.set_yticks(range(len(order)), [row["run"] + label_of.get(row["status"], "") for row, _ in order])
        ax.set(xlabel=monitor, title=f"{monitor} after epoch {next(iter(epochs))} (counted from 0)")
        ax.grid(alpha=0.3, axis="x")
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        for (row, curve), (color, marker) in zip(drawn, styles(len(drawn)), strict=True):
            linestyle = {"diverged": "--", "no_learning": ":"}.get(row["status"], "-")
            ax.plot(list(curve), list(curve.values()), marker=marker, markersize=4, color=color, linestyle=linestyle,
                    label=row["run"] + label_of.get(row["status"], ""))  # fmt: skip
        ax.set(xlabel="epoch (counted from 0)", ylabel=monitor, title=f"{monitor} by epoch")
        if len(epochs) == 1:
            ax.set_xticks(sorted(epochs))
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the plot
    if missing:
        why = {"diverged": "diverged before its first validation", "failed": "failed", "not started": "not started",
               "interrupted": "interrupted before its first validation"}  # fmt: skip
        lines = [f"{row['run']}: {why.get(row['status'], row['status'] + ', no validation')}" for row in missing]
        shown = lines[:12] + ([f"... and {len(lines) - 12} more"] if len(lines) > 12 else [])
        fig.text(0.01, -0.02, "Not drawn: " + "; ".join(shown), fontsize="small", va="top", wrap=True)
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
