"""The loggers besides TensorBoard (conf/logger/): CSV for pandas, MLflow's tracking store, and several at once.

- ``logger=tensorboard`` (the default): TensorBoard's event files in the run directory.
- ``logger=csv``: ``metrics.csv`` (one row per logged step: the epoch-level scalars with their ``epoch``, the
  step-level ones with the update count as ``step``) and ``hparams.yaml`` in the run directory, offline.
- ``logger=mlflow``: MLflow (``pip install -e ".[mlflow]"``), into its SQLite tracking store
  ``outputs/mlflow.db`` shared by every run (``logger.tracking_uri=...`` for another store), experiment ``nndl``,
  each run named after its directory; see it with ``mlflow ui --backend-store-uri sqlite:///outputs/mlflow.db``.
- ``logger=many``: TensorBoard and CSV together.

``tensorboard_logger`` finds a run's TensorBoard logger among its loggers: the models' figures go there only.

``tags=[...]`` (conf/train.yaml) go into every logger: MLflow run tags (``<tag>: true``), the ``tags`` of
``hparams.yaml`` and of TensorBoard's HPARAMS, and the sweep's summary.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger as _CSVLogger
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.loggers import MLFlowLogger as _MLFlowLogger

# The run directory holds Hydra's files before the logger starts: nothing to warn about, metrics.csv is its own.
warnings.filterwarnings("ignore", message=r".*Experiment logs directory .* exists and is not empty.*")


class CSVLogger(_CSVLogger):
    """Lightning's ``CSVLogger``, writing ``metrics.csv`` straight into ``save_dir`` (the run directory)."""

    def __init__(self, save_dir: str, name: str = "", version: str = "", **kwargs: Any) -> None:
        super().__init__(save_dir, name=name, version=version, **kwargs)


def _run_dir() -> Path | None:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else None


class MLFlowLogger(_MLFlowLogger):
    """Lightning's ``MLFlowLogger``; the run named after its directory (a sweep job's shows what varies), its
    ``tags`` a list (each becomes the MLflow tag ``<tag>: true``) and the run directory the tag ``run_dir``."""

    def __init__(self, tags: list[str] | None = None, run_name: str | None = None, **kwargs: Any) -> None:
        run_dir = _run_dir()
        mlflow_tags = {str(tag): "true" for tag in tags or []}
        if run_dir is not None:
            mlflow_tags["run_dir"] = str(run_dir)
            run_name = run_name or run_dir.name
        super().__init__(run_name=run_name, tags=mlflow_tags, **kwargs)


def many(**loggers: Logger) -> list[Logger]:
    """Several loggers at once (conf/logger/many.yaml): the Trainer takes a list."""
    return list(loggers.values())


def tensorboard_logger(loggers: Iterable[Logger]) -> TensorBoardLogger | None:
    """The run's TensorBoard logger, if it has one (``None`` with no logger or only others): figures and images
    go to TensorBoard only, the other loggers have no place for them."""
    return next((logger for logger in loggers if isinstance(logger, TensorBoardLogger)), None)
