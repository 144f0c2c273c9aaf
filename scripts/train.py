"""Train, test and log one run, or a sweep with -m.

    python scripts/train.py                                   # the book's first network
    python scripts/train.py model=cnn optimizer=adam          # the notes' CNN
    python scripts/train.py -m cost=quadratic,cross_entropy activation=sigmoid,relu

Hydra composes conf/train.yaml with the command line; nndl.train does the rest.
"""

import hydra
from omegaconf import DictConfig

from nndl.cli import prepare

prepare(__file__)


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    from nndl.train import main as train  # torch and Lightning load only when a run starts: --help stays fast

    return train(cfg)


if __name__ == "__main__":
    main()
