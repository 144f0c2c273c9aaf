"""Every bad value of a run's config is a one-line ConfigError naming the key, before any data is read.

Composing only, no training. Composing costs Hydra about a quarter of a second, so each choice of config groups
(``model=cnn optimizer=adam``) is composed once; the ``key=value`` overrides of a case are then applied to a copy
as Hydra applies them after composing (``ConfigLoaderImpl._apply_overrides_to_config``: the same parser, the same
``+``).
"""

import ast
import copy
import inspect
import math
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

from nndl.config import compose
from nndl.errors import ConfigError
from nndl.validate import RULES, AnyOf, Bool, Kind, ListOf, Names, Num, OneOf, Rule, check_config

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir())
DEFAULTS = {k: v for d in OmegaConf.load(CONF / "train.yaml").defaults if not isinstance(d, str) for k, v in d.items()}
# The groups whose options set values (activation, cost and logger only choose a class); hparams_search not needed.
OPTIONS = [
    f"{group}={p.stem}"
    for group in ("model", "data", "optimizer", "scheduler", "trainer", "callbacks", "experiment")
    for p in sorted((CONF / group).glob("*.yaml"))
]

# (overrides as on the command line, the key the message must start with, the value it must show)
BAD = [
    (["optimizer.lr=-1"], "optimizer.lr", "=-1 "),
    (["optimizer.lr=abc"], "optimizer.lr", "=abc:"),
    (["optimizer.lr=0"], "optimizer.lr", "=0 "),
    (["optimizer.lr=inf"], "optimizer.lr", "=inf "),
    (["seed=abc"], "seed", "=abc:"),
    (["seed=-1"], "seed", "=-1 "),
    (["seed=true"], "seed", "=true:"),
    (["seed=4294967296"], "seed", "=4294967296 "),
    (["model.l2=-1"], "model.l2", "=-1 "),
    (["trainer.max_epochs=0"], "trainer.max_epochs", "=0 "),
    (["trainer.max_epochs=-1"], "trainer.max_epochs", "=-1 "),
    (["trainer.max_epochs=1.5"], "trainer.max_epochs", "=1.5:"),
    (["model.dropout=1.5"], "model.dropout", "=1.5 "),
    (["data.batch_size=0"], "data.batch_size", "=0 "),
    (["model.sizes=[784,0,10]"], "model.sizes", "=[784,0,10] "),
    (["model.sizes=[784,30,9]"], "model.sizes", "=[784,30,9] "),
    (["model.init=big"], "model.init", "='big' is not allowed: choose one of large, default"),
    (["model.backprop=numpy"], "model.backprop", "='numpy' "),
    (["optimizer=momentum", "optimizer.momentum=1.5"], "optimizer.momentum", "=1.5 "),
    (["optimizer=adam", "+optimizer.betas=[0.9,2]"], "optimizer.betas", "=[0.9,2] "),
    (["optimizer=rmsprop", "+optimizer.alpha=-0.5"], "optimizer.alpha", "=-0.5 "),
    (["scheduler=one_cycle", "scheduler.pct_start=0"], "scheduler.pct_start", "=0 "),
    (["scheduler=one_cycle", "optimizer.lr=-2"], "optimizer.lr", "=-2 "),  # before scheduler.max_lr=${optimizer.lr}
    (["model=cnn", "model.channels=[0]"], "model.channels", "=[0] "),
    (["model=cnn", "model.kernel_size=-3"], "model.kernel_size", "=-3 "),
    (["model=cnn", "model.channels=[16,32,64,128,256]"], "model.channels", "=[16,32,64,128,256] "),
    (["model=curve", "model.hidden=0"], "model.hidden", "=0 "),
    (["model=curve", "data.n_train=0"], "data.n_train", "=0 "),
    (["model=curve", "monitor=val/acc"], "monitor", "='val/acc' is not allowed: choose val/loss"),
    (["model=curve", "data=mnist"], "model=curve", " cannot train on data=mnist"),
    (["data=function"], "model=mlp", " cannot train on data=function"),
    (["data.train_size=0"], "data.train_size", "=0 "),
    (["data.train_size=60000"], "data.train_size", "=60000 "),
    (["data.expand=yes"], "data.expand", "=yes:"),
    (["threads=0"], "threads", "=0 "),
    (["monitor_mode=maximum"], "monitor_mode", "='maximum' "),
    (["trainer.precision=16-mixed"], "trainer.precision", "='16-mixed' "),
    (["+trainer.limit_train_batches=0"], "trainer.limit_train_batches", "=0 "),
    (["callbacks.divergence_guard.max_loss_ratio=0"], "callbacks.divergence_guard.max_loss_ratio", "=0 "),
    (["callbacks=early_stopping", "callbacks.early_stopping.patience=0"], "callbacks.early_stopping.patience", "=0 "),
    (["callbacks=eta_schedule", "callbacks.eta_schedule.stop_at=2"], "callbacks.eta_schedule.stop_at", "=2 "),
    (["model.l2=5", "optimizer.weight_decay=0.1"], "model.l2", "=5 "),
    (["model.backprop=manual", "model.dropout=0.5"], "model.dropout", "=0.5 "),
    (["model=cnn", "model.backprop=manual"], "model.backprop", "=manual is not allowed for the CNN"),
    (["data.seed=${nowhere}"], "data.seed", "=${nowhere} "),
    (
        ["callbacks=early_stopping", "callbacks.early_stopping.monitor=val/los"],
        "callbacks.early_stopping.monitor",
        "='val/los' is not allowed: choose one of val/acc, val/loss",
    ),
    (
        ["callbacks.model_checkpoint.monitor=val/loss"],
        "callbacks.model_checkpoint.monitor",
        "=val/loss is not allowed with monitor=val/acc",
    ),
    (["callbacks.model_checkpoint.mode=min"], "callbacks.model_checkpoint.mode", "=min is not allowed with monitor_"),
    (
        ["model=curve", "callbacks=eta_schedule", "monitor=val/loss", "callbacks.eta_schedule.monitor=val/acc"],
        "callbacks.eta_schedule.monitor",
        "='val/acc' is not allowed: choose one of val/loss, train/loss",
    ),
    (["trainer.devices=3"], "trainer.devices", "=3 is not allowed with Lightning's own sampler"),  # DDP chosen
    (["trainer.devices=[0,1]"], "trainer.devices", "=[0,1] is not allowed with Lightning's own sampler"),
    (["+trainer.num_nodes=2"], "trainer.num_nodes", "=2 is not allowed with Lightning's own sampler"),
    (["+trainer.strategy=ddp_spawn"], "trainer.strategy", "=ddp_spawn is not allowed with Lightning's own"),
    (["+trainer.gradient_clip_val=1.0"], "trainer.gradient_clip_val", "=1.0 is not allowed: the networks here"),
    (["+trainer.gradient_clip_val=-1"], "trainer.gradient_clip_val", "=-1 is out of range"),
    (["+trainer.accumulate_grad_batches=2"], "trainer.accumulate_grad_batches", "=2 is not allowed: every"),
    (["+trainer.accumulate_grad_batches=0"], "trainer.accumulate_grad_batches", "=0 is out of range"),
    (["tags=notalist"], "tags", "=notalist: not a list; it must be a list of names"),
    (["tags=[a,{b: 1}]"], "tags", "=[a,{'b': 1}] is not allowed: it must be a list of names"),
    (["+logger.foo=1"], "logger.foo", "=1 is not a setting of lightning.pytorch.loggers.TensorBoardLogger"),
    (["logger=many", "+logger.tensorboard.flush_sec=5"], "logger.tensorboard.flush_sec", "=5 is not a setting"),
]

GOOD = [
    [],
    *([option] for option in OPTIONS if option != "data=function"),  # data=function needs model=curve: in BAD
    ["data.train_size=1000", "+trainer.limit_val_batches=0", "threads=2", "trainer.precision=bf16-mixed"],
    ["trainer.precision=auto", "trainer.accelerator=auto", "trainer.devices=auto"],
    ["trainer.max_epochs=-1", "+trainer.max_time=00:00:10:00"],
    ["callbacks=early_stopping", "callbacks.early_stopping.monitor=train/loss", "callbacks.early_stopping.mode=min"],
    ["monitor=val/loss", "monitor_mode=min"],  # the checkpoint follows: ${monitor}, ${monitor_mode}
    ["+trainer.gradient_clip_val=0", "+trainer.accumulate_grad_batches=1"],  # Lightning's "off"
    ["model=cnn", "optimizer=sgd", "optimizer.lr=0.1", "data.batch_size=10", "activation@model.conv_activation=tanh"],
    [
        "+logger.flush_secs=10",
        "+logger.log_graph=true",
        "tags=[baseline,ch3,v1.2,2026]",
    ],  # SummaryWriter's and the logger's own
    ["logger=many", "+logger.tensorboard.max_queue=100", "+logger.csv.flush_logs_every_n_steps=10"],
]

Compose = Callable[[Sequence[str]], DictConfig]


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Compose:
    """``nndl.config.compose`` with the overrides, each choice of groups composed once for the whole module."""
    run_dir = tmp_path_factory.mktemp("run")
    composed: dict[tuple[str, ...], DictConfig] = {}

    def compose_copy(overrides: Sequence[str]) -> DictConfig:
        groups = tuple(o for o in overrides if o.split("=")[0].split("@")[0].lstrip("+~") in GROUPS)
        if len(groups) == 1 and DEFAULTS.get(groups[0].split("=")[0]) == groups[0].split("=")[1]:
            groups = ()  # e.g. model=mlp: the defaults
        if groups not in composed:
            cfg = compose(CONF, groups, run_dir)
            with open_dict(cfg):
                del cfg["hydra"]  # never looked at: copies of the rest are quicker
            composed[groups] = cfg
        cfg = copy.deepcopy(composed[groups])
        values = [o for o in overrides if o not in groups and o.split("=")[0] not in GROUPS]
        ConfigLoaderImpl._apply_overrides_to_config(OverridesParser.create().parse_overrides(values), cfg)
        return cfg

    return compose_copy


@pytest.mark.parametrize(("overrides", "key", "shown"), BAD, ids=[" ".join(case[0]) for case in BAD])
def test_a_bad_value_is_named(overrides: list[str], key: str, shown: str, configs: Compose):
    with pytest.raises(ConfigError) as raised:
        check_config(configs(overrides))
    message = str(raised.value)
    assert message.startswith(key + shown), message
    assert "\n" not in message


@pytest.mark.parametrize("overrides", GOOD, ids=[" ".join(o) or "defaults" for o in GOOD])
def test_the_defaults_and_every_preset_pass(overrides: list[str], configs: Compose):
    check_config(configs(overrides))


def test_the_issue_composed_from_the_command_line(tmp_path: Path):
    """The issue's cases, each composed by Hydra from its overrides alone (the rest of the file shares compositions)."""
    for override in ("optimizer.lr=abc", "seed=-1", "model.l2=-1", "trainer.max_epochs=0"):
        with pytest.raises(ConfigError, match="^" + override.replace(".", r"\.")):
            check_config(compose(CONF, [override], tmp_path))


def bad_values(kind: Kind) -> list[Any]:
    """Values that ``kind`` must refuse: of the wrong type, and just outside each of its bounds."""
    if isinstance(kind, Num):
        values: list[Any] = ["abc", True, math.nan]
        step = 1 if kind.integer else 0.5
        values += [] if kind.null else [None]
        values += [1.5] if kind.integer else []
        values += [math.inf] if kind.finite and kind.le is None and kind.lt is None else []
        values += [kind.gt] if kind.gt is not None else []
        values += [kind.ge - step] if kind.ge is not None else []
        values += [kind.lt] if kind.lt is not None else []
        values += [kind.le + step] if kind.le is not None else []
        return [v for v in values if v not in kind.also]
    if isinstance(kind, OneOf):
        return ["nonsense", 12345]
    if isinstance(kind, Bool):
        return ["yes", 1, *([] if kind.null else [None])]
    if isinstance(kind, ListOf):
        good = [good_value(kind.item)] * (kind.length or max(kind.min_length, 2))
        good[0], good[-1] = kind.first or good[0], kind.last or good[-1]
        values = ["abc", good + good] if kind.length else ["abc"]
        values += [good[:1]] if kind.min_length > 1 else [[]] if kind.min_length == 1 else []
        values += [[good[0], bad, good[-1]] for bad in bad_values(kind.item) if bad is not None]
        values += [[kind.first + 1, *good[1:]]] if kind.first is not None else []
        values += [[*good[:-1], kind.last + 1]] if kind.last is not None else []
        return values
    if isinstance(kind, Names):
        return ["abc", ["a b"], ["ok", None], [True], [["nested"]], [{"a": 1}]]
    assert isinstance(kind, AnyOf)
    return [v for v in ["nonsense", 0.0, -2, 1e9 + 0.5, [-1]] if all(k.problem(v) for k in kind.kinds)]


def good_value(kind: Num) -> float:
    """A value inside ``kind``'s bounds (lists of them are built around it)."""
    if kind.ge is not None:
        return kind.ge
    low = kind.gt if kind.gt is not None else 0
    high = kind.lt if kind.lt is not None else kind.le if kind.le is not None else low + 2
    return low + 1 if kind.integer else (low + high) / 2


BASES = [[], ["model=cnn"], ["model=curve"], ["+trainer.max_time=00:00:10:00"]]  # where each rule applies


@pytest.mark.parametrize("rule", RULES, ids=[f"{i:03d}-{rule.key}" for i, rule in enumerate(RULES)])
def test_every_rule_refuses_its_bad_values(rule: Rule, configs: Compose):
    """Each rule of the table, with each value it must refuse set in a config where the rule applies."""
    cfg = next(c for c in map(configs, BASES) if rule.when is None or rule.when(c))
    for value in bad_values(rule.kind):
        with open_dict(cfg):
            OmegaConf.update(cfg, rule.key, value, force_add=True)
        with pytest.raises(ConfigError) as raised:
            check_config(cfg)
        message = str(raised.value)
        assert message.startswith(f"{rule.key}="), message
        assert message.endswith(rule.kind.allowed) and "\n" not in message


def test_every_value_of_every_group_has_a_rule(configs: Compose):
    """A key that a config group gives a number, a boolean or a list is checked by a rule (or is listed here)."""
    unchecked = {
        "callbacks.model_checkpoint.save_last", "callbacks.model_checkpoint.auto_insert_metric_name",
        "callbacks.last_checkpoint.enable_version_counter", "callbacks.periodic_checkpoint.enable_version_counter",
    }  # fmt: skip
    unchecked_groups = ("logger.", "paths.")  # where nothing is a number: TensorBoard's options, directories
    ruled = {rule.key for rule in RULES}
    for option in OPTIONS:
        cfg = configs([option] if option != "data=function" else ["model=curve"])  # model=curve brings its data
        tree = OmegaConf.to_container(cfg, resolve=True)
        for key, value in leaves(tree):
            private = key.rsplit(".", 1)[-1].startswith("_")  # _partial_
            if (
                isinstance(value, int | float | bool | list)
                and not private
                and key not in unchecked
                and not key.startswith(unchecked_groups)
            ):
                assert key in ruled, f"{option}: {key}={value} has no rule in nndl.validate.RULES"


def leaves(tree: dict, prefix: str = "") -> list[tuple[str, Any]]:
    found = []
    for key, value in tree.items():
        if isinstance(value, dict):
            found += leaves(value, f"{prefix}{key}.")
        else:
            found.append((f"{prefix}{key}", value))
    return found


def constant(module: str, name: str) -> Any:
    """``name = ...`` at the top of ``src/nndl/<module>.py``, read without importing it (no torch: seconds saved);
    a dict gives its keys."""
    tree = ast.parse((ROOT / "src" / "nndl" / f"{module}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            if isinstance(node.value, ast.Dict):
                return tuple(ast.literal_eval(key) for key in node.value.keys)
            return ast.literal_eval(node.value)
    raise AssertionError(f"no {name} in src/nndl/{module}.py")


def test_the_copied_constants_agree_with_the_models_and_data():
    from nndl import validate

    assert validate.INITS == constant("models/mlp", "INITS")
    assert validate.BACKPROPS == constant("models/mlp", "BACKPROPS")
    assert validate.FUNCTIONS == constant("data/function", "FUNCTIONS")
    assert validate.NUM_CLASSES == constant("mnist_shape", "NUM_CLASSES")
    assert validate.IMAGE_SIZE == constant("mnist_shape", "IMAGE_SIZE")
    assert validate.MNIST_TRAIN_IMAGES == constant("data/mnist", "MNIST_TRAIN_IMAGES")
    assert constant("precision", "AUTO") in validate.PRECISIONS
    from lightning.pytorch.loggers import TensorBoardLogger
    from torch.utils.tensorboard import SummaryWriter

    own, passed_on = (set(inspect.signature(c.__init__).parameters) for c in (TensorBoardLogger, SummaryWriter))
    settings = (own | passed_on) - {"self", "kwargs", "log_dir"}
    assert set(validate.constants.TENSORBOARD_SETTINGS) == settings


def test_checking_imports_no_torch():
    code = "import sys, nndl.validate; sys.exit('torch' in sys.modules or 'lightning' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
