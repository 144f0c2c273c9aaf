"""Summarise a sweep (or a single run) from what its runs wrote, without re-running anything.

    python scripts/summarize.py outputs/multirun/2026-11-29/14-00-00
    python scripts/summarize.py outputs/runs/2026-11-29/14-00-00

Writes into that directory ``summary.md`` and ``summary.csv`` — one row per run: its name, overrides, status, best
val/acc (val/loss for model=curve) and its epoch (counted from 0), test/acc, final train loss, epochs, parameters,
training and wall time, tags, and why a run failed, diverged or did not learn — best first, and ``curves.png``:
val/acc against epoch for every run, each its own colour and marker.
Every sweep writes its summary at its end already (nndl.summary.SweepSummary); this script (re)writes it.
"""

import argparse
import sys
from pathlib import Path

from nndl.summary import run_dirs, write_summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path, help="a sweep directory (outputs/multirun/...) or a run directory")
    root = parser.parse_args().directory
    if not root.is_dir():
        sys.exit(f"error: {root} is not a directory")
    if not run_dirs(root):
        sys.exit(f"error: no runs (directories with .hydra/ or TensorBoard event files) in {root} or below it")
    write_summary(root)
    print((root / "summary.md").read_text().rstrip())
    print(f"\nWritten to {root}/summary.md, summary.csv and curves.png")


if __name__ == "__main__":
    main()
