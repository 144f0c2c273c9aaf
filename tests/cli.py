"""Running the project's scripts (and TensorBoard) as a user does, for the end-to-end tests: the one place that
knows how a script is started, so that no test file defines its own wrapper or imports another's."""

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VAL_SIZE = "data.val_size=100"  # of the tiny MNIST files' 600 training images, 100 validate
SERVER_TIMEOUT_S = 60


def script_env(data_dir: Path | None) -> dict[str, str]:
    """The environment of a script: the tests' callbacks importable, ``NNDL_DATA_DIR=data_dir`` when given."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    if data_dir is not None:
        env["NNDL_DATA_DIR"] = str(data_dir)
    return env


def run_script(script: str, *args: str, data_dir: Path | None = None) -> subprocess.CompletedProcess:
    """``python scripts/<script>.py <args>`` from the project's root, to its end; ``NNDL_DATA_DIR=data_dir`` when
    given. The tests' own callbacks (tests/kill_after.py, tests/rank_params.py) may be added as
    ``+callbacks.<name>``."""
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / f"{script}.py"), *args],
        env=script_env(data_dir),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def start_script(script: str, *args: str, data_dir: Path | None = None) -> subprocess.Popen:
    """``run_script`` without waiting: the running process, for a test that signals it."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / f"{script}.py"), *args],
        env=script_env(data_dir),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def train(data_dir: Path, *overrides: str, val_size: bool = True) -> subprocess.CompletedProcess:
    """``scripts/train.py <overrides>`` on the MNIST files in ``data_dir``, 100 of their training images validating
    (``val_size=False``: the config's own split, for data that is not MNIST)."""
    return run_script("train", *overrides, *([VAL_SIZE] if val_size else []), data_dir=data_dir)


def killed_after(*settings: str) -> list[str]:
    """The overrides that add the tests' callback tests/kill_after.py: the run sends itself SIGTERM as a scheduler
    would, at ``settings`` of ``KillAfter`` (``"epochs=2"``, ``"steps=13"``; ``"job=1"`` in a sweep)."""
    return ["+callbacks.kill._target_=kill_after.KillAfter", *(f"+callbacks.kill.{setting}" for setting in settings)]


def forget_killer(*saved: Path) -> None:
    """``killed_after``'s overrides removed from the files a run saved them in (``.hydra/overrides.yaml``,
    ``multirun.yaml``): the killer is the test's, not the run's, and a resumed run sees the command line a
    scheduler's kill would have left."""
    for file in saved:
        file.write_text("".join(line for line in file.read_text().splitlines(True) if "callbacks.kill" not in line))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it has not ended in 15 s."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def tensorboard(logdir: Path, log: Path, *options: str) -> Iterator[str]:
    """``tensorboard --logdir logdir <options>`` on 127.0.0.1 and a free port, its output in ``log``; yields its
    base URL once it answers, and stops it at the end."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1",
             "--port", str(port), *options],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + SERVER_TIMEOUT_S
            while True:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, f"TensorBoard did not answer at {base} in {SERVER_TIMEOUT_S} s"
                with contextlib.suppress(OSError):  # not listening yet (URLError, ConnectionError are OSErrors)
                    urllib.request.urlopen(f"{base}/data/runs", timeout=5).read()
                    break
                time.sleep(0.2)
            yield base
        finally:
            stop(server)
