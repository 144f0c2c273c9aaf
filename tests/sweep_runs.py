"""One small sweep shared by the tests of what a sweep shows (TensorBoard's HPARAMS and scalars, the CSV logger,
the summary, the browser check): four jobs, ``cost`` × ``optimizer``, two epochs each, TensorBoard and CSV, tagged.
Import the fixture into a test module to use it; it runs once per test session."""

from pathlib import Path

import pytest

from cli import run_script

SWEEP = ["-m", "cost=quadratic,cross_entropy", "optimizer=sgd,adam", "trainer.max_epochs=2", "data.val_size=100",
         "logger=many", "tags=[smoke,ci]"]  # fmt: skip
JOBS = ["0_cost=quadratic,opt=sgd", "1_cost=quadratic,opt=adam", "2_cost=cross_entropy,opt=sgd",
        "3_cost=cross_entropy,opt=adam"]  # fmt: skip


@pytest.fixture(scope="session")
def four_run_sweep(shared_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    sweep = tmp_path_factory.mktemp("sweep") / "sweep"
    result = run_script("train", *SWEEP, f"hydra.sweep.dir={sweep}", data_dir=shared_mnist)
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep


@pytest.fixture(scope="session")
def sweep_jobs() -> list[str]:
    """The job directories of ``four_run_sweep``: named after what varies, in job order."""
    return JOBS
