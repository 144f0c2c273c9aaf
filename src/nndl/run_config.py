"""A run's config from elsewhere, made safe to build: read, resolved once, checked, and only then built.

``scripts/eval.py``, ``predict.py`` and ``export.py`` rebuild a network from the composed config a training run
saved (``<run_dir>/.hydra/config.yaml``). That file may come from someone else, and Hydra's ``_target_`` builds
whatever it names, so it is treated as untrusted input. The rule, in order:

1. The file is read as YAML (a safe loader: no Python tags); the run's ``paths`` are replaced by this script's.
2. Its interpolations may only name other keys of the file (``${seed}``, ``${optimizer.lr}``): a resolver
   (``${oc.env:...}``, ``${anything:...}``) is refused. The whole config is then resolved, once, into plain
   containers; a string that still reads ``${`` afterwards (an escaped ``\\${...}``, which would come alive
   again when the config is re-created) is refused.
3. Only the groups that will be built are kept, with the top-level plain values (``seed``, ``monitor``). In
   them, every ``_target_`` must be one of ``BUILDABLE`` (``nndl.buildable``) — exact class names, each allowed
   in one place only (an optimizer where the optimizer goes, an activation where an activation goes);
   ``_partial_`` is allowed where the lab itself uses it (``PARTIAL``), and no other Hydra key (``_args_``,
   ``_recursive_``, ``_convert_``, ...) anywhere. Of the Trainer's settings only ``TRAINER_KEYS``, plain values,
   are kept.
4. The checked container is frozen (a read-only ``DictConfig``) and that very object is what gets built.

Anything else is refused with one line naming the key and the value, before anything is built or loaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import GrammarParseError, OmegaConfBaseException
from omegaconf.grammar.gen.OmegaConfGrammarParser import OmegaConfGrammarParser
from omegaconf.grammar_parser import parse

from nndl.buildable import check_targets
from nndl.errors import ConfigError

RUN_CONFIG = Path(".hydra") / "config.yaml"
MODEL_GROUPS = ("model", "cost", "activation", "optimizer", "scheduler")  # what nndl.build.build_model reads
REQUIRED_GROUPS = ("model", "cost", "activation", "optimizer")

# What an evaluation takes from the run's Trainer settings; the rest (loggers, callbacks, paths) is its own.
TRAINER_KEYS = ("accelerator", "devices", "precision", "deterministic")


def load_run_config(
    path: str | os.PathLike,
    groups: tuple[str, ...] = MODEL_GROUPS,
    paths: DictConfig | None = None,
    data: dict[str, Any] | None = None,
) -> DictConfig:
    """The run's config at ``path``, checked by the rule of this module: only ``groups`` (and ``trainer``'s
    ``TRAINER_KEYS``), resolved, read-only. ``paths``: this script's own (resolved here), in place of the run's
    (``default_paths`` when not given); ``data``: ``data.*`` values given on the command line, in place of the run's."""
    raw = _read(path)
    where = str(path)
    raw.paths = OmegaConf.create(_resolve(paths, "paths") if paths is not None else default_paths())
    for key, value in (data or {}).items():
        if not isinstance(raw.get("data"), DictConfig) or key not in raw.data:
            target = raw.data.get("_target_") if isinstance(raw.get("data"), DictConfig) else None
            raise ConfigError(f"data.{key}={value}: the run's data ({target or 'none'}) has no such setting")
        raw.data[key] = value
    for key, value in _strings(raw, ""):
        if _has_resolver(value):
            raise ConfigError(
                f"{where}: {key}={value!r} is not allowed: a run's config may only interpolate its own keys "
                "(${key}), not call resolvers"
            )
    resolved = _resolve(raw, where)
    for key, value in _strings(resolved, ""):
        if "${" in value:
            raise ConfigError(f"{where}: {key}={value!r} is not allowed: an interpolation left after resolving")
    _rename_old_settings(resolved)
    kept = {key: value for key, value in resolved.items() if not isinstance(value, dict | list)}  # seed, monitor
    kept.update({group: resolved[group] for group in groups if resolved.get(group) is not None})
    if isinstance(resolved.get("trainer"), dict):
        kept["trainer"] = {key: resolved["trainer"][key] for key in TRAINER_KEYS if key in resolved["trainer"]}
    for group in groups:
        if group in kept:
            check_targets(kept[group], group, where)
    for key, value in kept.get("trainer", {}).items():
        if isinstance(value, dict | list):
            raise ConfigError(f"{where}: trainer.{key}={value!r} is not allowed: a Trainer setting is a plain value")
    cfg = OmegaConf.create(kept)
    OmegaConf.set_readonly(cfg, True)
    return cfg


def _rename_old_settings(resolved: dict[str, Any]) -> None:
    """A run made before a setting was renamed still builds: ``data.mini_batches_per_step`` (until 2026-11-30)
    is ``data.examples_per_step`` = mini-batches per step × ``data.batch_size`` now."""
    data = resolved.get("data")
    if isinstance(data, dict) and "mini_batches_per_step" in data:
        per_step, batch_size = data.pop("mini_batches_per_step"), data.get("batch_size")
        if isinstance(per_step, int) and isinstance(batch_size, int):
            data.setdefault("examples_per_step", per_step * batch_size)


def default_paths() -> dict[str, str]:
    """What ``conf/paths/default.yaml`` gives outside a Hydra app, as plain strings."""
    root = os.environ.get("PROJECT_ROOT", ".")
    return {
        "root_dir": root,
        "data_dir": os.environ.get("NNDL_DATA_DIR", f"{root}/data"),
        "log_dir": f"{root}/outputs",
        "output_dir": ".",
    }


def _read(path: str | os.PathLike) -> DictConfig:
    try:
        cfg = OmegaConf.load(path)
    except (OSError, OmegaConfBaseException, ValueError) as err:  # yaml.YAMLError is a ValueError's sibling: below
        raise ConfigError(f"{path}: not a readable YAML config ({type(err).__name__}: {err})") from None
    except Exception as err:  # a YAML syntax error, or a tag the safe loader refuses (!!python/object)
        reason = " ".join(str(err).split())[:200]
        raise ConfigError(f"{path}: not a readable YAML config ({type(err).__name__}: {reason})") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{path} is not the composed config of a training run: it holds a list, not keys")
    missing = [group for group in REQUIRED_GROUPS if not isinstance(cfg.get(group), DictConfig)]
    if missing or "_target_" not in cfg.model:
        raise ConfigError(
            f"{path} is not the composed config of a training run (<run_dir>/{RUN_CONFIG}): "
            f"it has no {', '.join(missing) or 'model._target_'}"
        )
    return cfg


def _resolve(cfg: DictConfig, where: str) -> dict[str, Any]:
    try:
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as err:
        message = " ".join(str(err).split("\n")[:1])
        raise ConfigError(f"{where}: does not resolve ({type(err).__name__}: {message})") from None


def _has_resolver(value: str) -> bool:
    """Whether ``value`` calls a resolver anywhere, nested interpolations included (OmegaConf's own grammar)."""
    if "${" not in value:
        return False
    try:
        tree = parse(value, parser_rule="configValue", lexer_mode="DEFAULT_MODE")
    except GrammarParseError:
        return True  # not an interpolation OmegaConf can read: refused as well
    nodes = [tree]
    while nodes:
        node = nodes.pop()
        if isinstance(node, OmegaConfGrammarParser.InterpolationResolverContext):
            return True
        nodes.extend(getattr(node, "children", None) or [])
    return False


def _strings(node: Any, place: str) -> Iterator[tuple[str, str]]:
    """Every string value under ``node`` (a DictConfig read raw, without resolving, or plain containers)."""
    for key, value in _leaves(node, place):
        if isinstance(value, str):
            yield key, value


def _leaves(node: Any, place: str) -> Iterator[tuple[str, Any]]:
    """Every leaf under ``node`` with its full key: a DictConfig is read raw (interpolations as written)."""
    if isinstance(node, DictConfig | ListConfig) and not node._is_none() and not node._is_interpolation():
        keys = node.keys() if isinstance(node, DictConfig) else range(len(node))
        for key in keys:
            name = f"{place}[{key}]" if isinstance(key, int) else f"{place}.{key}" if place else str(key)
            yield from _leaves(node._get_node(key), name)
    elif isinstance(node, DictConfig | ListConfig):
        yield place, node._value()
    elif isinstance(node, dict | list):
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            name = f"{place}[{key}]" if isinstance(key, int) else f"{place}.{key}" if place else str(key)
            yield from _leaves(value, name)
    elif hasattr(node, "_value"):  # a leaf node of a DictConfig
        yield place, node._value()
    else:
        yield place, node
