"""Values read from the composed config as the run reads them: interpolations resolved, containers as plain lists
and dicts; a key the config does not have is ``ABSENT``, one that cannot be resolved a ``ConfigError``."""

from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from nndl.errors import ConfigError
from nndl.validate.constants import DATA, MODELS
from nndl.validate.kinds import show

ABSENT = object()  # what lookup returns for a key the config does not have


def _node(cfg: DictConfig, key: str, nodes: dict[str, Any]) -> Any:
    """The node at the dotted ``key`` as OmegaConf gives it, or ``ABSENT``; ``nodes`` keeps those already found."""
    if key not in nodes:
        parent_key, _, part = key.rpartition(".")
        parent = _node(cfg, parent_key, nodes) if parent_key else cfg
        # keys(): `in` on a DictConfig raises and catches an error for each missing key, many times slower
        if not isinstance(parent, DictConfig) or part not in parent.keys():  # noqa: SIM118
            nodes[key] = ABSENT
        else:
            try:
                nodes[key] = parent[part]
            except MissingMandatoryValue:
                raise ConfigError(f"{key}=??? is not set: give it a value ({key}=...)") from None
            except OmegaConfBaseException as err:
                _unresolved(key, OmegaConf.to_container(parent, resolve=False)[part], err)
    return nodes[key]


def lookup(cfg: DictConfig, key: str, nodes: dict[str, Any] | None = None) -> Any:
    """The value at the dotted ``key``, resolved (containers as plain lists and dicts); ``ABSENT`` if there is none."""
    value = _node(cfg, key, {} if nodes is None else nodes)
    if isinstance(value, DictConfig | ListConfig):
        try:
            return OmegaConf.to_container(value, resolve=True)
        except OmegaConfBaseException as err:
            _unresolved(key, OmegaConf.to_container(value, resolve=False), err)
    return value


def _unresolved(key: str, raw: Any, err: Exception) -> None:
    reason = str(err).splitlines()[0] if str(err) else type(err).__name__
    raise ConfigError(f"{key}={show(raw)} cannot be resolved: {reason}") from None


def get(cfg: DictConfig, key: str, default: Any = None) -> Any:
    """The value at the dotted ``key`` (as ``lookup``), or ``default`` if the config has no such key."""
    value = lookup(cfg, key)
    return default if value is ABSENT else value


def data_name(cfg: DictConfig) -> str | None:
    """The run's data as its group option names it (mnist, function), or ``None`` for one not of the lab."""
    return DATA.get(get(cfg, "data._target_"))


def model_name(cfg: DictConfig) -> str | None:
    """The run's model as its group option names it (mlp, cnn, curve), or ``None`` for one not of the lab."""
    return MODELS.get(get(cfg, "model._target_"))
