"""Building a run from its config: seed, data, model, logger, callbacks and Trainer, each from its group.

Every object comes from its config group with ``hydra.utils.instantiate``: ``conf/`` holds the ingredients, this
module puts them together. ``nndl.train`` runs what ``build_run`` builds; ``scripts/eval.py``, ``predict.py``,
``export.py`` and ``bench.py`` build models and data the same way.
"""

import logging
import os
import re
import sys
import warnings
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig

from nndl.callbacks import EpochProgressBar, MovedRunDirectory
from nndl.data import MNISTDataModule
from nndl.errors import ConfigError, NNDLError
from nndl.interrupt import StopOnSignal
from nndl.loggers import resume_settings
from nndl.models import Classifier, Network
from nndl.precision import GPU_ACCELERATORS, resolve_precision
from nndl.validate.checks import DATA_PARALLEL

log = logging.getLogger(__name__)


@dataclass
class Run:
    """Everything one run trains with, built from its config."""

    datamodule: L.LightningDataModule
    model: Network
    trainer: L.Trainer
    logger: Logger


def build_run(cfg: DictConfig, resumed_at: tuple[int, int] | None = None) -> Run:
    """Seed, then build the data (checked and read before anything else), the model and the trainer; a run
    resumed from a checkpoint saved at (update, the epoch it goes on in) ``resumed_at`` continues its records
    (``nndl.loggers``)."""
    quiet_library_noise()
    check_accelerator(cfg.trainer.accelerator)
    set_threads(cfg.get("threads"))
    L.seed_everything(cfg.seed, workers=True)

    datamodule = build(cfg.data)
    datamodule.prepare_data()  # bad or missing files fail here, before anything is built
    datamodule.setup("fit")

    model = build_model(cfg)
    if isinstance(model, Classifier) != isinstance(datamodule, MNISTDataModule):
        choices = HydraConfig.get().runtime.choices
        raise ConfigError(
            f"model={choices.get('model')} cannot train on data={choices.get('data')}: the digit classifiers "
            "(model=mlp, model=cnn) train on data=mnist, model=curve on data=function"
        )
    model.set_training_set(datamodule.n_train, datamodule.mini_batches_per_epoch)  # L2's n, a schedule's length
    check_warmup(cfg, datamodule.mini_batches_per_epoch)
    # A resumed run's records drop what the interrupted one logged after its checkpoint: no step twice.
    logger = build(cfg.logger, **(resume_settings(cfg.logger, *resumed_at) if resumed_at is not None else {}))
    # callbacks.<name>=null turns one off, as in lightning-hydra-template
    callbacks = [build(c) for c in cfg.callbacks.values() if c is not None] + [StopOnSignal(), MovedRunDirectory()]
    progress_bar = cfg.trainer.enable_progress_bar
    if sys.stderr.isatty() if progress_bar is None else progress_bar:
        callbacks.append(EpochProgressBar())  # "Epoch 2 of 0–29"
    precision, why = resolve_precision(cfg.trainer.precision, cfg.trainer.accelerator)  # precision=auto: bf16 if native
    log.info(why)
    trainer: L.Trainer = build(
        cfg.trainer,
        precision=precision,
        logger=logger,
        callbacks=callbacks,
        enable_progress_bar=sys.stderr.isatty() if progress_bar is None else progress_bar,
    )
    check_processes(trainer.world_size, cfg.trainer)
    return Run(datamodule, model, trainer, logger)


def build_model(cfg: DictConfig) -> Network:
    """The model of conf/model, given the cost, hidden activation and optimizer of their own groups."""
    return build(
        cfg.model,
        cost=build(cfg.cost),
        activation=build(cfg.activation),
        optimizer=build(cfg.optimizer),
        scheduler=build(cfg.scheduler) if cfg.get("scheduler") else None,
        _convert_="all",  # plain lists in the model's hyperparameters, not OmegaConf containers
    )


def check_accelerator(accelerator: str) -> None:
    """``ConfigError`` for ``trainer.accelerator=gpu`` (``trainer=gpu``, or a run trained on a GPU) where torch sees
    no CUDA GPU."""
    if str(accelerator).lower() in GPU_ACCELERATORS and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator}, but this machine has no GPU: add trainer.accelerator=cpu (and "
            "trainer.devices=1) to run on the CPU, or trainer.accelerator=auto to let Lightning choose"
        )


def check_processes(world_size: int, trainer_cfg: DictConfig) -> None:
    """``ConfigError`` when the Trainer would train on several processes with Lightning's own sampler (devices=-1
    or auto where Lightning found several GPUs, a strategy given as an object, ...): each process would take
    separate mini-batches. The config's checks (``nndl.validate``) catch the plain cases before anything is read."""
    if world_size > 1 and trainer_cfg.get("use_distributed_sampler", True) is not False:
        raise ConfigError(
            f"trainer.devices={trainer_cfg.get('devices')} starts {world_size} processes with Lightning's own "
            f"sampler, which would give each process separate mini-batches: {DATA_PARALLEL}"
        )


def check_warmup(cfg: DictConfig, updates_per_epoch: int) -> None:
    """A schedule that rises over ``scheduler.pct_start`` of the run's updates (one-cycle) must rise over 2 or more:
    ``ConfigError`` when the run is too short for that."""
    warmup, epochs = (cfg.get("scheduler") or {}).get("pct_start"), cfg.trainer.get("max_epochs")
    if warmup is None or not epochs or epochs < 1:
        return
    total_steps = epochs * updates_per_epoch
    if warmup * total_steps <= 1:  # the rise would take one update or none
        raise ConfigError(
            f"scheduler.pct_start={warmup} of the run's {total_steps} updates leaves the schedule's rise under "
            "2 updates: train longer (trainer.max_epochs, data.train_size, data.batch_size) or raise pct_start"
        )


def build(config: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate``, letting the project's own errors (bad config values) through unwrapped."""
    try:
        return instantiate(config, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, NNDLError):
            raise cause from None
        found = re.search(r"full_key: ([\w.]+)", str(err))
        group = found.group(1) if found else None
        target = config.get("_target_") if hasattr(config, "get") else None
        unknown = re.search(r"unexpected keyword argument '(\w+)'", str(cause))
        if isinstance(cause, TypeError) and unknown:  # a key the class does not take (a typo, an old run)
            key = f"{group}.{unknown.group(1)}" if group else unknown.group(1)
            raise ConfigError(f"{key} is not a setting of {target}: remove it or check its spelling") from None
        refused = MisconfigurationException | ValueError | TypeError
        if isinstance(cause, refused) and str(target).startswith("lightning."):
            # Lightning refusing a value it was given (a Trainer's, a callback's): one line, the cause kept
            raise ConfigError(f"{group or target}: {' '.join(str(cause).split())}") from cause
        raise


def set_threads(threads: int | None) -> None:
    """Torch's intra-op threads: ``threads`` if set; under the joblib launcher the cores shared among its jobs."""
    if threads is None:
        hydra = HydraConfig.get()
        n_jobs = hydra.launcher.get("n_jobs") if "joblib" in str(hydra.launcher.get("_target_", "")) else None
        if n_jobs is None:
            return
        cores = os.cpu_count() or 1
        jobs = cores + 1 + n_jobs if n_jobs < 0 else n_jobs  # joblib's n_jobs=-1: one job per core
        asked = hydra.sweeper.get("n_jobs")  # an Optuna search launches this many trials at a time
        jobs = min(jobs, asked) if isinstance(asked, int) and asked > 0 else jobs
        threads = max(1, cores // min(max(jobs, 1), cores))
    if not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads={threads!r} is out of range: it must be an integer ≥ 1 or null (all cores)")
    torch.set_num_threads(threads)
    log.info(f"torch threads: {threads}")


def quiet_library_noise() -> None:
    """Keep the console to what a user of the lab needs."""
    # Hydra's handlers on the root logger print and file every message already; Lightning adds a console handler
    # of its own, which would print each of its messages twice.
    if logging.getLogger().hasHandlers():
        logging.getLogger("lightning").handlers.clear()
    # Lightning 2.6 advertises a cloud logger at every Trainer's start: nothing about the run.
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if _not_a_tip not in rank_zero.filters:
        rank_zero.addFilter(_not_a_tip)
    # The batches are cut from tensors in memory: worker processes would only add overhead.
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    # Raised inside Lightning itself with recent torch releases; nothing a user can act on.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # A resumed run writes on in its own checkpoints/ (a new run's directory is always its own, nndl.rundir).
    warnings.filterwarnings("ignore", message=r".*Checkpoint directory .* exists and is not empty.*")
    # The networks update inside training_step (manual optimization): a checkpoint within an epoch holds the
    # state after the step's updates, which is what a resumed run continues from.
    warnings.filterwarnings("ignore", message=r".*manual optimization and every_n_train_steps.*")


def _not_a_tip(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("💡 Tip")
