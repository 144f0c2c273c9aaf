"""Train, test and log one run, or a sweep with -m.

    python scripts/train.py                                   # the book's first network
    python scripts/train.py model=cnn optimizer=adam          # the notes' CNN
    python scripts/train.py -m cost=quadratic,cross_entropy activation=sigmoid,relu

Hydra composes conf/train.yaml with the command line; nndl.train does the rest.
"""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from nndl.errors import NNDLError

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[1]))


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    from nndl.train import train  # torch and Lightning load only when a run starts: --help stays fast

    try:
        return train(cfg)
    except NNDLError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
