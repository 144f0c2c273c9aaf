"""Every value a user can set in a run's config, checked before anything is seeded, read or built.

``check_config(cfg)`` walks ``RULES``, one per key: the key's dotted path in the composed config, the kind of
value it takes (``Num``, ``OneOf``, ``Bool``, ``ListOf``, ``AnyOf``) and so what is allowed. A rule applies only
where the config has its key (model=mlp has ``model.sizes``, model=cnn ``model.channels``; a ``+trainer.…`` key
when given), and where its ``when`` holds. Then ``CHECKS`` judge the keys that depend on each other (a CNN that
shrinks the image to nothing, ``model.l2`` with ``optimizer.weight_decay``). The first value refused stops the run
with one line, ``<key>=<value> is out of range: it must be <what is allowed>``, as a ``ConfigError``.

Values are read as the run reads them, so interpolations (``data.seed: ${seed}``) resolve; one that cannot is a
``ConfigError`` naming its key. Nothing here imports torch or reads data: a bad value costs a fraction of a second.
The models and data modules keep their own checks; these come first, with the same words.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from nndl.errors import ConfigError

# What the models and data modules accept, repeated here so that checking needs no torch (tests/test_validate.py
# checks that they agree with nndl.models, nndl.costs, nndl.data and nndl.precision).
SEED_MAX = 2**32 - 1  # Lightning's seed_everything and numpy take seeds in [0, 2**32 - 1]
IMAGE_SIZE = 28
MNIST_INPUTS = IMAGE_SIZE * IMAGE_SIZE
NUM_CLASSES = 10
MNIST_TRAIN_IMAGES = 60_000
INITS = ("large", "default")
BACKPROPS = ("fast", "autograd", "manual")
FUNCTIONS = ("book",)
MODES = ("max", "min")
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "tpu", "auto")
# Lightning's precisions, less those with loss scaling (16-mixed), which Network.on_fit_start refuses; and auto:
# bf16-mixed where the hardware computes bf16 natively, else 32-true (nndl.precision).
PRECISIONS = ("32-true", "bf16-mixed", "auto", "bf16-true", "16-true", "64-true", 32, 64, "32", "64")
# The models and data modules by their _target_, as the run's group options name them.
MODELS = {"nndl.models.MLP": "mlp", "nndl.models.CNN": "cnn", "nndl.models.curve.CurveFit": "curve"}
DATA = {"nndl.data.MNISTDataModule": "mnist", "nndl.data.function.FunctionDataModule": "function"}

# How a value is refused; the message goes on with <allowed>.
OUT_OF_RANGE = " is out of range: it must be "
NOT_ALLOWED = " is not allowed: it must be "
NOT_A_CHOICE = " is not allowed: choose "  # as the models word it: model.init='zeros' is not allowed: choose one of ...


class Kind(Protocol):
    """What a key accepts: ``allowed`` says it in words; ``problem(value)`` is ``None``, or how ``value`` fails up to
    ``allowed`` (``OUT_OF_RANGE``, ``": not a number; it must be "``)."""

    @property
    def allowed(self) -> str: ...
    def problem(self, value: Any) -> str | None: ...


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(x)


@dataclass(frozen=True)
class Num:
    """A number (an int when ``integer``) within the bounds given, or one of ``also``, or null when ``null``.

    ``finite=False`` lets ±inf through (never nan); ``text`` says the range where the bounds alone read badly.
    """

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    integer: bool = False
    null: bool = False
    finite: bool = True
    also: tuple[int, ...] = ()
    text: str | None = None

    @property
    def allowed(self) -> str:
        if self.text:
            return self.text
        noun = "an integer" if self.integer else "a number"
        low = f"({_fmt(self.gt)}" if self.gt is not None else f"[{_fmt(self.ge)}" if self.ge is not None else None
        high = f"{_fmt(self.lt)})" if self.lt is not None else f"{_fmt(self.le)}]" if self.le is not None else None
        if low and high:
            text = f"{noun} in {low}, {high}"
        elif low:
            text = f"{noun} {'>' if self.gt is not None else '≥'} {low[1:]}"
        elif high:
            text = f"{noun} {'<' if self.lt is not None else '≤'} {high[:-1]}"
        else:
            text = noun
        extras = [*(_fmt(x) for x in self.also), *(["null"] if self.null else [])]
        return ", ".join([text, *extras[:-1]]) + f" or {extras[-1]}" if extras else text

    def problem(self, value: Any) -> str | None:
        if value is None and self.null:
            return None
        if not _is_number(value) or (self.integer and not isinstance(value, int)):
            return f": not {'an integer' if self.integer else 'a number'}; it must be "
        if value in self.also:
            return None
        if math.isnan(value) or (self.finite and math.isinf(value)):
            return " is not a finite number: it must be "
        if (
            (self.gt is not None and not value > self.gt)
            or (self.ge is not None and not value >= self.ge)
            or (self.lt is not None and not value < self.lt)
            or (self.le is not None and not value <= self.le)
        ):
            return OUT_OF_RANGE
        return None


@dataclass(frozen=True)
class OneOf:
    """One of ``choices``, of the same type (``true`` is not ``1``); a word that is not is shown quoted."""

    choices: tuple[Any, ...]

    @property
    def allowed(self) -> str:
        shown = list(dict.fromkeys(_show(c) for c in self.choices))
        return shown[0] if len(shown) == 1 else f"one of {', '.join(shown)}"

    def problem(self, value: Any) -> str | None:
        if any(type(value) is type(choice) and value == choice for choice in self.choices):
            return None
        return NOT_A_CHOICE


@dataclass(frozen=True)
class Bool:
    """``true`` or ``false`` (or null when ``null``)."""

    null: bool = False

    @property
    def allowed(self) -> str:
        return "true, false or null" if self.null else "true or false"

    def problem(self, value: Any) -> str | None:
        return None if isinstance(value, bool) or (value is None and self.null) else ": not a boolean; it must be "


@dataclass(frozen=True)
class ListOf:
    """A list of ``item`` values: ``length`` of them (or at least ``min_length``), starting with ``first`` and
    ending with ``last`` when given."""

    item: Num
    length: int | None = None
    min_length: int = 0
    first: int | None = None
    last: int | None = None
    text: str | None = None

    @property
    def allowed(self) -> str:
        if self.text:
            return self.text
        count = {1: "one", 2: "two", 3: "three"}.get(self.length or 0, str(self.length))
        noun = self.item.allowed.removeprefix("an ").removeprefix("a ").replace("integer", "integers", 1)
        noun = noun.replace("number", "numbers", 1)
        if self.length:
            return f"{count} {noun}"
        return f"a non-empty list of {noun}" if self.min_length else f"a list of {noun}"

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, list):
            return ": not a list; it must be "
        problems = [self.item.problem(x) for x in value]
        if any(p and p.startswith(":") for p in problems):
            return f": not a list of {'integers' if self.item.integer else 'numbers'}; it must be "
        if (
            any(problems)
            or (self.length is not None and len(value) != self.length)
            or len(value) < self.min_length
            or (self.first is not None and value and value[0] != self.first)
            or (self.last is not None and value and value[-1] != self.last)
        ):
            return OUT_OF_RANGE
        return None


@dataclass(frozen=True)
class AnyOf:
    """A value that one of ``kinds`` accepts."""

    kinds: tuple[Kind, ...]

    @property
    def allowed(self) -> str:
        texts = [kind.allowed for kind in self.kinds]
        return ", ".join(texts[:-1]) + f" or {texts[-1]}"

    def problem(self, value: Any) -> str | None:
        if any(kind.problem(value) is None for kind in self.kinds):
            return None
        return OUT_OF_RANGE if _is_number(value) or isinstance(value, list) else NOT_ALLOWED


@dataclass(frozen=True)
class Rule:
    """``key`` (a dotted path in the composed config) takes a ``kind`` of value, where it exists and ``when`` holds."""

    key: str
    kind: Kind
    when: Callable[[DictConfig], bool] | None = None


ABSENT = object()  # what _lookup returns for a key the config does not have


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


def _lookup(cfg: DictConfig, key: str, nodes: dict[str, Any] | None = None) -> Any:
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
    raise ConfigError(f"{key}={_show(raw)} cannot be resolved: {reason}") from None


def _get(cfg: DictConfig, key: str, default: Any = None) -> Any:
    value = _lookup(cfg, key)
    return default if value is ABSENT else value


def _show(value: Any) -> str:
    """A value as it is written on the command line: true, null, [784,30,10]."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "[" + ",".join(_show(x) for x in value) + "]"
    return str(value)


def _data(cfg: DictConfig) -> str | None:
    return DATA.get(_get(cfg, "data._target_"))


def _model(cfg: DictConfig) -> str | None:
    return MODELS.get(_get(cfg, "model._target_"))


def _unlimited_epochs_allowed(cfg: DictConfig) -> bool:
    """max_epochs=-1 trains until trainer.max_time; a schedule needs the run's length, so not with one."""
    return _get(cfg, "trainer.max_time") is not None and _get(cfg, "scheduler") is None


def _classifier(cfg: DictConfig) -> bool:
    return _model(cfg) in ("mlp", "cnn")


SEED = Num(integer=True, ge=0, le=SEED_MAX, text="an integer in [0, 2**32 - 1]")
POSITIVE_INT = Num(integer=True, ge=1)
COUNT = Num(integer=True, ge=0)
POSITIVE = Num(gt=0)
NON_NEGATIVE = Num(ge=0)
PROBABILITY = Num(ge=0, lt=1)  # dropout, momentum, betas: 1 would never forget (or drop everything)
FRACTION = Num(gt=0, lt=1)
BATCHES = AnyOf((POSITIVE_INT, Num(gt=0, le=1, text="a fraction in (0, 1]")))
MODE = OneOf(MODES)

RULES: tuple[Rule, ...] = (
    # conf/train.yaml
    Rule("seed", SEED),
    Rule("threads", Num(integer=True, ge=1, null=True, text="an integer ≥ 1 or null (all cores)")),
    Rule("monitor", OneOf(("val/acc", "val/loss")), when=_classifier),
    Rule("monitor", OneOf(("val/loss",)), when=lambda cfg: _model(cfg) == "curve"),
    Rule("monitor_mode", MODE),
    Rule("monitor_worst", Num(finite=False, text="a number (inf and -inf too)")),
    Rule("book_accuracy", Num(ge=0, le=1, null=True)),
    # conf/data: mnist
    Rule("data.batch_size", POSITIVE_INT),
    Rule("data.eval_batch_size", POSITIVE_INT),
    Rule("data.mini_batches_per_step", POSITIVE_INT),
    Rule("data.val_size", Num(integer=True, ge=1, le=MNIST_TRAIN_IMAGES - 1)),
    Rule("data.train_size", Num(integer=True, ge=1, null=True, text="an integer ≥ 1 or null (all of them)")),
    Rule("data.expand", Bool()),
    Rule("data.download", Bool()),
    Rule(
        "data.seed",
        Num(integer=True, ge=0, le=SEED_MAX, null=True, text=f"{SEED.allowed} or null"),
        when=lambda cfg: _data(cfg) == "mnist",
    ),
    # conf/data: function
    Rule("data.function", OneOf(FUNCTIONS)),
    Rule("data.n_train", POSITIVE_INT),
    Rule("data.n_val", POSITIVE_INT),
    Rule("data.n_test", POSITIVE_INT),
    Rule("data.seed", SEED, when=lambda cfg: _data(cfg) != "mnist"),
    # conf/optimizer
    Rule("optimizer.lr", POSITIVE),
    Rule("optimizer.momentum", PROBABILITY),
    Rule("optimizer.dampening", Num(ge=0, le=1)),
    Rule("optimizer.nesterov", Bool()),
    Rule("optimizer.betas", ListOf(PROBABILITY, length=2)),
    Rule("optimizer.alpha", PROBABILITY),
    Rule("optimizer.eps", POSITIVE),
    Rule("optimizer.weight_decay", NON_NEGATIVE),
    Rule("optimizer.amsgrad", Bool()),
    Rule("optimizer.fused", Bool(null=True)),
    Rule("optimizer.centered", Bool()),
    Rule("optimizer.maximize", Bool()),
    # conf/scheduler: one_cycle
    Rule("scheduler.max_lr", POSITIVE),
    Rule("scheduler.pct_start", FRACTION),
    Rule("scheduler.div_factor", POSITIVE),
    Rule("scheduler.final_div_factor", POSITIVE),
    Rule("scheduler.anneal_strategy", OneOf(("cos", "linear"))),
    Rule("scheduler.cycle_momentum", Bool()),
    Rule("scheduler.base_momentum", PROBABILITY),
    Rule("scheduler.max_momentum", PROBABILITY),
    Rule("scheduler.three_phase", Bool()),
    # conf/model: mlp, cnn, curve
    Rule(
        "model.sizes",
        ListOf(
            POSITIVE_INT,
            min_length=2,
            first=MNIST_INPUTS,
            last=NUM_CLASSES,
            text=f"a list of integers ≥ 1 that starts with {MNIST_INPUTS} (the 28×28 input pixels) and ends with "
            f"{NUM_CLASSES} (one output neuron per digit)",
        ),
    ),
    Rule("model.init", OneOf(INITS)),
    Rule("model.backprop", OneOf(BACKPROPS)),
    Rule("model.channels", ListOf(POSITIVE_INT)),
    Rule("model.kernel_size", POSITIVE_INT),
    Rule("model.padding", COUNT),
    Rule("model.pool_size", POSITIVE_INT),
    Rule("model.fc_sizes", ListOf(POSITIVE_INT)),
    Rule("model.batch_norm", Bool()),
    Rule("model.channels_last", Bool()),
    Rule("model.pool_first", Bool()),
    Rule("model.hidden", POSITIVE_INT),
    Rule("model.steepness", POSITIVE),
    Rule("model.function", OneOf(FUNCTIONS)),
    Rule("model.plot_every", POSITIVE_INT),
    Rule("model.dropout", PROBABILITY),
    Rule("model.l2", NON_NEGATIVE),
    # conf/trainer
    Rule("trainer.accelerator", OneOf(ACCELERATORS)),
    Rule(
        "trainer.devices",
        AnyOf(
            (
                Num(integer=True, ge=1, also=(-1,), text="an integer ≥ 1, -1 (all)"),
                OneOf(("auto",)),
                ListOf(COUNT, min_length=1, text="a non-empty list of device indices ≥ 0"),
            )
        ),
    ),
    Rule("trainer.num_nodes", POSITIVE_INT),
    Rule(
        "trainer.max_epochs",
        Num(integer=True, ge=1, text="an integer ≥ 1 (-1, no limit, only with trainer.max_time set and no scheduler)"),
        when=lambda cfg: not _unlimited_epochs_allowed(cfg),
    ),
    Rule(
        "trainer.max_epochs",
        Num(integer=True, ge=1, also=(-1,), text="an integer ≥ 1 or -1 (until trainer.max_time)"),
        when=_unlimited_epochs_allowed,
    ),
    Rule("trainer.min_epochs", Num(integer=True, ge=0, null=True)),
    Rule("trainer.max_steps", Num(integer=True, ge=1, also=(-1,))),
    Rule("trainer.min_steps", Num(integer=True, ge=0, null=True)),
    Rule("trainer.precision", OneOf(PRECISIONS)),
    Rule("trainer.check_val_every_n_epoch", Num(integer=True, ge=1, null=True)),
    Rule("trainer.val_check_interval", AnyOf((POSITIVE_INT, Num(gt=0, le=1, text="a fraction in (0, 1]")))),
    Rule("trainer.log_every_n_steps", POSITIVE_INT),
    Rule("trainer.limit_train_batches", BATCHES),
    Rule("trainer.limit_val_batches", AnyOf((COUNT, Num(ge=0, le=1, text="a fraction in [0, 1]")))),
    Rule("trainer.limit_test_batches", BATCHES),
    Rule("trainer.num_sanity_val_steps", Num(integer=True, ge=-1)),
    Rule("trainer.deterministic", OneOf((True, False, "warn"))),
    Rule("trainer.enable_progress_bar", Bool(null=True)),
    Rule("trainer.enable_checkpointing", Bool(null=True)),
    Rule("trainer.enable_model_summary", Bool(null=True)),
    # conf/callbacks
    Rule("trainer.use_distributed_sampler", Bool()),
    Rule("trainer.sync_batchnorm", Bool()),
    Rule("callbacks.model_checkpoint.mode", MODE),
    Rule("callbacks.model_checkpoint.save_top_k", Num(integer=True, ge=-1)),
    Rule("callbacks.periodic_checkpoint.every_n_train_steps", Num(integer=True, ge=0, text="an integer ≥ 0 (0: off)")),
    Rule("callbacks.periodic_checkpoint.save_top_k", Num(integer=True, ge=1, le=1, text="1 (it keeps last.ckpt)")),
    Rule("callbacks.last_checkpoint.save_top_k", Num(integer=True, ge=1, le=1, text="1 (it keeps last.ckpt)")),
    Rule("callbacks.divergence_guard.max_loss_ratio", Num(gt=1)),
    Rule("callbacks.divergence_guard.min_output_std", NON_NEGATIVE),
    Rule("callbacks.divergence_guard.tail", POSITIVE_INT),
    Rule("callbacks.divergence_guard.tail_batches", POSITIVE_INT),
    Rule("callbacks.histograms.every_n_epochs", Num(integer=True, ge=0, text="an integer ≥ 0 (0: off)")),
    Rule("callbacks.early_stopping.patience", POSITIVE_INT),
    Rule("callbacks.early_stopping.min_delta", NON_NEGATIVE),
    Rule("callbacks.early_stopping.mode", MODE),
    Rule("callbacks.eta_schedule.patience", POSITIVE_INT),
    Rule("callbacks.eta_schedule.stop_at", FRACTION),
    Rule("callbacks.eta_schedule.mode", MODE),
)


def _check_model_fits_data(cfg: DictConfig) -> None:
    model, data = _model(cfg), _data(cfg)
    if model and data and (model == "curve") != (data == "function"):
        raise ConfigError(
            f"model={model} cannot train on data={data}: the digit classifiers (model=mlp, model=cnn) train on "
            "data=mnist, model=curve on data=function"
        )


def _check_train_size(cfg: DictConfig) -> None:
    train_size, val_size = _get(cfg, "data.train_size"), _get(cfg, "data.val_size")
    if _data(cfg) == "mnist" and train_size is not None and val_size is not None:
        remain = MNIST_TRAIN_IMAGES - val_size
        if train_size > remain:
            raise ConfigError(
                f"data.train_size={train_size} is out of range: only {remain} of MNIST's {MNIST_TRAIN_IMAGES} "
                f"training images remain after data.val_size={val_size} for validation; it must be ≤ {remain} or null"
            )


def _check_cnn_fits_image(cfg: DictConfig) -> None:
    channels, kernel_size, padding, pool_size = (
        _get(cfg, f"model.{name}") for name in ("channels", "kernel_size", "padding", "pool_size")
    )
    if None in (channels, kernel_size, padding, pool_size):
        return
    size = IMAGE_SIZE
    for _ in channels:  # each block: conv (stride 1), then max-pool; as nndl.models.CNN computes it
        size = (size + 2 * padding - kernel_size + 1) // pool_size
        if size < 1:
            raise ConfigError(
                f"model.channels={_show(channels)} with model.kernel_size={kernel_size}, model.padding={padding} "
                f"and model.pool_size={pool_size} shrinks the 28×28 image to nothing: it must have fewer blocks, "
                "a smaller kernel or pool, or more padding"
            )


def _check_manual_backprop(cfg: DictConfig) -> None:
    dropout = _get(cfg, "model.dropout")
    if _get(cfg, "model.backprop") == "manual" and dropout:
        raise ConfigError(
            f"model.dropout={dropout} is not allowed with model.backprop=manual: the book's four equations have no "
            "dropout; it must be 0"
        )


def _check_one_weight_decay(cfg: DictConfig) -> None:
    l2, weight_decay = _get(cfg, "model.l2"), _get(cfg, "optimizer.weight_decay")
    if l2 and weight_decay:
        raise ConfigError(
            f"model.l2={l2} is not allowed with optimizer.weight_decay={weight_decay}: set one of them, not both "
            "(model.l2 is the book's λ, on the weights only)"
        )


def _check_nesterov(cfg: DictConfig) -> None:
    momentum, dampening = _get(cfg, "optimizer.momentum", 0), _get(cfg, "optimizer.dampening", 0)
    if _get(cfg, "optimizer.nesterov") and (momentum <= 0 or dampening != 0):
        raise ConfigError(
            f"optimizer.nesterov=true is not allowed with optimizer.momentum={momentum} and "
            f"optimizer.dampening={dampening}: it needs a momentum > 0 and dampening 0"
        )


def _check_data_parallel(cfg: DictConfig) -> None:
    strategy = str(_get(cfg, "trainer.strategy", "auto"))
    if strategy.startswith("ddp") and _get(cfg, "trainer.use_distributed_sampler", True) is not False:
        raise ConfigError(
            f"trainer.strategy={strategy} is not allowed with Lightning's own sampler, which would give each process "
            "separate mini-batches: use trainer=ddp (trainer.devices=N), whose processes share every mini-batch as "
            "the book's SGD needs"
        )


# The keys that depend on each other, judged after every key alone has passed RULES.
CHECKS: tuple[Callable[[DictConfig], None], ...] = (
    _check_train_size,
    _check_cnn_fits_image,
    _check_manual_backprop,
    _check_one_weight_decay,
    _check_nesterov,
    _check_data_parallel,
)


def check_config(cfg: DictConfig) -> None:
    """Raise ``ConfigError`` for the first value of the run's config that ``RULES`` or ``CHECKS`` refuse.

    One line: ``<key>=<value> is out of range: it must be <what is allowed>`` (or ``: not a number; it must be
    ...``, `` is not allowed: choose one of ...``). Whether model and data go together first, then ``RULES`` in
    order, then ``CHECKS``; ``hydra`` keys are not looked at. Reads no data and imports no torch.
    """
    _check_model_fits_data(cfg)  # before the rules: model=curve on data=mnist leaves ${data.function} unresolved
    nodes: dict[str, Any] = {}  # each section of the config looked up once
    for rule in RULES:
        if rule.when is not None and not rule.when(cfg):
            continue
        value = _lookup(cfg, rule.key, nodes)
        if value is ABSENT:
            continue
        problem = rule.kind.problem(value)
        if problem:
            shown = repr(value) if isinstance(rule.kind, OneOf) and isinstance(value, str) else _show(value)
            raise ConfigError(f"{rule.key}={shown}{problem}{rule.kind.allowed}")
    for check in CHECKS:
        check(cfg)
