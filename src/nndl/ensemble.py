"""The book's last step (chapter 6): several networks vote. Each trained network gives its probability of each
digit for every test image; the ensemble answers by majority vote of the networks' predicted digits (ties go to
the tied digit with the highest mean probability), or by the mean of their probabilities (averaged softmax).

    python scripts/ensemble.py outputs/multirun/<date>/<time>-<id>/*/     # the best checkpoint of each run
    python scripts/ensemble.py a.ckpt b.ckpt c.ckpt --data-dir ../shared/mnist

The book's ensemble of five ``ch6_dropout`` networks: ``python scripts/train.py -m experiment=ch6_dropout
seed=1,2,3,4,5``, then ``scripts/ensemble.py`` on the sweep's five run directories (99.67% in the book).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from nndl.checkpoints import find_run_config
from nndl.errors import CheckpointError, ConfigError
from nndl.mnist_shape import NUM_CLASSES
from nndl.run_config import MODEL_GROUPS, RUN_CONFIG, load_run_config
from nndl.rundir import LOCK, running

if TYPE_CHECKING:
    from lightning import LightningDataModule
    from torch import Tensor

MNIST_DATA = "nndl.data.MNISTDataModule"  # conf/data/mnist.yaml: the digits the networks vote on


def majority_vote(probabilities: Tensor) -> Tensor:
    """The digit most of the N networks predict for each example, from their probabilities (N, n, 10); a tie
    goes to the tied digit with the highest mean probability."""
    import torch

    votes = torch.nn.functional.one_hot(probabilities.argmax(dim=2), NUM_CLASSES).sum(dim=0)  # (n, 10)
    tied = probabilities.mean(dim=0).masked_fill(votes < votes.amax(dim=1, keepdim=True), -torch.inf)
    return tied.argmax(dim=1)  # of the digits with the most votes, the one of the highest mean probability


def averaged(probabilities: Tensor) -> Tensor:
    """The digit of the highest mean probability over the N networks (the averaged softmax)."""
    return probabilities.mean(dim=0).argmax(dim=1)


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file as it is; a run directory: the checkpoint its ``metrics.json`` reports as tested, taken
    from the directory's own ``checkpoints/`` (a run directory may have been moved, copied or handed over since it
    was written: the path in the file is not followed out of it). A run that did not end ``ok`` (interrupted,
    diverged, failed, no learning), has not ended (no ``metrics.json``) or is training again (its ``.lock`` held:
    ``resume=`` of a finished run) is refused with its status: give one of its checkpoint files to take that
    network as it is."""
    path = Path(path)
    metrics_file = path / "metrics.json"
    if path.is_file():
        return path
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such checkpoint file or run directory")
    files = f"one of its checkpoint files ({path / 'checkpoints'}/*.ckpt) to take that network as it is"
    if running(path):  # its tested checkpoint may be replaced at any epoch
        raise CheckpointError(f"{path}: the run is training (another process holds its {LOCK}); wait for it to end")
    if not metrics_file.is_file():
        if not (path / "checkpoints").is_dir():
            raise CheckpointError(f"{path}: not a run directory (no metrics.json, no checkpoints/)")
        raise CheckpointError(
            f"{path}: no metrics.json, the run is unfinished (still training, or killed before it could report); "
            f"resume it (scripts/train.py resume={path}), or give {files}"
        )
    try:
        metrics = json.loads(metrics_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{metrics_file}: not a readable metrics file ({err})") from None
    if not isinstance(metrics, dict):
        raise CheckpointError(f"{metrics_file}: expected a JSON object, got {type(metrics).__name__}")
    status = metrics.get("status", "ok")  # runs from before the status field ended ok
    if status != "ok":
        hint = f"resume it (scripts/train.py resume={path}), or " if status == "interrupted" else ""
        reason = metrics.get("reason") or metrics.get("error") or "no reason recorded"  # a failed run: its error
        raise CheckpointError(f"{path}: the run ended {status!r} ({reason}); {hint}give {files}")
    reported = metrics.get("checkpoint")
    name = Path(reported).name if isinstance(reported, str) else ""
    own = path / "checkpoints" / name
    if not name.endswith(".ckpt") or not own.is_file():
        raise CheckpointError(
            f"{path}: its metrics.json names no checkpoint that exists in {path / 'checkpoints'} ({reported!r})"
        )
    return own


def run_config(path: str | os.PathLike) -> Path:
    """The composed config of the network ``path`` names: a run directory's own ``.hydra/config.yaml``; for a
    checkpoint file, its run directory's (``<run_dir>/checkpoints/x.ckpt`` → ``<run_dir>/.hydra/config.yaml``)."""
    path = Path(path)
    if path.is_dir():
        if not (path / RUN_CONFIG).is_file():
            raise ConfigError(f"{path}: no {RUN_CONFIG}: each network is rebuilt from its run's config")
        return path / RUN_CONFIG
    try:
        return find_run_config(path)
    except ConfigError:
        raise ConfigError(
            f"{path}: no run config next to it: each network is rebuilt from its run's {RUN_CONFIG}; give "
            "checkpoints inside their run directories (<run_dir>/checkpoints/<name>.ckpt), or the run directories"
        ) from None


@dataclass
class EnsembleResult:
    checkpoints: list[str]
    members: list[float]  # each network's test accuracy
    vote: float  # the majority vote's
    mean: float  # the averaged probabilities'
    examples: int

    def table(self) -> str:
        rows = [f"| {c} | {acc:.4f} |" for c, acc in zip(self.checkpoints, self.members, strict=True)]
        rows += [f"| majority vote of {len(self.members)} | {self.vote:.4f} |",
                 f"| averaged probabilities of {len(self.members)} | {self.mean:.4f} |"]  # fmt: skip
        return "\n".join(["| network | test accuracy |", "|---|---|", *rows])


def network_config(path: str | os.PathLike, data_dir: str | None) -> DictConfig:
    """The checked config of the network ``path`` names (its model, data and Trainer settings); ``ConfigError``
    unless it is a digit classifier trained on MNIST."""
    config_file = run_config(path)
    cfg = load_run_config(config_file, (*MODEL_GROUPS, "data"))
    target = cfg.get("data", {}).get("_target_")
    if target != MNIST_DATA:
        raise ConfigError(
            f"{path}: its run trained on data._target_={target} ({config_file}); the ensemble votes on MNIST's "
            f"digits: give runs of model=mlp or model=cnn on MNIST ({MNIST_DATA})"
        )
    return load_run_config(config_file, (*MODEL_GROUPS, "data"), data={"data_dir": data_dir}) if data_dir else cfg


def network_probabilities(
    checkpoint: Path, cfg: DictConfig, datamodule: LightningDataModule, accelerator: str | None = None
) -> Tensor:
    """The probabilities (n, 10), in float64, of the checkpoint's network for each test image, computed as the
    run's test pass computes its outputs: by a Trainer with the run's precision and accelerator (or
    ``accelerator``), on one process, in evaluation mode."""
    from nndl.build import build
    from nndl.checkpoints import load_model
    from nndl.evaluate import trainer_config
    from nndl.models import Classifier

    model = load_model(checkpoint, cfg, hint="is it a checkpoint of the run directory it lies in?")
    if not isinstance(model, Classifier):
        raise ConfigError(f"{checkpoint} holds a {type(model).__name__}, not a digit classifier")
    settings = OmegaConf.create({"devices": 1, "accelerator": accelerator})  # null keeps the run's
    trainer = build(trainer_config(cfg, settings), logger=False, callbacks=[], enable_checkpointing=False,
                    enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    import torch

    probabilities = torch.cat(trainer.predict(model, datamodule.test_dataloader())).double().cpu()
    if not probabilities.isfinite().all():
        raise CheckpointError(f"{checkpoint}: its network's outputs are not finite (NaN or infinite); it cannot vote")
    return probabilities


def evaluate_ensemble(
    paths: list[str | os.PathLike], data_dir: str | None = None, accelerator: str | None = None
) -> EnsembleResult:
    """Test each checkpoint (its own run's config rebuilds the network, checked as ``scripts/eval.py`` does) on
    the official test images, in its run's precision and on its run's accelerator (or ``accelerator``), then their
    vote and their averaged probabilities."""
    if not paths:
        raise ConfigError("no checkpoints: give one or more checkpoint files or run directories")
    checkpoints = [resolve_checkpoint(p) for p in paths]  # bad paths fail before torch loads
    configs = [network_config(p, data_dir) for p in paths]

    import torch

    from nndl.build import build, quiet_library_noise

    quiet_library_noise()
    datamodule = build(configs[0].data)  # every network is tested on the same official test set
    datamodule.prepare_data()
    datamodule.setup("test")
    labels = torch.cat([batch.y for batch in datamodule.test_dataloader()])
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = rank_zero.level
    rank_zero.setLevel(logging.WARNING)  # no device lines per network's Trainer
    try:
        pairs = zip(checkpoints, configs, strict=True)
        stacked = torch.stack([network_probabilities(c, cfg, datamodule, accelerator) for c, cfg in pairs])  # (N,n,10)
    finally:
        rank_zero.setLevel(level)

    def accuracy(predicted: Tensor) -> float:
        return (predicted == labels).float().mean().item()

    return EnsembleResult(
        [str(c) for c in checkpoints],
        [accuracy(p.argmax(dim=1)) for p in stacked],
        accuracy(majority_vote(stacked)),
        accuracy(averaged(stacked)),
        len(labels),
    )
