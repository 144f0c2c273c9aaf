"""Test a saved checkpoint: its test metrics, printed and logged to TensorBoard.

    python scripts/eval.py ckpt_path=outputs/runs/<date>/<time>/checkpoints/last.ckpt
    python scripts/eval.py ckpt_path=model.pt config_path=<run_dir>/.hydra/config.yaml data.data_dir=../shared/mnist

Hydra composes conf/eval.yaml with the command line; nndl.evaluate does the rest.
"""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from nndl.errors import NNDLError

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[1]))


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    from nndl.evaluate import evaluate  # torch and Lightning load only when an evaluation starts

    try:
        evaluate(cfg)
    except NNDLError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
