"""Export a checkpoint's network as a plain state_dict, loadable without Lightning's Trainer.

    python scripts/export.py ckpt_path=outputs/runs/<date>/<time>/checkpoints/last.ckpt
    python scripts/export.py ckpt_path=<...>.ckpt output=cnn.pt        # also writes cnn.yaml, its model config

Hydra composes conf/export.yaml with the command line; nndl.export does the rest.
"""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from nndl.errors import NNDLError

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[1]))


@hydra.main(version_base="1.3", config_path="../conf", config_name="export")
def main(cfg: DictConfig) -> None:
    from nndl.export import export  # torch and Lightning load only when an export starts

    try:
        export(cfg)
    except NNDLError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
