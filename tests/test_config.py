"""Every option of every config group composes and instantiates; model=cnn brings its own defaults."""

from pathlib import Path

import pytest
import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from nndl.build import build_model, build_run
from nndl.config import compose
from nndl.costs import LogLikelihoodCost, QuadraticCost
from nndl.data import MNISTDataModule
from nndl.data.function import FunctionDataModule
from nndl.errors import ConfigError
from nndl.models import CNN, MLP
from nndl.precision import resolve_precision

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name not in ("hydra", "paths"))
OPTIONS = [(group, p.stem) for group in GROUPS for p in sorted((CONF / group).glob("*.yaml"))]


def compose_train(overrides: list[str], tmp_path: Path) -> DictConfig:
    return compose(CONF, overrides, tmp_path)


def test_every_group_has_options():
    assert {"data", "model", "cost", "activation", "optimizer", "trainer", "logger", "callbacks", "experiment"} <= set(
        GROUPS
    )
    assert {"quadratic", "cross_entropy", "log_likelihood"} <= {o for g, o in OPTIONS if g == "cost"}
    assert {"sigmoid", "tanh", "relu"} <= {o for g, o in OPTIONS if g == "activation"}
    assert {"sgd", "momentum", "adam", "rmsprop"} <= {o for g, o in OPTIONS if g == "optimizer"}
    assert {"one_cycle"} <= {o for g, o in OPTIONS if g == "scheduler"}


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_and_instantiates(group, option, tmp_path):
    cfg = compose_train([f"{group}={option}"], tmp_path)
    curve = cfg.model._target_.endswith("CurveFit")  # a function of one variable, not digits
    if curve != cfg.data._target_.endswith("FunctionDataModule"):  # e.g. data=function with model=mlp
        with pytest.raises(ConfigError, match="cannot train on data="):
            build_run(cfg)
        return
    model = build_model(cfg)
    x = torch.rand(2, 1) if curve else torch.rand(2, 1, 28, 28)
    assert model(x).shape == ((2, 1) if curve else (2, 10))
    if cfg.get("scheduler") or cfg.model.get("l2"):  # need the data (set_training_set) and the Trainer's epochs
        optimizer = instantiate(cfg.optimizer)(model.parameters())
        if cfg.get("scheduler"):
            schedule = instantiate(cfg.scheduler)(optimizer, total_steps=10)
            assert isinstance(schedule, torch.optim.lr_scheduler.LRScheduler)
    else:
        assert isinstance(model.configure_optimizers(), torch.optim.Optimizer)
    assert isinstance(instantiate(cfg.data), FunctionDataModule if curve else MNISTDataModule)
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        return  # composes; a Trainer for a GPU needs one
    precision, _ = resolve_precision(cfg.trainer.precision, cfg.trainer.accelerator)  # experiment=speedrun: auto
    trainer = instantiate(
        cfg.trainer, precision=precision, logger=instantiate(cfg.logger), callbacks=callbacks, enable_progress_bar=False
    )
    assert trainer.max_epochs == cfg.trainer.max_epochs


def test_default_is_the_books_first_network(tmp_path):
    cfg = compose_train([], tmp_path)
    model = build_model(cfg)
    assert isinstance(model, MLP) and model.sizes == [784, 30, 10] and model.init == "large"
    assert isinstance(model.cost, QuadraticCost) and isinstance(model.activation, torch.nn.Sigmoid)
    optimizer = model.configure_optimizers()
    assert type(optimizer) is torch.optim.SGD
    assert optimizer.defaults["lr"] == 3.0 and optimizer.defaults["momentum"] == 0
    assert cfg.data.batch_size == 10


def test_model_cnn_brings_the_notes_settings(tmp_path):
    cfg = compose_train(["model=cnn"], tmp_path)
    model = build_model(cfg)
    assert isinstance(model, CNN) and isinstance(model.cost, LogLikelihoodCost)
    optimizer = model.configure_optimizers()
    assert type(optimizer) is torch.optim.Adam and optimizer.defaults["lr"] == 1e-3
    assert cfg.data.batch_size == 50
    assert isinstance(model.features[1], torch.nn.ReLU) and isinstance(model.classifier[2], torch.nn.Sigmoid)


def test_command_line_overrides_the_models_defaults(tmp_path):
    cfg = compose_train(
        [
            "model=cnn",
            "cost=quadratic",
            "optimizer=sgd",
            "optimizer.lr=0.1",
            "data.batch_size=10",
            "activation@model.conv_activation=tanh",
            "activation=relu",
        ],
        tmp_path,
    )
    model = build_model(cfg)
    assert isinstance(model.cost, QuadraticCost)
    assert type(model.configure_optimizers()) is torch.optim.SGD and cfg.optimizer.lr == 0.1
    assert cfg.data.batch_size == 10
    assert isinstance(model.features[1], torch.nn.Tanh) and isinstance(model.classifier[2], torch.nn.ReLU)


def test_data_dir_from_environment_or_command_line(tmp_path, monkeypatch):
    monkeypatch.setenv("NNDL_DATA_DIR", "/somewhere/mnist")
    assert compose_train([], tmp_path).data.data_dir == "/somewhere/mnist"
    assert compose_train(["data.data_dir=/elsewhere"], tmp_path).data.data_dir == "/elsewhere"
    monkeypatch.delenv("NNDL_DATA_DIR")
    monkeypatch.setenv("PROJECT_ROOT", "/project")
    assert compose_train([], tmp_path).data.data_dir == "/project/data"


def test_run_writes_under_its_run_dir(tmp_path):
    cfg = compose_train([], tmp_path)
    assert cfg.logger.save_dir == str(tmp_path)
    assert cfg.callbacks.model_checkpoint.dirpath == f"{tmp_path}/checkpoints"
    assert cfg.trainer.default_root_dir == str(tmp_path)


def test_the_run_hands_the_model_its_training_set(shared_mnist, tmp_path):
    overrides = [f"data.data_dir={shared_mnist}", "data.val_size=100", "data.download=false"]
    run = build_run(compose_train([*overrides, "model.l2=1.0", "scheduler=one_cycle"], tmp_path))
    assert (run.model.n_train, run.model.updates_per_epoch) == (500, 50)  # L2's n; 50 mini-batches of 10 an epoch
    # one-cycle over 500 images in mini-batches of 125, one epoch: 4 updates, of which 0.25 rise
    too_short = [*overrides, "scheduler=one_cycle", "data.batch_size=125", "trainer.max_epochs=1"]
    with pytest.raises(ConfigError, match=r"scheduler.pct_start=0.25 of the run's 4 updates leaves"):
        build_run(compose_train(too_short, tmp_path))


def test_debug_options_compose(tmp_path):
    fast = compose(CONF, ["debug=fast"], tmp_path)
    assert (fast.trainer.max_epochs, fast.trainer.limit_train_batches, fast.trainer.num_sanity_val_steps) == (1, 2, 0)
    overfit = compose(CONF, ["debug=overfit", "model=cnn"], tmp_path)
    assert overfit.data.train_size == overfit.data.batch_size == 50 and overfit.trainer.max_epochs == 100
    profile = compose(CONF, ["debug=profile"], tmp_path)
    assert profile.trainer.profiler._target_.endswith("SimpleProfiler")
    assert compose(CONF, [], tmp_path).tags == []


@pytest.mark.parametrize(("search", "model"), [("mlp_optuna", "MLP"), ("cnn_optuna", "CNN")])
def test_every_search_sweeps_keys_of_its_config(tmp_path, search, model):
    """What the one search run above does not show of the other: each of its parameters a key of the config it
    composes (a renamed key would fail every trial), in the sweeper's syntax, and the study kept in SQLite."""
    cfg = compose(CONF, [f"hparams_search={search}"], tmp_path)
    assert cfg.model._target_ == f"nndl.models.{model}"
    assert cfg.hydra.sweeper.storage == f"sqlite:///{cfg.hydra.sweep.dir}/optuna.db"
    params = cfg.hydra.sweeper.params
    for override in OverridesParser.create().parse_overrides([f"{key}={value}" for key, value in params.items()]):
        assert OmegaConf.select(cfg, override.key_or_group) is not None, override.key_or_group
        assert override.is_sweep_override(), override
