"""Predict the digit in each image with a saved checkpoint: one line per image, the digit and its 10 probabilities.

    python scripts/predict.py ckpt_path=outputs/runs/<date>/<time>/checkpoints/last.ckpt inputs=my_digits/
    python scripts/predict.py ckpt_path=<...>.ckpt inputs=seven.jpg csv=true     # also writes predictions.csv

Hydra composes conf/predict.yaml with the command line; nndl.predict does the rest.
"""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from nndl.errors import NNDLError

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[1]))


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    from nndl.predict import predict  # torch and Lightning load only when a prediction starts

    try:
        predict(cfg)
    except NNDLError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
