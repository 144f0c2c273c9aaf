"""The runs that tests of several modules read, made once per test session: a small sweep (TensorBoard's HPARAMS
and scalars, the CSV logger, the summary, the browser check) and a default run (what a run leaves, TensorBoard's
figures, histograms and server). The first xdist worker that asks makes a run, in a folder every worker of the
session sees; the others wait for it and read the same files. Import the fixtures into a test module with
``pytest_plugins = ["sweep_runs"]``."""

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock

from cli import run_script, train

# Four jobs, ``cost`` × ``optimizer``, two epochs each, TensorBoard and CSV, tagged.
SWEEP = ["-m", "cost=quadratic,cross_entropy", "optimizer=sgd,adam", "trainer.max_epochs=2", "data.val_size=100",
         "logger=many", "tags=[smoke,ci]"]  # fmt: skip
JOBS = ["0_cost=quadratic,opt=sgd", "1_cost=quadratic,opt=adam", "2_cost=cross_entropy,opt=sgd",
        "3_cost=cross_entropy,opt=adam"]  # fmt: skip
# The book's first network as it comes, for two epochs, with its weight and gradient histograms (off by default).
DEFAULT_RUN = ["trainer.max_epochs=2", "callbacks.histograms.every_n_epochs=1"]


@dataclass(frozen=True)
class Run:
    """A finished run of scripts/train.py: its directory and what it printed on stdout."""

    dir: Path
    stdout: str


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every xdist worker of this test session sees: the parent of the workers' own temporary folders (the
    session's temporary folder when there are no workers)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def made_once(directory: Path, make: Callable[[Path], None]) -> Path:
    """``directory``, made by ``make(directory)`` in the first worker that asks while the others wait for it; made
    again by the next one that asks where ``make`` failed."""
    done = directory.with_name(f"{directory.name}.done")
    with FileLock(directory.with_name(f"{directory.name}.lock")):
        if not done.exists():
            shutil.rmtree(directory, ignore_errors=True)
            make(directory)
            done.touch()
    return directory


@pytest.fixture(scope="session")
def four_run_sweep(shared_mnist: Path, session_dir: Path) -> Path:
    def make(sweep: Path) -> None:
        result = run_script("train", *SWEEP, f"hydra.sweep.dir={sweep}", data_dir=shared_mnist)
        assert result.returncode == 0, result.stderr[-3000:]

    return made_once(session_dir / "four_run_sweep", make)


@pytest.fixture(scope="session")
def sweep_jobs() -> list[str]:
    """The job directories of ``four_run_sweep``: named after what varies, in job order."""
    return JOBS


@pytest.fixture(scope="session")
def default_run(shared_mnist: Path, session_dir: Path) -> Run:
    stdout = session_dir / "default_run.stdout"

    def make(run: Path) -> None:
        result = train(shared_mnist, *DEFAULT_RUN, f"hydra.run.dir={run}")
        assert result.returncode == 0, result.stderr[-3000:]
        stdout.write_text(result.stdout)

    return Run(made_once(session_dir / "default_run", make), stdout.read_text())
