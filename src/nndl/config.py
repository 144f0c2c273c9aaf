"""Composing the lab's config outside ``@hydra.main``: for benchmarks, notebooks and tests."""

import os
from collections.abc import Sequence
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict


def compose(config_dir: str | os.PathLike, overrides: Sequence[str], run_dir: str | os.PathLike) -> DictConfig:
    """``conf/train.yaml`` with ``overrides``, as ``scripts/train.py`` would see it for a run in ``run_dir``.

    Also makes it the current Hydra config, so that ``nndl.train`` finds the run directory and the choices.
    """
    with initialize_config_dir(config_dir=str(Path(config_dir).resolve()), version_base="1.3"):
        cfg = hydra_compose("train", overrides=[f"hydra.run.dir={run_dir}", *overrides], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)  # what @hydra.main sets for each run
    HydraConfig.instance().set_config(cfg)
    return cfg
