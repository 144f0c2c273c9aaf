"""``RULES``: every key a user can set, one rule each, with the kind of value it takes.

A rule applies only where the config has its key (model=mlp has ``model.sizes``, model=cnn ``model.channels``; a
``+trainer.…`` key when given) and where its ``when`` holds. The keys that depend on each other are ``CHECKS``
(``nndl.validate.checks``).
"""

from collections.abc import Callable
from dataclasses import dataclass

from omegaconf import DictConfig

from nndl.mnist_shape import NUM_CLASSES, NUM_PIXELS
from nndl.validate.constants import (
    ACCELERATORS,
    BACKPROPS,
    FUNCTIONS,
    INITS,
    MNIST_TRAIN_IMAGES,
    MODES,
    PRECISIONS,
    SEED_MAX,
)
from nndl.validate.kinds import AnyOf, Bool, Kind, ListOf, Names, Num, OneOf
from nndl.validate.lookup import data_name, get, model_name


@dataclass(frozen=True)
class Rule:
    """``key`` (a dotted path in the composed config) takes a ``kind`` of value, where it exists and ``when`` holds."""

    key: str
    kind: Kind
    when: Callable[[DictConfig], bool] | None = None


def _unlimited_epochs_allowed(cfg: DictConfig) -> bool:
    """max_epochs=-1 trains until trainer.max_time; a schedule needs the run's length, so not with one."""
    return get(cfg, "trainer.max_time") is not None and get(cfg, "scheduler") is None


def _classifier(cfg: DictConfig) -> bool:
    return model_name(cfg) in ("mlp", "cnn")


def _curve(cfg: DictConfig) -> bool:
    return model_name(cfg) == "curve"


# Callbacks that follow a metric of their own (by default ${monitor}); the checkpoint's must be monitor (CHECKS)
STOPPERS = ("callbacks.early_stopping.monitor", "callbacks.eta_schedule.monitor")
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
    Rule("tags", Names()),
    # the metric the run and its callbacks follow: one the model does not log would stop the run after an epoch
    Rule("monitor", OneOf(("val/acc", "val/loss")), when=_classifier),
    Rule("monitor", OneOf(("val/loss",)), when=_curve),
    *(Rule(key, OneOf(("val/acc", "val/loss", "train/acc", "train/loss")), when=_classifier) for key in STOPPERS),
    *(Rule(key, OneOf(("val/loss", "train/loss")), when=_curve) for key in STOPPERS),
    Rule("monitor_mode", MODE),
    Rule("book_accuracy", Num(ge=0, le=1, null=True)),
    # conf/data: mnist (and function: batch_size, examples_per_step)
    Rule("data.batch_size", POSITIVE_INT),
    Rule("data.eval_batch_size", POSITIVE_INT),
    Rule("data.examples_per_step", POSITIVE_INT),  # one Lightning step: max(1, examples_per_step // batch_size) updates
    Rule("data.val_size", Num(integer=True, ge=1, le=MNIST_TRAIN_IMAGES - 1)),
    Rule("data.train_size", Num(integer=True, ge=1, null=True, text="an integer ≥ 1 or null (all of them)")),
    Rule("data.expand", Bool()),
    Rule("data.download", Bool()),
    Rule(
        "data.seed",
        Num(integer=True, ge=0, le=SEED_MAX, null=True, text=f"{SEED.allowed} or null"),
        when=lambda cfg: data_name(cfg) == "mnist",
    ),
    # conf/data: function
    Rule("data.function", OneOf(FUNCTIONS)),
    Rule("data.n_train", POSITIVE_INT),
    Rule("data.n_val", POSITIVE_INT),
    Rule("data.n_test", POSITIVE_INT),
    Rule("data.seed", SEED, when=lambda cfg: data_name(cfg) != "mnist"),
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
            first=NUM_PIXELS,
            last=NUM_CLASSES,
            text=f"a list of integers ≥ 1 that starts with {NUM_PIXELS} (the 28×28 input pixels) and ends with "
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
    Rule("trainer.gradient_clip_val", Num(ge=0, null=True)),  # and CHECKS: only 0 or null here
    Rule("trainer.accumulate_grad_batches", POSITIVE_INT),  # and CHECKS: only 1 here
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
