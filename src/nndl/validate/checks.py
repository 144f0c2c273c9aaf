"""``CHECKS``: the keys that depend on each other (a CNN that shrinks the image to nothing, ``model.l2`` with
``optimizer.weight_decay``), judged after every key alone has passed ``RULES``; and whether model and data go
together, judged before them."""

from collections.abc import Callable

from omegaconf import DictConfig, OmegaConf

from nndl.errors import ConfigError
from nndl.mnist_shape import IMAGE_SIZE
from nndl.validate.constants import MNIST_TRAIN_IMAGES, TENSORBOARD_SETTINGS
from nndl.validate.kinds import show
from nndl.validate.lookup import ABSENT, data_name, get, model_name


def check_model_fits_data(cfg: DictConfig) -> None:
    model, data = model_name(cfg), data_name(cfg)
    if model and data and (model == "curve") != (data == "function"):
        raise ConfigError(
            f"model={model} cannot train on data={data}: the digit classifiers (model=mlp, model=cnn) train on "
            "data=mnist, model=curve on data=function"
        )


def _check_train_size(cfg: DictConfig) -> None:
    train_size, val_size = get(cfg, "data.train_size"), get(cfg, "data.val_size")
    if data_name(cfg) == "mnist" and train_size is not None and val_size is not None:
        remain = MNIST_TRAIN_IMAGES - val_size
        if train_size > remain:
            raise ConfigError(
                f"data.train_size={train_size} is out of range: only {remain} of MNIST's {MNIST_TRAIN_IMAGES} "
                f"training images remain after data.val_size={val_size} for validation; it must be ≤ {remain} or null"
            )


def _check_cnn_fits_image(cfg: DictConfig) -> None:
    channels, kernel_size, padding, pool_size = (
        get(cfg, f"model.{name}") for name in ("channels", "kernel_size", "padding", "pool_size")
    )
    if None in (channels, kernel_size, padding, pool_size):
        return
    size = IMAGE_SIZE
    for _ in channels:  # each block: conv (stride 1), then max-pool; as nndl.models.CNN computes it
        size = (size + 2 * padding - kernel_size + 1) // pool_size
        if size < 1:
            raise ConfigError(
                f"model.channels={show(channels)} with model.kernel_size={kernel_size}, model.padding={padding} "
                f"and model.pool_size={pool_size} shrinks the 28×28 image to nothing: it must have fewer blocks, "
                "a smaller kernel or pool, or more padding"
            )


def _check_manual_backprop(cfg: DictConfig) -> None:
    dropout = get(cfg, "model.dropout")
    if get(cfg, "model.backprop") == "manual" and get(cfg, "model._target_") == "nndl.models.CNN":
        raise ConfigError(
            "model.backprop=manual is not allowed for the CNN: the book's four equations are the MLP's; choose "
            "fast or autograd"
        )
    if get(cfg, "model.backprop") == "manual" and dropout:
        raise ConfigError(
            f"model.dropout={dropout} is not allowed with model.backprop=manual: the book's four equations have no "
            "dropout; it must be 0"
        )


def _check_one_weight_decay(cfg: DictConfig) -> None:
    l2, weight_decay = get(cfg, "model.l2"), get(cfg, "optimizer.weight_decay")
    if l2 and weight_decay:
        raise ConfigError(
            f"model.l2={l2} is not allowed with optimizer.weight_decay={weight_decay}: set one of them, not both "
            "(model.l2 is the book's λ, on the weights only)"
        )


def _check_nesterov(cfg: DictConfig) -> None:
    momentum, dampening = get(cfg, "optimizer.momentum", 0), get(cfg, "optimizer.dampening", 0)
    if get(cfg, "optimizer.nesterov") and (momentum <= 0 or dampening != 0):
        raise ConfigError(
            f"optimizer.nesterov=true is not allowed with optimizer.momentum={momentum} and "
            f"optimizer.dampening={dampening}: it needs a momentum > 0 and dampening 0"
        )


DATA_PARALLEL = (
    "use trainer=ddp (trainer.devices=N, trainer.num_nodes=M), whose processes share every mini-batch as the book's "
    "SGD needs (it sets trainer.use_distributed_sampler=false: the lab shards each mini-batch itself)"
)


def _check_data_parallel(cfg: DictConfig) -> None:
    """Several processes (a DDP strategy, or devices > 1 or several nodes, where Lightning picks DDP itself) share
    every mini-batch only through the lab's own sharding: ``trainer=ddp``, ``use_distributed_sampler: false``."""
    if get(cfg, "trainer.use_distributed_sampler", True) is False:
        return
    strategy, devices, nodes = (get(cfg, f"trainer.{key}") for key in ("strategy", "devices", "num_nodes"))
    several = (
        ("trainer.strategy", strategy, str(strategy).startswith("ddp")),
        ("trainer.devices", devices, isinstance(devices, int) and devices > 1),
        ("trainer.devices", devices, isinstance(devices, list) and len(devices) > 1),
        ("trainer.num_nodes", nodes, isinstance(nodes, int) and nodes > 1),
    )
    for key, value, processes in several:
        if processes:
            raise ConfigError(
                f"{key}={show(value)} is not allowed with Lightning's own sampler, which would give each process "
                f"separate mini-batches: {DATA_PARALLEL}"
            )


def _check_tested_checkpoint(cfg: DictConfig) -> None:
    """The checkpoint a run tests is the one ``callbacks.model_checkpoint`` keeps; the run reports its best epoch
    by ``monitor``: the two must follow the same metric the same way."""
    for key, run_key in (("monitor", "monitor"), ("mode", "monitor_mode")):
        value, run_value = get(cfg, f"callbacks.model_checkpoint.{key}", ABSENT), get(cfg, run_key)
        if value is not ABSENT and value != run_value:
            raise ConfigError(
                f"callbacks.model_checkpoint.{key}={show(value)} is not allowed with {run_key}={show(run_value)}: "
                f"the run tests the checkpoint this callback keeps and reports its best epoch by {run_key}; set "
                f"{run_key}={show(value)} instead, which the callbacks follow"
            )


def _check_update_per_mini_batch(cfg: DictConfig) -> None:
    """Lightning's gradient clipping and accumulation wrap its automatic optimization, one optimizer step per
    Lightning step; the networks here make one update per mini-batch inside ``training_step`` (the book's loop:
    Lightning's manual optimization), where the Trainer refuses both."""
    clip = get(cfg, "trainer.gradient_clip_val")
    if clip:
        raise ConfigError(
            f"trainer.gradient_clip_val={clip} is not allowed: the networks here update once per mini-batch inside "
            "training_step (the book's SGD loop), where Lightning does not clip gradients; it must be 0 or null"
        )
    accumulate = get(cfg, "trainer.accumulate_grad_batches", 1)
    if accumulate != 1:
        batch_size = get(cfg, "data.batch_size")
        larger = f" (data.batch_size={batch_size * accumulate})" if isinstance(batch_size, int) else ""
        raise ConfigError(
            f"trainer.accumulate_grad_batches={accumulate} is not allowed: every mini-batch is one update of the "
            f"book's SGD; for larger mini-batches set data.batch_size{larger}; it must be 1"
        )


# The keys that depend on each other, judged after every key alone has passed RULES.
def _check_tensorboard_settings(cfg: DictConfig) -> None:
    """A TensorBoard logger passes the settings it does not know to SummaryWriter, which refuses an unknown one
    only when the run first logs: named here instead, as every other group's unknown keys are when built."""
    logger = OmegaConf.select(cfg, "logger")
    if not isinstance(logger, DictConfig):
        return
    nodes = [("logger", logger)] + [(f"logger.{key}", logger[key]) for key in logger.keys()]  # noqa: SIM118
    for path, node in nodes:
        target = node.get("_target_") if isinstance(node, DictConfig) else None
        if not str(target).endswith("TensorBoardLogger"):
            continue
        for key in node.keys():  # noqa: SIM118
            if not str(key).startswith("_") and key not in TENSORBOARD_SETTINGS:
                raise ConfigError(
                    f"{path}.{key}={show(get(cfg, f'{path}.{key}'))} is not a setting of {target} (nor of the "
                    f"SummaryWriter it passes its other settings to): remove it or check its spelling; its "
                    f"settings are {', '.join(TENSORBOARD_SETTINGS)}"
                )


CHECKS: tuple[Callable[[DictConfig], None], ...] = (
    _check_train_size,
    _check_cnn_fits_image,
    _check_manual_backprop,
    _check_one_weight_decay,
    _check_nesterov,
    _check_data_parallel,
    _check_update_per_mini_batch,
    _check_tested_checkpoint,
    _check_tensorboard_settings,
)
