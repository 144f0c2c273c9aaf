"""What a run records of its hyperparameters, and how a sweep's runs are named: both show what varies.

**Run names.** A sweep job's directory (``hydra.sweep.subdir``, which is also its TensorBoard run name) is
``<job number>_<what varies>``: the overrides whose values differ between the sweep's jobs, keys shortened
(``optimizer`` → ``opt``, ``optimizer.lr`` → ``lr``), floats to 4 significant digits, lists joined by ``-``:
``3_cost=log_likelihood,opt=adam``, ``7_lr=0.9316,sizes=784-100-10``. What varies is read from the sweep itself:
the overrides of ``multirun.yaml`` that are sweeps (``cost=quadratic,cross_entropy``), and an Optuna search's
``hydra.sweeper.params``. The job number keeps every name unique; the same sweep gets the same names again.
The name comes from the OmegaConf resolver ``nndl.job_name`` (conf/hydra/default.yaml), registered when this
module is imported — Hydra imports it with ``nndl.summary.SweepSummary``, the sweep callback, in every process that
runs a job (the joblib launcher's workers too).

**HPARAMS.** ``run_record`` is a run's hyperparameters under the same keys for every model (MLP, CNN and curve
runs compare in one table), leaving out what means nothing for the run (no ``conv_activation`` for an MLP, no
``book_accuracy`` outside the presets, no zero ``l2`` or ``dropout``). In a sweep a run records only the keys that
the sweep varies (``swept_hparams``: the swept overrides, and what they decide, e.g. ``lr`` for
``optimizer=sgd,adam``), with ``status``; constant keys (the tags too: TEXT tab) stay in ``hparams.yaml`` and
``.hydra/config.yaml``. ``write_tensorboard`` writes them with TensorBoard's hparams plugin, and for a sweep the
experiment's configuration: its hparams, the swept ones marked as differing (TensorBoard's HPARAMS table ticks
those first, five columns by default), and its metrics, the monitored one first.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
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
SHORT_KEYS = {"optimizer": "opt", "activation": "act", "activation@model.conv_activation": "conv_act",
              "max_epochs": "epochs", "batch_size": "batch"}  # fmt: skip
NAME_RESOLVER = "nndl.job_name"


# -- what a sweep varies -----------------------------------------------------------------------------------------


def _bare_key(key: str) -> str:
    """``+trainer.x`` / ``++x`` / ``~x`` as ``trainer.x`` / ``x``."""
    return key.lstrip("+~")


def swept_keys(sweep_dir: str | Path | None, sweeper_params: Mapping[str, Any] | None = None) -> list[str] | None:
    """The override keys a sweep varies, in command-line order: its sweep overrides (``multirun.yaml`` in
    ``sweep_dir``, written by the sweeper before its first job) and an Optuna search's ``sweeper_params``;
    ``None`` when neither is known (a single run)."""
    keys: list[str] = []
    file = Path(sweep_dir) / "multirun.yaml" if sweep_dir else None
    if file is not None and file.is_file():
        from hydra.core.override_parser.overrides_parser import OverridesParser

        task = OmegaConf.select(OmegaConf.load(file), "hydra.overrides.task", default=None) or []
        for override in OverridesParser.create().parse_overrides(list(task)):
            if override.is_sweep_override():
                keys.append(_bare_key(override.get_key_element()))
        if sweeper_params is None:
            sweeper_params = OmegaConf.select(OmegaConf.load(file), "hydra.sweeper.params", default=None)
    for key in sweeper_params or {}:
        if _bare_key(str(key)) not in keys:
            keys.append(_bare_key(str(key)))
    if not keys and (file is None or not file.is_file()):
        return None
    return keys


def _job_overrides(task: Iterable[str]) -> dict[str, str]:
    """A job's overrides as ``{key: value as written}``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(task))
    return {_bare_key(o.get_key_element()): o.get_value_element_as_str() for o in parsed}


def short_value(value: str) -> str:
    """A value as a run name shows it: floats to 4 significant digits, ``[784,30,10]`` as ``784-30-10``."""
    value = value.strip().strip("'\"")
    if value.startswith("[") and value.endswith("]"):
        return "-".join(short_value(v) for v in value[1:-1].split(",") if v.strip())
    try:
        number = float(value)
    except ValueError:
        return value.replace("/", "-")
    if "." in value or "e" in value.lower():
        return f"{number:.4g}" if math.isfinite(number) else value
    return value


def short_keys(keys: list[str]) -> dict[str, str]:
    """Each key's short form (its last part, abbreviated), the full key where two short forms would clash."""
    short = {key: SHORT_KEYS.get(key, SHORT_KEYS.get(key.rsplit(".", 1)[-1], key.rsplit(".", 1)[-1])) for key in keys}
    clashes = {s for s in short.values() if list(short.values()).count(s) > 1}
    return {key: key if s in clashes else s for key, s in short.items()}


def job_name(num: int | str, overrides: Iterable[str], swept: list[str] | None) -> str:
    """``<num>_<key>=<value>,...`` of the swept keys (all the job's overrides when ``swept`` is ``None``)."""
    values = _job_overrides(overrides)
    keys = [k for k in values if swept is None or k in swept]
    if swept is not None:
        keys.sort(key=swept.index)
    names = short_keys(keys)
    varying = ",".join(f"{names[k]}={short_value(values[k])}" for k in keys)
    return f"{num}_{varying}" if varying else str(num)


def _resolve_job_name(*, _root_: DictConfig) -> str:
    hydra = _root_.hydra
    excluded = set(OmegaConf.select(hydra, "job.config.override_dirname.exclude_keys", default=None) or [])
    task = [o for o in hydra.overrides.task if _bare_key(o.split("=", 1)[0]) not in excluded]
    params = OmegaConf.select(hydra, "sweeper.params", default=None)
    swept = swept_keys(hydra.sweep.dir, OmegaConf.to_container(params) if params is not None else None)
    return job_name(hydra.job.num, task, [k for k in swept if k not in excluded] if swept is not None else None)


if not OmegaConf.has_resolver(NAME_RESOLVER):
    OmegaConf.register_new_resolver(NAME_RESOLVER, _resolve_job_name)


# -- what a run records ---------------------------------------------------------------------------------------------


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


# -- TensorBoard ----------------------------------------------------------------------------------------------------


INTEGERS = {
    "params",
    "batch_size",
    "train_size",
    "max_epochs",
    "seed",
}  # numbers TensorBoard should not print as 5000.0
BOOLEANS = {"expand"}
STRINGS = {"model", "architecture", "cost", "activation", "conv_activation", "optimizer", "scheduler", "init",
           "experiment", "tags", "status", *INTEGERS}  # fmt: skip


def tensorboard_value(name: str, value: Any) -> bool | float | str:
    """A value as TensorBoard's HPARAMS table shows it well. TensorBoard prints every number with 5 significant
    digits (``5000.0``, ``10.000``), so the integer keys go as text (``5000``), the same type in every run;
    any other number (``lr``, ``l2``, a swept key of no column) as a float, so that it sorts and plots as one."""
    if name in STRINGS:
        return str(value)
    if name in BOOLEANS or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int | float):
        return float(value)
    return str(value)


def tensorboard_type(name: str, value: Any = "") -> int:
    """The hparams plugin's data type of a key: the same in every run of a sweep, whatever its value."""
    from tensorboard.plugins.hparams import api_pb2

    if name not in STRINGS and name not in BOOLEANS and name in set(PRIMARY.values()):
        return api_pb2.DATA_TYPE_FLOAT64  # lr, momentum, weight_decay, l2, dropout
    kind = type(tensorboard_value(name, value))
    return {bool: api_pb2.DATA_TYPE_BOOL, float: api_pb2.DATA_TYPE_FLOAT64}.get(kind, api_pb2.DATA_TYPE_STRING)


def write_tensorboard(
    writer: Any,
    hparams: Mapping[str, Any],
    metrics: Mapping[str, float],
    *,
    status: str,
    run_name: str,
    step: int,
    start_time: float | None = None,
    experiment: tuple[list[str], list[str]] | None = None,
    tags: list[str] | None = None,
) -> None:
    """Write the hparams plugin's data to a ``torch.utils.tensorboard.SummaryWriter``: the session's hparams
    and end, the final ``metrics`` as scalars, and (``experiment``: the differing and other hparam names, for a
    sweep) the experiment's configuration; the run's ``tags`` also as text (TEXT tab)."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
    from tensorboard.plugins.hparams.summary_v2 import hparams_pb

    def summary(tag: str, data: plugin_data_pb2.HParamsPluginData) -> summary_pb2.Summary:
        pb = summary_pb2.Summary()
        pb.value.add(tag=tag, metadata=metadata.create_summary_metadata(data), tensor=metadata.NULL_TENSOR)
        return pb

    values = {name: tensorboard_value(name, value) for name, value in hparams.items()}
    file_writer = writer._get_file_writer()
    if experiment is not None:
        differing, others = experiment
        infos = [
            api_pb2.HParamInfo(name=name, type=tensorboard_type(name, hparams.get(name, "")), differs=name in differing)
            for name in dict.fromkeys([*differing, *others])
        ]
        metric_infos = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag)) for tag in metrics]
        experiment_pb = api_pb2.Experiment(hparam_infos=infos, metric_infos=metric_infos)
        file_writer.add_summary(
            summary(metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment_pb))
        )
    file_writer.add_summary(hparams_pb(values, trial_id=run_name, start_time_secs=start_time))
    for tag, value in metrics.items():
        writer.add_scalar(tag, value, global_step=step)
    if tags:
        writer.add_text("tags", ", ".join(tags), global_step=step)
    end = plugin_data_pb2.SessionEndInfo(
        status=api_pb2.STATUS_FAILURE if status == "diverged" else api_pb2.STATUS_SUCCESS, end_time_secs=time.time()
    )
    file_writer.add_summary(
        summary(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end))
    )
    writer.flush()
