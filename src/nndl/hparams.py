"""What a run records of its hyperparameters: the same keys for every model, and in a sweep what varies.

``run_record`` is a run's hyperparameters under the same keys for every model (MLP, CNN and curve runs compare in
one table), leaving out what means nothing for the run (no ``conv_activation`` for an MLP, no ``book_accuracy``
outside the presets, no zero ``l2`` or ``dropout``). In a sweep a run records only the keys that the sweep varies
(``swept_hparams``: the swept overrides, and what they decide, e.g. ``lr`` for ``optimizer=sgd,adam``), with
``status``; constant keys (the tags too: TEXT tab) stay in ``hparams.yaml`` and ``.hydra/config.yaml``.
``nndl.tensorboard_hparams`` writes them to TensorBoard's HPARAMS tab; ``nndl.run_names`` finds what a sweep varies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

# Override keys that name a group option or a value, and the hyperparameter each sets first (its column).
PRIMARY = {
    "model": "model",
    "model.sizes": "architecture",
    "model.hidden": "architecture",
    "model.channels": "architecture",
    "model.fc_sizes": "architecture",
    "model.kernel_size": "architecture",
    "model.batch_norm": "architecture",
    "cost": "cost",
    "activation": "activation",
    "activation@model.conv_activation": "conv_activation",
    "optimizer": "optimizer",
    "optimizer.lr": "lr",
    "optimizer.momentum": "momentum",
    "optimizer.weight_decay": "weight_decay",
    "scheduler": "scheduler",
    "data.batch_size": "batch_size",
    "data.train_size": "train_size",
    "data.expand": "expand",
    "model.init": "init",
    "model.l2": "l2",
    "model.dropout": "dropout",
    "trainer.max_epochs": "max_epochs",
    "seed": "seed",
    "experiment": "experiment",
}
# Hyperparameters that an override decides besides its own column (model=cnn brings its cost, optimizer, ...).
DERIVED = {
    "model": ("architecture", "params", "cost", "conv_activation", "optimizer", "lr", "batch_size", "init"),
    "model.sizes": ("params",),
    "model.hidden": ("params",),
    "model.channels": ("params",),
    "model.fc_sizes": ("params",),
    "model.kernel_size": ("params",),
    "model.batch_norm": ("params",),
    "optimizer": ("lr",),
    "data.expand": ("train_size",),
}
EVERYTHING = ("experiment", "hparams_search")  # overrides that may change any key


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value


def run_record(cfg: DictConfig, model: Any, train_size: int | None, choices: Mapping[str, Any]) -> dict[str, Any]:
    """The run's hyperparameters that mean something for it, typed (int, float, bool, str)."""
    optimizer = cfg.optimizer
    record: dict[str, Any] = {
        "model": choices.get("model"),
        "architecture": getattr(model, "architecture", None),
        "params": sum(p.numel() for p in model.parameters()) if hasattr(model, "parameters") else None,
        "cost": choices.get("cost"),
        "activation": choices.get("activation"),
        "conv_activation": choices.get("activation@model.conv_activation"),
        "optimizer": choices.get("optimizer"),
        "lr": float(optimizer.lr),
        "momentum": float(optimizer.momentum) if optimizer.get("momentum") else None,
        "weight_decay": float(optimizer.weight_decay) if optimizer.get("weight_decay") else None,
        "scheduler": choices.get("scheduler"),
        "batch_size": cfg.data.get("batch_size"),
        "train_size": train_size,
        "expand": True if cfg.data.get("expand") else None,
        "init": cfg.model.get("init"),
        "l2": float(cfg.model.l2) if cfg.model.get("l2") else None,
        "dropout": float(cfg.model.dropout) if cfg.model.get("dropout") else None,
        "max_epochs": cfg.trainer.get("max_epochs"),
        "seed": cfg.get("seed"),
        "experiment": choices.get("experiment"),
        "book_accuracy": cfg.get("book_accuracy"),
        "tags": ",".join(str(t) for t in cfg.get("tags") or []) or None,
    }
    return {key: _plain(value) for key, value in record.items() if value is not None}


def swept_hparams(cfg: DictConfig, swept: list[str]) -> tuple[list[str], list[str]]:
    """The hyperparameters a sweep over ``swept`` varies: (those the swept overrides set, those they decide).

    A swept override without a column of its own (``callbacks.early_stopping.patience``) is its own column.
    """
    if any(key.split("=")[0] in EVERYTHING for key in swept):
        return list(dict.fromkeys(PRIMARY[k] for k in swept if k in PRIMARY)), [*PRIMARY.values(), "params"]
    primary = [PRIMARY.get(key, key) for key in swept]
    derived = [name for key in swept for name in DERIVED.get(key, ()) if name not in primary]
    return list(dict.fromkeys(primary)), list(dict.fromkeys(derived))


def sweep_record(cfg: DictConfig, full: Mapping[str, Any], swept: list[str]) -> dict[str, Any]:
    """A sweep job's record: the keys the sweep varies, with their values in its own config. (Its tags are the
    sweep's, constant: TensorBoard shows them as text, ``write_tensorboard``.)"""
    primary, derived = swept_hparams(cfg, swept)
    record = {}
    for name in [*primary, *derived]:
        if name in full:
            record[name] = full[name]
        elif name not in PRIMARY.values() and name != "params":  # a swept key of no column: its config value
            value = _plain(OmegaConf.select(cfg, name, default=None))
            if value is not None:
                record[name] = value
    return record
