"""Test a saved checkpoint: its test metrics, printed and logged to TensorBoard.

    python scripts/eval.py ckpt_path=outputs/runs/<date>/<time>/checkpoints/last.ckpt
    python scripts/eval.py ckpt_path=model.pt config_path=<run_dir>/.hydra/config.yaml data.data_dir=../shared/mnist

Hydra composes conf/eval.yaml with the command line; nndl.evaluate does the rest.
"""

import hydra
from omegaconf import DictConfig

from nndl.cli import prepare, run_job

prepare(__file__)


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    from nndl.evaluate import evaluate  # torch and Lightning load only when the job starts: --help stays fast

    run_job(evaluate, cfg)


if __name__ == "__main__":
    main()
