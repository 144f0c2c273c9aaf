"""Every value a user can set in a run's config, checked before anything is seeded, read or built.

``check_config(cfg)`` first asks whether model and data go together, then walks ``RULES`` (``rules.py``), one per
key: its dotted path in the composed config and the kind of value it takes (``Num``, ``OneOf``, ``Bool``,
``ListOf``, ``AnyOf``: ``kinds.py``), where the config has the key and the rule's ``when`` holds. Then ``CHECKS``
(``checks.py``) judge the keys that depend on each other. The first value refused stops the run with one line,
``<key>=<value> is out of range: it must be <what is allowed>``, as a ``ConfigError``.

Values are read as the run reads them (``lookup.py``), so interpolations (``data.seed: ${seed}``) resolve; one
that cannot is a ``ConfigError`` naming its key. Nothing here imports torch or reads data (``constants.py`` copies
what the models and data modules accept): a bad value costs a fraction of a second. The models and data modules
keep their own checks; these come first, with the same words.
"""

from typing import Any

from omegaconf import DictConfig

from nndl.errors import ConfigError
from nndl.mnist_shape import IMAGE_SIZE, NUM_CLASSES
from nndl.validate.checks import CHECKS, check_model_fits_data
from nndl.validate.constants import BACKPROPS, FUNCTIONS, INITS, MNIST_TRAIN_IMAGES, PRECISIONS
from nndl.validate.kinds import AnyOf, Bool, Kind, ListOf, Names, Num, OneOf, show
from nndl.validate.lookup import ABSENT, lookup
from nndl.validate.rules import RULES, Rule

__all__ = [
    "BACKPROPS", "CHECKS", "FUNCTIONS", "IMAGE_SIZE", "INITS", "MNIST_TRAIN_IMAGES", "NUM_CLASSES", "PRECISIONS",
    "RULES", "AnyOf", "Bool", "Kind", "ListOf", "Names", "Num", "OneOf", "Rule", "check_config",
]  # fmt: skip


def check_config(cfg: DictConfig) -> None:
    """Raise ``ConfigError`` for the first value of the run's config that ``RULES`` or ``CHECKS`` refuse.

    One line: ``<key>=<value> is out of range: it must be <what is allowed>`` (or ``: not a number; it must be
    ...``, `` is not allowed: choose one of ...``). Whether model and data go together first, then ``RULES`` in
    order, then ``CHECKS``; ``hydra`` keys are not looked at, nor keys without a rule. Reads no data and imports
    no torch.
    """
    check_model_fits_data(cfg)  # before the rules: model=curve on data=mnist leaves ${data.function} unresolved
    nodes: dict[str, Any] = {}  # each section of the config looked up once
    for rule in RULES:
        if rule.when is not None and not rule.when(cfg):
            continue
        value = lookup(cfg, rule.key, nodes)
        if value is ABSENT:
            continue
        problem = rule.kind.problem(value)
        if problem:
            shown = repr(value) if isinstance(rule.kind, OneOf) and isinstance(value, str) else show(value)
            raise ConfigError(f"{rule.key}={shown}{problem}{rule.kind.allowed}")
    for check in CHECKS:
        check(cfg)
