"""Predict the digit in each image with a saved checkpoint: one line per image, the digit and its 10 probabilities.

    python scripts/predict.py ckpt_path=outputs/runs/<date>/<time>/checkpoints/last.ckpt inputs=my_digits/
    python scripts/predict.py ckpt_path=<...>.ckpt inputs=seven.jpg csv=true     # also writes predictions.csv

Hydra composes conf/predict.yaml with the command line; nndl.predict does the rest.
"""

import hydra
from omegaconf import DictConfig

from nndl.cli import prepare, run_job

prepare(__file__)


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    from nndl.predict import predict  # torch and Lightning load only when the job starts: --help stays fast

    run_job(predict, cfg)


if __name__ == "__main__":
    main()
