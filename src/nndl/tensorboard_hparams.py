"""A run's hyperparameters in TensorBoard's HPARAMS tab, written with its hparams plugin.

Each run writes its session (its hparams, start and end) and final metrics; a sweep's runs also write the
experiment's configuration: its hparams, the swept ones marked as differing (the HPARAMS table ticks those first,
five columns by default), and its metrics, the monitored one first. Every key has one data type in every run of
a sweep, whatever its value, or TensorBoard drops the column.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

INTEGERS = {
    "params",
    "batch_size",
    "train_size",
    "max_epochs",
    "seed",
}  # numbers TensorBoard should not print as 5000.0
BOOLEANS = {"expand"}
STRINGS = {"model", "architecture", "cost", "activation", "conv_activation", "optimizer", "scheduler", "init",
           "experiment", "tags", "status", *INTEGERS}  # fmt: skip
FLOATS = {"lr", "momentum", "weight_decay", "l2", "dropout"}  # floats even where a run leaves them out


def tensorboard_value(name: str, value: Any) -> bool | float | str:
    """A value as TensorBoard's HPARAMS table shows it well. TensorBoard prints every number with 5 significant
    digits (``5000.0``, ``10.000``), so the integer keys go as text (``5000``), the same type in every run;
    any other number (``lr``, ``l2``, a swept key of no column) as a float, so that it sorts and plots as one."""
    if name in STRINGS:
        return str(value)
    if name in BOOLEANS or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int | float):
        return float(value)
    return str(value)


def tensorboard_type(name: str, value: Any = "") -> int:
    """The hparams plugin's data type of a key: the same in every run of a sweep, whatever its value."""
    from tensorboard.plugins.hparams import api_pb2

    if name in FLOATS:
        return api_pb2.DATA_TYPE_FLOAT64
    kind = type(tensorboard_value(name, value))
    return {bool: api_pb2.DATA_TYPE_BOOL, float: api_pb2.DATA_TYPE_FLOAT64}.get(kind, api_pb2.DATA_TYPE_STRING)


def write_tensorboard(
    writer: Any,
    hparams: Mapping[str, Any],
    metrics: Mapping[str, float],
    *,
    status: str,
    run_name: str,
    step: int,
    start_time: float | None = None,
    experiment: tuple[list[str], list[str]] | None = None,
    tags: list[str] | None = None,
) -> None:
    """Write the hparams plugin's data to a ``torch.utils.tensorboard.SummaryWriter``: the session's hparams
    and end, the final ``metrics`` as scalars, and (``experiment``: the differing and other hparam names, for a
    sweep) the experiment's configuration; the run's ``tags`` also as text (TEXT tab)."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
    from tensorboard.plugins.hparams.summary_v2 import hparams_pb

    def summary(tag: str, data: plugin_data_pb2.HParamsPluginData) -> summary_pb2.Summary:
        pb = summary_pb2.Summary()
        pb.value.add(tag=tag, metadata=metadata.create_summary_metadata(data), tensor=metadata.NULL_TENSOR)
        return pb

    values = {name: tensorboard_value(name, value) for name, value in hparams.items()}
    file_writer = writer._get_file_writer()
    if experiment is not None:
        differing, others = experiment
        infos = [
            api_pb2.HParamInfo(name=name, type=tensorboard_type(name, hparams.get(name, "")), differs=name in differing)
            for name in dict.fromkeys([*differing, *others])
        ]
        metric_infos = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag)) for tag in metrics]
        experiment_pb = api_pb2.Experiment(hparam_infos=infos, metric_infos=metric_infos)
        file_writer.add_summary(
            summary(metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment_pb))
        )
    file_writer.add_summary(hparams_pb(values, trial_id=run_name, start_time_secs=start_time))
    for tag, value in metrics.items():
        writer.add_scalar(tag, value, global_step=step)
    if tags:
        writer.add_text("tags", ", ".join(tags), global_step=step)
    end = plugin_data_pb2.SessionEndInfo(
        status=api_pb2.STATUS_FAILURE if status == "diverged" else api_pb2.STATUS_SUCCESS, end_time_secs=time.time()
    )
    file_writer.add_summary(
        summary(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end))
    )
    writer.flush()
