"""The loggers besides TensorBoard (conf/logger/): CSV for pandas, MLflow's tracking store, and several at once.

- ``logger=tensorboard`` (the default): TensorBoard's event files in the run directory.
- ``logger=csv``: ``metrics.csv`` (one row per logged step: the epoch-level scalars with their ``epoch``, the
  step-level ones with the update count as ``step``) and ``hparams.yaml`` in the run directory, offline.
- ``logger=mlflow``: MLflow (``pip install -e ".[mlflow]"``), into its SQLite tracking store
  ``outputs/mlflow.db`` shared by every run (``logger.tracking_uri=...`` for another store), experiment ``nndl``,
  each run named after its directory; see it with ``mlflow ui --backend-store-uri sqlite:///outputs/mlflow.db``.
- ``logger=many``: TensorBoard and CSV together.

``tensorboard_logger`` finds a run's TensorBoard logger among its loggers: the models' figures go there only.

A resumed run (``resume=<run_dir>``) continues its run directory's records: TensorBoard's and ``metrics.csv`` keep
what the interrupted run logged up to the checkpoint it resumes from and drop the rest, which the resumed run logs
again (``resume_settings``), so that no step is shown twice and none is lost; MLflow goes on with the
run directory's MLflow run.

``tags=[...]`` (conf/train.yaml) go into every logger: MLflow run tags (``<tag>: true``), the ``tags`` of
``hparams.yaml`` and of TensorBoard's HPARAMS, and the sweep's summary.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lightning.fabric.utilities.logger import _convert_params, _flatten_dict
from lightning.pytorch.loggers import CSVLogger as _CSVLogger
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.loggers import MLFlowLogger as _MLFlowLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

# The run directory holds Hydra's files before the logger starts: nothing to warn about, metrics.csv is its own.
warnings.filterwarnings("ignore", message=r".*Experiment logs directory .* exists and is not empty.*")


class CSVLogger(_CSVLogger):
    """Lightning's ``CSVLogger``, writing ``metrics.csv`` straight into ``save_dir`` (the run directory).

    ``purge_step`` and ``purge_epoch`` (a resumed run's): the rows of an existing ``metrics.csv`` that the resumed
    run will not log again are kept — step-level rows before ``purge_step`` (an update count, as TensorBoard's),
    epoch-level rows before ``purge_epoch`` — and the new rows follow them; Lightning's own writer deletes the
    file."""

    def __init__(
        self,
        save_dir: str,
        name: str = "",
        version: str = "",
        purge_step: int | None = None,
        purge_epoch: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(save_dir, name=name, version=version, **kwargs)
        self.purge_step, self.purge_epoch = purge_step, purge_epoch

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None and self.purge_step is not None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuedWriter(self.log_dir, self.purge_step, self.purge_epoch)
        return super().experiment


class _ContinuedWriter(ExperimentWriter):
    """Lightning's CSV writer continuing an interrupted run's ``metrics.csv``: its step-level rows before
    ``purge_step`` and epoch-level rows (those with an ``epoch``) before ``purge_epoch`` kept, the rest dropped,
    and so are its ``test/`` and ``hp/`` rows (the resumed run tests and reports again)."""

    def __init__(self, log_dir: str, purge_step: int, purge_epoch: int | None) -> None:
        self.purge_step, self.purge_epoch = purge_step, purge_epoch
        super().__init__(log_dir)

    def _kept(self, row: dict[str, str]) -> bool:
        if any(value for key, value in row.items() if key and key.startswith(("test/", "hp/"))):
            return False
        if row.get("epoch"):  # epoch-level: its step is the epoch too
            return self.purge_epoch is None or _number(row["epoch"]) < self.purge_epoch
        return _number(row.get("step")) < self.purge_step

    def _check_log_dir_exists(self) -> None:  # instead of deleting metrics.csv, as Lightning's writer does
        if not self._fs.isfile(self.metrics_file_path):
            return
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            reader = csv.DictReader(file)
            rows, header = list(reader), list(reader.fieldnames or [])
        with self._fs.open(self.metrics_file_path, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=header)
            writer.writeheader()
            writer.writerows(row for row in rows if self._kept(row))
        self.metrics_keys = header  # new rows are appended under it (Lightning rewrites it if keys are added)


def _number(text: str | None) -> float:
    try:
        return float(text or "nan")
    except ValueError:
        return float("nan")


def _run_dir() -> Path | None:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else None


class MLFlowLogger(_MLFlowLogger):
    """Lightning's ``MLFlowLogger``; the run named after its directory (a sweep job's shows what varies), its
    ``tags`` a list (each becomes the MLflow tag ``<tag>: true``) and the run directory the tag ``run_dir``.

    ``resumed`` (a resumed run's): the MLflow run of the same run directory goes on, rather than a second one
    with half the history. Parameters it already holds are not logged again (MLflow keeps a parameter's first
    value); one whose value changed (``trainer.max_epochs`` of a run trained longer) becomes a tag."""

    def __init__(
        self, tags: list[str] | None = None, run_name: str | None = None, resumed: bool = False, **kwargs: Any
    ) -> None:
        self._run_dir = _run_dir()
        mlflow_tags = {str(tag): "true" for tag in tags or []}
        if self._run_dir is not None:
            mlflow_tags["run_dir"] = str(self._run_dir)
            run_name = run_name or self._run_dir.name
        super().__init__(run_name=run_name, tags=mlflow_tags, **kwargs)
        self._continue = resumed and self._run_dir is not None and self._run_id is None

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        if self._continue:
            self._continue = False
            self._run_id = self._earlier_run()
            if self._run_id is not None:
                self._mlflow_client.update_run(self._run_id, status="RUNNING")
        return super().experiment

    def _earlier_run(self) -> str | None:
        """The id of the latest MLflow run of this run directory, in this logger's experiment, if there is one."""
        import mlflow

        mlflow.set_tracking_uri(self._tracking_uri)
        experiment = self._mlflow_client.get_experiment_by_name(self._experiment_name)
        if experiment is None:
            return None
        run_dir = str(self._run_dir)
        match = "" if "'" in run_dir else f"tags.run_dir = '{run_dir}'"  # else every run, compared below
        runs = self._mlflow_client.search_runs([experiment.experiment_id], match, order_by=["start_time DESC"])
        return next((run.info.run_id for run in runs if run.data.tags.get("run_dir") == run_dir), None)

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        from mlflow.entities import RunTag

        logged = self.experiment.get_run(self.run_id).data.params
        flat = {key: str(value)[:250] for key, value in _flatten_dict(_convert_params(params)).items()}
        changed = [RunTag(key, value) for key, value in flat.items() if key in logged and logged[key] != value]
        super().log_hyperparams({key: value for key, value in flat.items() if key not in logged})
        if changed:
            self.experiment.log_batch(run_id=self.run_id, tags=changed)


def many(**loggers: Logger) -> list[Logger]:
    """Several loggers at once (conf/logger/many.yaml): the Trainer takes a list."""
    return list(loggers.values())


def resume_settings(logger: DictConfig | None, step: int, epoch: int) -> dict[str, Any]:
    """The settings, for ``build(logger, **these)``, that make the loggers of the config ``logger`` (``logger=many``
    holds several) continue an interrupted run resumed from its checkpoint of update ``step``, going on in epoch
    ``epoch``: TensorBoard and CSV drop what it logged after the checkpoint (TensorBoard's ``purge_step``: the
    first step the resumed run logs again); MLflow goes on with its run."""

    def settings(node: Any) -> dict[str, Any] | None:
        target = str(node.get("_target_", "")) if isinstance(node, DictConfig) else ""
        if target.endswith("TensorBoardLogger"):
            return {"purge_step": step + 1}
        if target == f"{__name__}.CSVLogger":
            return {"purge_step": step + 1, "purge_epoch": epoch}
        return {"resumed": True} if target == f"{__name__}.MLFlowLogger" else None

    if not isinstance(logger, DictConfig):
        return {}
    own = settings(logger)
    if own is not None:
        return own
    return {key: found for key in logger if (found := settings(logger.get(key))) is not None}


def tensorboard_logger(loggers: Iterable[Logger]) -> TensorBoardLogger | None:
    """The run's TensorBoard logger, if it has one (``None`` with no logger or only others): figures and images
    go to TensorBoard only, the other loggers have no place for them."""
    return next((logger for logger in loggers if isinstance(logger, TensorBoardLogger)), None)
