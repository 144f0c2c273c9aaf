"""Export a checkpoint's network as a plain state_dict, loadable without Lightning's Trainer.

    python scripts/export.py ckpt_path=outputs/runs/<date>/<time>/checkpoints/last.ckpt
    python scripts/export.py ckpt_path=<...>.ckpt output=cnn.pt        # also writes cnn.yaml, its model config

Hydra composes conf/export.yaml with the command line; nndl.export does the rest.
"""

import hydra
from omegaconf import DictConfig

from nndl.cli import prepare, run_job

prepare(__file__)


@hydra.main(version_base="1.3", config_path="../conf", config_name="export")
def main(cfg: DictConfig) -> None:
    from nndl.export import export  # torch and Lightning load only when the job starts: --help stays fast

    run_job(export, cfg)


if __name__ == "__main__":
    main()
