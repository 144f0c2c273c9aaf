"""Summarise a sweep (or a single run) from its TensorBoard event files, without re-running anything.

    python scripts/summarize.py outputs/multirun/2026-11-29/14-00-00
    python scripts/summarize.py outputs/runs/2026-11-29/14-00-00

Writes into that directory ``summary.md`` and ``summary.csv`` — one row per run: its overrides, status, best
val/acc and its epoch, test/acc, final train loss, epochs, training and wall time — sorted by best val/acc, and
``curves.png``: val/acc against epoch for every run, one labelled line each.
"""

import argparse
import csv
import sys
from pathlib import Path

from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

COLUMNS = ["run", "overrides", "status", "best_val_acc", "best_epoch", "test_acc", "train_loss", "epochs",
           "train_time_s", "wall_time_s"]  # fmt: skip


def run_dirs(root: Path) -> list[Path]:
    """The directory itself if it is a run, else its sub-directories that are runs (hold event files)."""
    if any(root.glob("events.out.tfevents.*")):
        return [root]
    return sorted((d for d in root.iterdir() if d.is_dir() and any(d.glob("events.out.tfevents.*"))), key=_job_order)


def _job_order(path: Path) -> tuple[int, str]:
    number = path.name.split("_", 1)[0]
    return (int(number), path.name) if number.isdigit() else (sys.maxsize, path.name)


def summarize_run(run: Path) -> tuple[dict, list[float]]:
    """One run's row, and its val/acc per epoch."""
    events = EventAccumulator(str(run))
    events.Reload()
    tags = set(events.Tags()["scalars"])

    def values(tag: str) -> list[float]:
        return [e.value for e in events.Scalars(tag)] if tag in tags else []

    val_acc, test_acc, train_loss = values("val/acc"), values("test/acc"), values("train/loss")
    overrides_file = run / ".hydra" / "overrides.yaml"
    overrides = " ".join(OmegaConf.load(overrides_file)) if overrides_file.is_file() else ""
    walls = [e.wall_time for tag in tags for e in events.Scalars(tag)]
    best = max(range(len(val_acc)), key=val_acc.__getitem__, default=None)
    row = {
        "run": run.name,
        "overrides": overrides,
        "status": "ok" if (run / "metrics.json").is_file() else "unfinished",
        "best_val_acc": f"{val_acc[best]:.4f}" if best is not None else "",
        "best_epoch": best + 1 if best is not None else "",
        "test_acc": f"{test_acc[-1]:.4f}" if test_acc else "",
        "train_loss": f"{train_loss[-1]:.4f}" if train_loss else "",
        "epochs": len(train_loss),
        "train_time_s": f"{sum(values('time/train_s')):.1f}",
        "wall_time_s": f"{max(walls) - min(walls):.1f}" if walls else "",
    }
    return row, val_acc


def plot(curves: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(8, 5))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for label, accs in curves.items():
        ax.plot(range(1, len(accs) + 1), accs, marker="o", markersize=3, label=label)
    ax.set(xlabel="epoch", ylabel="val/acc", title="validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path, help="a sweep directory (outputs/multirun/...) or a run directory")
    root = parser.parse_args().directory
    if not root.is_dir():
        sys.exit(f"error: {root} is not a directory")
    runs = run_dirs(root)
    if not runs:
        sys.exit(f"error: no TensorBoard event files in {root} or its sub-directories")

    summaries = [summarize_run(run) for run in runs]
    rows = sorted((row for row, _ in summaries), key=lambda row: row["best_val_acc"] or "0", reverse=True)
    with open(root / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(row[c]) for c in COLUMNS) + " |" for row in rows]
    (root / "summary.md").write_text("\n".join(lines) + "\n")
    plot({row["overrides"] or row["run"]: accs for row, accs in summaries if accs}, root / "curves.png")
    print("\n".join(lines))
    print(f"\nWritten to {root}/summary.md, summary.csv and curves.png")


if __name__ == "__main__":
    main()
