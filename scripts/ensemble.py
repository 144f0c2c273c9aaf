"""The test accuracy of several trained networks voting (the book's chapter 6 ensemble): each network's, their
majority vote's and their averaged probabilities'.

    python scripts/ensemble.py outputs/multirun/<date>/<time>-<id>/*/      # run directories: their tested checkpoint
    python scripts/ensemble.py a.ckpt b.ckpt c.ckpt --data-dir ../shared/mnist --json results.json

A run directory gives the checkpoint its ``metrics.json`` reports as tested, from the directory's own
``checkpoints/`` (so a moved or copied run works); a run that was killed, diverged or has not finished is refused
with its status (its checkpoint file, given instead, is taken as it is).

Each checkpoint's network is rebuilt from its own run's config (``<run_dir>/.hydra/config.yaml``), checked as
``scripts/eval.py`` checks it, and computes its outputs as its run's test did: in the run's precision, on its
accelerator (``--accelerator cpu`` for a run trained on a GPU). The MNIST files: ``--data-dir``, else the run's
setting (``NNDL_DATA_DIR``).
"""

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", help="checkpoint files or run directories")
    parser.add_argument("--data-dir", help="the folder holding MNIST/raw/ (default: each run's own)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--accelerator", help="cpu, gpu or auto in place of each run's own (trainer.accelerator)")
    args = parser.parse_args()

    from nndl.ensemble import evaluate_ensemble
    from nndl.errors import NNDLError

    try:
        result = evaluate_ensemble(args.checkpoints, args.data_dir, args.accelerator)
    except NNDLError as err:
        sys.exit(f"error: {err}")
    print(result.table())
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")


if __name__ == "__main__":
    main()
