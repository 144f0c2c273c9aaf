"""Checkpoints as untrusted input: find the run's config next to one, rebuild the model, load the weights safely.

A run directory holds its composed config in ``.hydra/config.yaml`` and its checkpoints in ``checkpoints/*.ckpt``
(conf/callbacks/default.yaml). The network is rebuilt from that config (``nndl.train.build_model``) and the
checkpoint's ``state_dict`` loaded into it. The checkpoint is read with ``torch.load(..., weights_only=True)``:
tensors and plain containers only, never arbitrary pickled objects, whose loading can run code. A Lightning
checkpoint of this lab holds nothing else (its loops', callbacks', optimizer's and schedule's states are plain
too). The config builds objects by name (Hydra's ``_target_``), so it is checked as well: it may only name the
lab's own classes, torch's layers, optimizers and schedules, and Lightning's Trainer.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from nndl.errors import CheckpointError, ConfigError

if TYPE_CHECKING:  # torch and Lightning load when a checkpoint is read, after the cheap checks of paths and config
    from torch import Tensor

    from nndl.models import Network

RUN_CONFIG = Path(".hydra") / "config.yaml"
MODEL_GROUPS = ("model", "cost", "activation", "optimizer", "scheduler")  # what nndl.train.build_model reads
REQUIRED_GROUPS = ("model", "cost", "activation", "optimizer")
# What a run's config may build, by the module that defines it (checked after its name).
ALLOWED_NAMES = ("nndl.", "torch.", "lightning.")
ALLOWED_MODULES = ("nndl.", "torch.nn.modules.", "torch.optim.", "lightning.pytorch.trainer.")


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


def load_run_config(path: str | os.PathLike, groups: tuple[str, ...] = MODEL_GROUPS) -> DictConfig:
    """The run's config at ``path``, checked: a training run's, naming only classes ``ALLOWED_MODULES`` define
    (in ``groups``, the parts that will be built)."""
    try:
        cfg = OmegaConf.load(path)
    except (OSError, OmegaConfBaseException, ValueError) as err:
        raise ConfigError(f"{path}: not a readable YAML config ({type(err).__name__}: {err})") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{path} is not the composed config of a training run: it holds a list, not keys")
    missing = [group for group in REQUIRED_GROUPS if not isinstance(cfg.get(group), DictConfig)]
    if missing or "_target_" not in cfg.model:
        raise ConfigError(
            f"{path} is not the composed config of a training run (<run_dir>/{RUN_CONFIG}): "
            f"it has no {', '.join(missing) or 'model._target_'}"
        )
    for group in groups:
        if cfg.get(group) is not None:
            check_targets(cfg[group], f"{path}: {group}")
    return cfg


def check_targets(node: Any, where: str) -> None:
    """``ConfigError`` unless every ``_target_`` under ``node`` names a class or function that one of
    ``ALLOWED_MODULES`` defines. The name is checked before it is imported, the object's module after, so that
    no name reaches something else through a module that imports it."""
    for key, target in _targets(node, where):
        allowed = f"a run's config may only build objects of {', '.join(m.rstrip('.') for m in ALLOWED_MODULES)}"
        if not isinstance(target, str) or not target.startswith(ALLOWED_NAMES):
            raise ConfigError(f"{key}={target!r} is not allowed: {allowed}")
        try:
            found = _locate(target)
        except (ImportError, AttributeError, ValueError):
            raise ConfigError(f"{key}={target!r}: no such class or function") from None
        if not getattr(found, "__module__", "").startswith(ALLOWED_MODULES):
            raise ConfigError(f"{key}={target!r} is not allowed: {allowed}")


def _locate(path: str) -> Any:
    """The object a dotted name leads to, as Hydra finds a ``_target_``: its longest importable module, then
    attributes."""
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        try:
            found = import_module(".".join(parts[:end]))
        except ImportError:
            continue
        for part in parts[end:]:
            found = getattr(found, part)
        return found
    raise ImportError(path)


def _targets(node: Any, where: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, DictConfig):
        for key in node:
            value = node._get_node(key)
            if key == "_target_":
                yield f"{where}._target_", node[key]
            elif isinstance(value, DictConfig | ListConfig):
                yield from _targets(value, f"{where}.{key}")
    elif isinstance(node, ListConfig):
        for i, item in enumerate(node):
            yield from _targets(item, f"{where}[{i}]")


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
        message = str(err).strip()
        reason = message.splitlines()[0] if message else type(err).__name__
        if "weights_only" in message or "Unsupported global" in message:
            reason = "it holds objects other than tensors and plain containers, which are not loaded: " + reason
        raise CheckpointError(f"{path}: not a checkpoint that can be loaded safely ({reason})") from None
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


def load_model(ckpt_path: str | os.PathLike, run_cfg: DictConfig) -> Network:
    """The run's network, rebuilt from ``run_cfg`` with the weights of ``ckpt_path``, in evaluation mode.

    ``CheckpointError`` when the checkpoint does not fit the config: other layers or shapes, or (a Lightning
    checkpoint) other hyperparameters than the config gives the model.
    """
    from nndl.train import build_model  # Lightning and the models load here, not when the scripts start

    state_dict, hparams = _read(ckpt_path)
    model = build_model(run_cfg)
    mismatch = "" if hparams is None else _difference(hparams, dict(model.hparams))
    if not mismatch:
        try:
            model.load_state_dict(state_dict)
        except RuntimeError as err:
            mismatch = " ".join(str(err).split())[:300]
    if mismatch:
        raise CheckpointError(
            f"{ckpt_path} does not fit the model of its config ({model.architecture}): {mismatch}; "
            "is config_path the config of the run that wrote it?"
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
    """The checkpoint ``cfg.ckpt_path``, its run's config file, and that config as this script's Hydra app sees it.

    The run's own ``paths`` are replaced by this app's, so that ``${paths.data_dir}`` resolves as it would for a
    new training run (``NNDL_DATA_DIR``, or ``data/`` in the project) and ``${paths.output_dir}`` is this app's
    run directory; ``cfg.data`` entries that are set (``data.data_dir=...``) replace the run's. ``groups``: the
    parts of the run's config that will be built (see ``load_run_config``).
    """
    ckpt = checkpoint_file(required(cfg, "ckpt_path", "outputs/runs/<date>/<time>/checkpoints/last.ckpt"))
    config_file = find_run_config(ckpt, cfg.get("config_path"))
    run_cfg = load_run_config(config_file, groups)
    with open_dict(run_cfg):
        run_cfg.paths = cfg.paths
        for key, value in (cfg.get("data") or {}).items():
            if value is None:
                continue
            if not isinstance(run_cfg.get("data"), DictConfig) or key not in run_cfg.data:
                target = run_cfg.data.get("_target_") if isinstance(run_cfg.get("data"), DictConfig) else None
                raise ConfigError(f"data.{key}={value}: the run's data ({target or 'none'}) has no such setting")
            run_cfg.data[key] = value
        for group in groups:
            resolve_checked(run_cfg, group, str(config_file))
    return ckpt, config_file, run_cfg


def resolve_checked(run_cfg: DictConfig, group: str, where: str) -> None:
    """Replace ``run_cfg[group]`` by its resolved copy, checked by ``check_targets``: an interpolation
    (``${...}``) can bring a node with a ``_target_`` of its own from elsewhere in the file, which the check of
    the unresolved group would not see, and ``instantiate`` would build."""
    if run_cfg.get(group) is None:
        return
    try:
        resolved = OmegaConf.create(OmegaConf.to_container(run_cfg[group], resolve=True))
    except OmegaConfBaseException as err:
        raise ConfigError(f"{where}: {group} does not resolve ({type(err).__name__}: {err})") from None
    check_targets(resolved, f"{where}: {group}")
    with open_dict(run_cfg):
        run_cfg[group] = resolved
