"""What a sweep varies, and the names of its runs, which show it.

A sweep job's directory (``hydra.sweep.subdir``, which is also its TensorBoard run name) is
``<job number>_<what varies>``: the overrides whose values differ between the sweep's jobs, keys shortened
(``optimizer`` → ``opt``, ``optimizer.lr`` → ``lr``), floats to 4 significant digits, lists joined by ``-``:
``3_cost=log_likelihood,opt=adam``, ``7_lr=0.9316,sizes=784-100-10``. What varies is read from the sweep itself:
the overrides of ``multirun.yaml`` that are sweeps (``cost=quadratic,cross_entropy``), and an Optuna search's
``hydra.sweeper.params``. The job number keeps every name unique; the same sweep gets the same names again.

The name comes from the OmegaConf resolver ``nndl.job_name`` (conf/hydra/default.yaml), registered when this
module is imported — Hydra imports it with ``nndl.summary.SweepSummary``, the sweep callback, in every process that
runs a job (the joblib launcher's workers too).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

SHORT_KEYS = {"optimizer": "opt", "activation": "act", "activation@model.conv_activation": "conv_act",
              "max_epochs": "epochs", "batch_size": "batch"}  # fmt: skip
NAME_RESOLVER = "nndl.job_name"


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
