"""The classes a run's config from elsewhere may build, each in its place, and the check that it builds no other
(``nndl.run_config``, step 3)."""

from collections.abc import Iterator
from typing import Any

from nndl.errors import ConfigError

ACTIVATIONS = frozenset(f"torch.nn.{name}" for name in ("GELU", "Identity", "LeakyReLU", "ReLU", "Sigmoid", "Tanh"))
# The classes a run's config may build, by where they stand. Every _target_ of conf/ is here (a test checks it).
BUILDABLE: dict[str, frozenset[str]] = {
    "model": frozenset({"nndl.models.MLP", "nndl.models.CNN", "nndl.models.curve.CurveFit"}),
    "model.conv_activation": ACTIVATIONS,
    "cost": frozenset(
        f"nndl.costs.{name}" for name in ("QuadraticCost", "CrossEntropyCost", "LogLikelihoodCost", "SquaredError")
    ),
    "activation": ACTIVATIONS,
    "optimizer": frozenset({"torch.optim.SGD", "torch.optim.Adam", "torch.optim.RMSprop"}),
    "scheduler": frozenset({"torch.optim.lr_scheduler.OneCycleLR"}),
    "data": frozenset({"nndl.data.MNISTDataModule", "nndl.data.function.FunctionDataModule"}),
}
PARTIAL = frozenset({"activation", "model.conv_activation", "optimizer", "scheduler"})  # built later, with args


def check_targets(node: Any, place: str, where: str) -> None:
    """``ConfigError`` unless every Hydra key under ``node`` (the resolved group ``place``) is allowed."""
    for key, value in _hydra_keys(node, place):
        parent = key.rsplit(".", 1)[0]
        name = key.rsplit(".", 1)[1]
        if name == "_target_":
            allowed = BUILDABLE.get(parent)
            if allowed is None:
                raise ConfigError(f"{where}: {key}={value!r} is not allowed: nothing is built at {parent}")
            if value not in allowed:
                raise ConfigError(
                    f"{where}: {key}={value!r} is not allowed: {parent} may only build {', '.join(sorted(allowed))}"
                )
        elif name == "_partial_":
            if parent not in PARTIAL or not isinstance(value, bool):
                raise ConfigError(f"{where}: {key}={value!r} is not allowed here")
        else:
            raise ConfigError(f"{where}: {key}={value!r} is not allowed: a run's config may not use {name}")


def _hydra_keys(node: Any, place: str) -> Iterator[tuple[str, Any]]:
    """Every key of the form ``_name_`` under ``node``, with its full name and value."""
    if isinstance(node, dict):
        for key, value in node.items():
            full = f"{place}.{key}"
            if isinstance(key, str) and key.startswith("_") and key.endswith("_") and len(key) > 1:
                yield full, value
            yield from _hydra_keys(value, full)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _hydra_keys(item, f"{place}[{i}]")
