"""Checkpoints as untrusted input: find the run's config next to one, rebuild the model, load the weights safely.

A run directory holds its composed config in ``.hydra/config.yaml`` and its checkpoints in ``checkpoints/*.ckpt``
(conf/callbacks/default.yaml). The network is rebuilt from that config, checked first by ``nndl.run_config``
(only the lab's own classes, nothing left to resolve), and the checkpoint's ``state_dict`` loaded into it. The
checkpoint is read with ``torch.load(..., weights_only=True)``: tensors and plain containers only, never arbitrary
pickled objects, whose loading can run code. A Lightning checkpoint of this lab holds nothing else (its loops',
callbacks', optimizer's and schedule's states are plain too).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from nndl.errors import CheckpointError, ConfigError
from nndl.run_config import MODEL_GROUPS, RUN_CONFIG, load_run_config

if TYPE_CHECKING:  # torch and Lightning load when a checkpoint is read, after the cheap checks of paths and config
    from torch import Tensor

    from nndl.models import Network


def required(cfg: DictConfig, key: str, example: str) -> str:
    """The mandatory string ``cfg[key]`` (``???`` in the config), or ``ConfigError`` showing how to give it."""
    if OmegaConf.is_missing(cfg, key) or cfg.get(key) in (None, ""):
        raise ConfigError(f"{key} is missing: give it on the command line, e.g. {key}={example}")
    return str(cfg[key])


def checkpoint_file(ckpt_path: str | os.PathLike) -> Path:
    """``ckpt_path`` if it is a file; ``CheckpointError`` naming it (and the checkpoints it holds, for a folder)."""
    path = Path(ckpt_path)
    if path.is_file():
        return path
    if path.is_dir():
        found = sorted(str(p) for p in [*path.glob("*.ckpt"), *path.glob("checkpoints/*.ckpt")])[:3]
        hint = f", e.g. {', '.join(found)}" if found else ""
        raise CheckpointError(f"ckpt_path={path} is a folder: give a checkpoint file (.ckpt){hint}")
    raise CheckpointError(
        f"ckpt_path={path}: no such file; expected a checkpoint of a run, <run_dir>/checkpoints/<name>.ckpt"
    )


def find_run_config(ckpt_path: str | os.PathLike, config_path: str | os.PathLike | None = None) -> Path:
    """The composed config of the run that wrote ``ckpt_path``.

    ``config_path`` when given (a config file, or a run directory holding ``.hydra/config.yaml``); otherwise the
    run directory's config next to the checkpoint: ``<run_dir>/checkpoints/x.ckpt`` → ``<run_dir>/.hydra/config.yaml``
    (or ``<run_dir>/x.ckpt`` → the same file).
    """
    if config_path is not None:
        path = Path(config_path)
        if path.is_dir() and (path / RUN_CONFIG).is_file():
            return path / RUN_CONFIG
        if path.is_file():
            return path
        raise ConfigError(
            f"config_path={path}: neither a file nor a run directory holding {RUN_CONFIG}; expected a run's "
            f"composed config, <run_dir>/{RUN_CONFIG}, or its run directory"
        )
    ckpt = Path(ckpt_path).resolve()
    candidates = [ckpt.parent.parent / RUN_CONFIG, ckpt.parent / RUN_CONFIG]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no run config found for {ckpt_path}: looked for {candidates[0]} and {candidates[1]}; "
        f"give the run's config with config_path=<run_dir>/{RUN_CONFIG}"
    )


def load_state_dict(ckpt_path: str | os.PathLike) -> dict[str, Tensor]:
    """The network's weights in ``ckpt_path``: a Lightning checkpoint's ``state_dict``, or a plain ``state_dict``
    (what ``scripts/export.py`` writes). Read with ``weights_only=True``, onto the CPU."""
    return _read(ckpt_path)[0]


def _read(ckpt_path: str | os.PathLike) -> tuple[dict[str, Tensor], dict[str, Any] | None]:
    """``load_state_dict``'s weights, and the hyperparameters a Lightning checkpoint saved with them (or ``None``)."""
    import torch

    path = checkpoint_file(ckpt_path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # not a torch file, truncated, or holding objects weights_only refuses
        raise CheckpointError(f"{path}: not a checkpoint that can be loaded safely ({_why(err)})") from None
    state_dict = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if (
        not isinstance(state_dict, dict)
        or not state_dict
        or not all(isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state_dict.items())
    ):
        raise CheckpointError(
            f"{path}: not a checkpoint: expected a Lightning checkpoint (a dict with a 'state_dict' of tensors) "
            "or a plain state_dict"
        )
    hparams = checkpoint.get("hyper_parameters") if state_dict is not checkpoint else None
    return state_dict, hparams if isinstance(hparams, dict) else None


def _why(err: Exception) -> str:
    """What is wrong with a file ``torch.load(weights_only=True)`` refused, in our words: torch's own message
    ends by advising to load it with ``weights_only=False``, which runs whatever the file holds."""
    message = str(err)
    found = re.search(r"GLOBAL ([\w.]+)", message)
    if found or "Unsupported global" in message:
        what = f" ({found.group(1)})" if found else ""
        return f"it holds objects other than tensors and plain containers{what}, which are never loaded"
    if "central directory" in message or isinstance(err, EOFError):
        return "a damaged or truncated torch file"
    return "not a file that torch.save wrote"


def load_model(
    ckpt_path: str | os.PathLike, run_cfg: DictConfig, hint: str = "is config_path the config of the run that wrote it?"
) -> Network:
    """The run's network, rebuilt from ``run_cfg`` with the weights of ``ckpt_path``, in evaluation mode.

    ``CheckpointError`` when the checkpoint does not fit the config: other layers or shapes, or (a Lightning
    checkpoint) other hyperparameters than the config gives the model.
    """
    from hydra.errors import InstantiationException

    from nndl.build import build_model  # Lightning and the models load here, not when the scripts start

    state_dict, hparams = _read(ckpt_path)
    try:
        model = build_model(run_cfg)
    except InstantiationException as err:  # a model setting its class does not take, or a value it refuses
        raise ConfigError(f"the run's model cannot be built: {' '.join(str(err).split())[:300]}") from None
    mismatch = "" if hparams is None else _difference(hparams, dict(model.hparams))
    if not mismatch:
        try:
            model.load_state_dict(state_dict)
        except RuntimeError as err:
            mismatch = " ".join(str(err).split())[:300]
    if mismatch:
        raise CheckpointError(
            f"{ckpt_path} does not fit the model of its config ({model.architecture}): {mismatch}; {hint}"
        )
    return model.eval()


def _difference(saved: dict[str, Any], built: dict[str, Any]) -> str:
    """The model arguments where the checkpoint and the config differ, e.g. "model.sizes: [784, 30, 10] in the
    checkpoint, [784, 100, 10] in the config"; empty when they agree. Arguments only one side knows (a model
    class that gained or lost one since the checkpoint was saved) are left to the weights' shapes to judge."""
    return "; ".join(
        f"model.{key}: {saved[key]!r} in the checkpoint, {built[key]!r} in the config"
        for key in sorted(saved.keys() & built.keys())
        if saved[key] != built[key]
    )


def run_config(cfg: DictConfig, groups: tuple[str, ...] = MODEL_GROUPS) -> tuple[Path, Path, DictConfig]:
    """The checkpoint ``cfg.ckpt_path``, its run's config file, and that config checked (``nndl.run_config``).

    The run's own ``paths`` are replaced by this app's, so that ``${paths.data_dir}`` resolves as it would for a
    new training run (``NNDL_DATA_DIR``, or ``data/`` in the project); ``cfg.data`` entries that are set
    (``data.data_dir=...``) replace the run's. ``groups``: the parts of the run's config that will be built.
    """
    ckpt = checkpoint_file(required(cfg, "ckpt_path", "outputs/runs/<date>/<time>/checkpoints/last.ckpt"))
    config_file = find_run_config(ckpt, cfg.get("config_path"))
    data = {key: value for key, value in (cfg.get("data") or {}).items() if value is not None}
    return ckpt, config_file, load_run_config(config_file, groups, paths=cfg.paths, data=data)
