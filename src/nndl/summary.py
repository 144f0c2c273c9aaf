"""A sweep's (or a single run's) summary: ``summary.csv``, ``summary.md`` and ``curves.png`` in its directory.

One row per run (``nndl.summary_rows``), best first; a sweep's jobs that never started are listed as
``not started``. ``summary.md`` puts the overrides every run shares once above the table (the run names show what
varies); ``curves.png`` is drawn by ``nndl.summary_plot``.

``SweepSummary`` is the Hydra callback (conf/hydra/default.yaml) that writes the summary at the end of every sweep.
"""

import csv
import math
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

# importing nndl.run_names registers the resolver of the sweep jobs' names (conf/hydra/default.yaml)
from nndl.run_names import job_name, swept_keys
from nndl.summary_plot import plot
from nndl.summary_rows import COLUMNS, columns, job_order, monitor_of, planned_jobs, run_dirs, summarize_run

STATUS_ORDER = {"ok": 0, "no_learning": 1, "diverged": 2, "running": 3, "interrupted": 4, "killed": 5,
                "unfinished": 6, "unreadable": 7, "failed": 8, "not started": 9}  # fmt: skip


def write_summary(root: Path) -> list[dict[str, Any]]:
    """Write ``summary.md``, ``summary.csv`` and ``curves.png`` into ``root``; return the rows, best first."""
    runs = run_dirs(root)
    monitors = [monitor_of(run) for run in runs]
    monitor, mode = max(set(monitors), key=monitors.count) if monitors else ("val/acc", "max")
    cols = columns(monitor)
    summaries = [summarize_run(run, monitor) for run in runs]
    started = {job_order(run)[0] for run in runs}
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
    # resume=...: how the sweep was run the last time, not what its runs share as an experiment
    return [item for item in overrides[0].split() if item in common and not item.startswith("resume=")]


def markdown_table(rows: list[dict[str, Any]], cols: list[str] | None = None) -> str:
    cols = cols or (list(rows[0]) if rows else COLUMNS)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(row.get(c, "")).replace("|", "\\|") for c in cols) + " |" for row in rows]
    return "\n".join(lines)


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
