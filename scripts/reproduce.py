"""Re-run the book's experiments (conf/experiment/) and tabulate what they reach against what the book reports.

    NNDL_DATA_DIR=../shared/mnist python scripts/reproduce.py                          # every preset
    NNDL_DATA_DIR=../shared/mnist python scripts/reproduce.py --presets ch1_784_30_10,notes_cnn
    NNDL_DATA_DIR=../shared/mnist python scripts/reproduce.py --epochs 1 trainer=gpu   # shorter; extra overrides

Each preset runs as ``scripts/train.py experiment=<preset>`` in its own run directory under
``outputs/reproduce/<stamp>/``; ``results.md`` and ``results.csv`` there gain a row as each run finishes: the
test accuracy at the best validation epoch (as the book reports it), the book's figure, epochs, training and
wall time, and the machine. A run that fails gets a row saying so, and the others still run.
"""

import argparse
import csv
import json
import os
import platform
import secrets
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
COLUMNS = ["preset", "book", "test_acc", "best_epoch", "epochs", "train_time_s", "wall_time_s", "status"]


def machine() -> str:
    import torch

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"{os.cpu_count()}-core CPU"
    return f"{platform.processor() or platform.machine()}, {device}, torch {torch.__version__}"


def run(preset: str, run_dir: Path, overrides: list[str]) -> dict:
    command = [sys.executable, str(ROOT / "scripts" / "train.py"), f"experiment={preset}", f"hydra.run.dir={run_dir}"]
    start = time.perf_counter()
    result = subprocess.run([*command, "trainer.enable_progress_bar=false", *overrides], capture_output=True, text=True)
    row = {"preset": preset, "wall_time_s": round(time.perf_counter() - start, 1)}
    config = run_dir / ".hydra" / "config.yaml"
    if config.is_file():
        book = OmegaConf.load(config).get("book_accuracy")
        row["book"] = f"{book:.2%}" if book else ""
    if result.returncode != 0:
        return {**row, "status": f"failed: {_error(result.stderr)}"}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    if metrics.get("status") == "diverged":
        return {**row, "epochs": metrics["epochs"], "status": f"diverged: {metrics['reason']}"}
    return {
        **row,
        "test_acc": f"{metrics['test/acc']:.2%}" if "test/acc" in metrics else f"loss {metrics['test/loss']:.4f}",
        "best_epoch": metrics["best_epoch"],  # counted from 0, as in the whole lab
        "epochs": metrics["epochs"],
        "train_time_s": round(metrics["train_time_s"], 1),
        "status": "ok",
    }


def _error(stderr: str) -> str:
    """What went wrong in a failed run, in one line: the lab's own ``error: ...`` line, else the first paragraph
    of what the script printed (Hydra's "Could not override 'optimizer.lrr'. ..."), its hint about
    HYDRA_FULL_ERROR left out."""
    lines = [line.strip() for line in stderr.splitlines() if "HYDRA_FULL_ERROR" not in line]
    own = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    if own:
        return own[-1]
    first: list[str] = []
    for line in lines:
        if not line and first:
            break
        if line:
            first.append(line)
    return " ".join(first)[:300] or "no output"


def write_tables(out: Path, rows: list[dict], header: str) -> None:
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines = [header, "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(row.get(c, "")) for c in COLUMNS) + " |" for row in rows]
    (out / "results.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated names from conf/experiment/")
    parser.add_argument("--epochs", type=int, help="override every preset's number of epochs")
    parser.add_argument("overrides", nargs="*", help="more overrides for every run, e.g. trainer=gpu")
    args = parser.parse_args()
    presets = args.presets.split(",")
    unknown = sorted(set(presets) - set(PRESETS))
    if unknown:
        sys.exit(f"error: unknown preset(s) {', '.join(unknown)}; choose from {', '.join(PRESETS)}")
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs {args.epochs} is out of range: it must be an integer ≥ 1")
    overrides = [*args.overrides, *([f"trainer.max_epochs={args.epochs}"] if args.epochs is not None else [])]

    # where train.py puts its outputs (paths.log_dir=... given among the overrides), one folder per invocation
    log_dir = next((o.split("=", 1)[1] for o in reversed(overrides) if o.startswith("paths.log_dir=")), None)
    stamp = f"{datetime.now():%Y-%m-%d_%H-%M-%S}-{secrets.token_hex(2)}"
    out = Path(log_dir).resolve() / "reproduce" / stamp if log_dir else ROOT / "outputs" / "reproduce" / stamp
    out.mkdir(parents=True)
    header = (
        f"Measured on {machine()}, {datetime.now():%Y-%m-%d}; test accuracy at the best validation epoch. "
        f"Overrides: {' '.join(overrides) or 'none'}."
    )
    rows = []
    for preset in presets:
        print(f"{preset} ...", end=" ", flush=True)
        rows.append(run(preset, out / preset, overrides))
        print(rows[-1].get("test_acc") or rows[-1]["status"], flush=True)
        write_tables(out, rows, header)
    print(f"\n{(out / 'results.md').read_text()}\nWritten to {out}/results.md and results.csv")
    failed = [row["preset"] for row in rows if str(row["status"]).startswith("failed")]
    if failed:
        sys.exit(f"error: {len(failed)} of {len(rows)} presets failed: {', '.join(failed)} (see results.md)")


if __name__ == "__main__":
    main()
