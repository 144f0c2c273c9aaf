import os
import shutil
from pathlib import Path

import pytest

from mnist_idx import write_mnist

pytest_plugins = ["sweep_runs"]  # the runs that tests of several modules read: four_run_sweep, default_run
# One torch thread per process: the tests run on one worker per core (pyproject's -n auto), and the scripts they
# start would otherwise each take every core, and wait on each other.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def shared_mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny MNIST files (600 training, 100 test images) shared by the tests that only read them."""
    return write_mnist(tmp_path_factory.mktemp("mnist"))


@pytest.fixture
def mnist_dir(tmp_path: Path, shared_mnist: Path) -> Path:
    """A private copy of the tiny MNIST files, for tests that damage them."""
    return Path(shutil.copytree(shared_mnist, tmp_path / "mnist"))


# Modules whose tests run the scripts end to end, in processes of their own (or a browser); elsewhere a test that
# does is marked @pytest.mark.e2e. `pytest -m "not e2e"` leaves them out for a fast lane; CI runs everything.
E2E_MODULES = {
    "test_browser", "test_checkpoints", "test_ddp", "test_launchers", "test_loggers", "test_predict", "test_resume",
    "test_resume_sweeps", "test_run_records", "test_sweeps", "test_tensorboard", "test_train",
}  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.module is not None and item.module.__name__ in E2E_MODULES:
            item.add_marker(pytest.mark.e2e)
