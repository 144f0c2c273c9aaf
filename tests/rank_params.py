"""A callback for the data-parallel tests: each process saves its parameters at the end of training
(added with +callbacks.rank_params._target_=rank_params.SaveRankParams), so that a test can compare the ranks."""

from pathlib import Path

import lightning as L
import torch


class SaveRankParams(L.Callback):
    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        state = {name: p.detach().cpu().clone() for name, p in pl_module.named_parameters()}
        torch.save(state, self.directory / f"rank{trainer.global_rank}.pt")
