"""Summarise a sweep (or a single run) from what its runs wrote, without re-running anything.

    python scripts/summarize.py outputs/multirun/2026-11-29/14-00-00
    python scripts/summarize.py outputs/runs/2026-11-29/14-00-00

Writes into that directory ``summary.md`` and ``summary.csv`` — one row per run: its overrides, status, best
val/acc and its epoch, test/acc, final train loss, epochs, training and wall time, and the error of a failed run —
sorted by best val/acc, and ``curves.png``: val/acc against epoch for every run, one labelled line each.
Every sweep writes its summary at its end already (nndl.summary.SweepSummary); this script (re)writes it.
"""

import argparse
import sys
from pathlib import Path

from nndl.summary import markdown_table, run_dirs, write_summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path, help="a sweep directory (outputs/multirun/...) or a run directory")
    root = parser.parse_args().directory
    if not root.is_dir():
        sys.exit(f"error: {root} is not a directory")
    if not run_dirs(root):
        sys.exit(f"error: no runs (directories with .hydra/ or TensorBoard event files) in {root} or below it")
    rows = write_summary(root)
    print(markdown_table(rows))
    print(f"\nWritten to {root}/summary.md, summary.csv and curves.png")


if __name__ == "__main__":
    main()
