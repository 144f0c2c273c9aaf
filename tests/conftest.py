import shutil
from pathlib import Path

import pytest

from mnist_idx import write_mnist

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny MNIST files (600 training, 100 test images) shared by the tests that only read them."""
    return write_mnist(tmp_path_factory.mktemp("mnist"))


@pytest.fixture
def mnist_dir(tmp_path: Path, shared_mnist: Path) -> Path:
    """A private copy of the tiny MNIST files, for tests that damage them."""
    return Path(shutil.copytree(shared_mnist, tmp_path / "mnist"))
