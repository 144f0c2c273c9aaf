"""Running the project's scripts (and TensorBoard) as a user does, for the end-to-end tests: the one place that
knows how a script is started, so that no test file defines its own wrapper or imports another's."""

import atexit
import contextlib
import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver
import os
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import types
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ROOT = Path(__file__).resolve().parents[1]
VAL_SIZE = "data.val_size=100"  # of the tiny MNIST files' 600 training images, 100 validate
SERVER_TIMEOUT_S = 60
FIGURES = {"test/confusion_matrix", "test/most_confident_mistakes"}  # what a run draws at its test's end


def script_env(data_dir: Path | None) -> dict[str, str]:
    """The environment of a script: the tests' callbacks importable, ``NNDL_DATA_DIR=data_dir`` when given."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    if data_dir is not None:
        env["NNDL_DATA_DIR"] = str(data_dir)
    return env


# What every script imports (about 8 s a process on the project's 2-core machines, most of the suite's time):
# imported once per test worker by a fork server, from which each script's process is forked. The script itself
# (its module, Hydra, the run) starts afresh in every process. NNDL_TEST_FRESH_PROCESSES=1: a new interpreter per
# script instead, as a user starts one (CI's real-data checks in .ci/run start them so too).
PRELOAD = ["script_preload"]
FRESH = (
    os.environ.get("NNDL_TEST_FRESH_PROCESSES", "") not in ("", "0")
    or "forkserver" not in multiprocessing.get_all_start_methods()  # Windows
)
TIMEOUT_S = 300


def script_command(script: str, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "scripts" / f"{script}.py"), *args]


def run_script(script: str, *args: str, data_dir: Path | None = None) -> subprocess.CompletedProcess:
    """``python scripts/<script>.py <args>`` from the project's root, to its end; ``NNDL_DATA_DIR=data_dir`` when
    given. The tests' own callbacks (tests/kill_after.py, tests/rank_params.py) may be added as
    ``+callbacks.<name>``."""
    if FRESH:
        return subprocess.run(
            script_command(script, *args), env=script_env(data_dir), capture_output=True, text=True,
            timeout=TIMEOUT_S, cwd=ROOT,
        )  # fmt: skip
    process = start_script(script, *args, data_dir=data_dir)
    stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def start_script(script: str, *args: str, data_dir: Path | None = None) -> "subprocess.Popen | ForkedScript":
    """``run_script`` without waiting: the running process, for a test that signals it."""
    if FRESH:
        return subprocess.Popen(
            script_command(script, *args), env=script_env(data_dir), cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    return ForkedScript(script_command(script, *args), script_env(data_dir))


def fork_server() -> multiprocessing.context.ForkServerContext:
    """The test worker's fork server, started with ``PRELOAD`` imported on its first call. (Its environment is
    the scripts': Python 3.11's fork server takes its module path from ``PYTHONPATH``, not from the tests'.)"""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    environ = dict(os.environ)
    os.environ.update(script_env(None))
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        os.environ.clear()
        os.environ.update(environ)
    return context


class ForkedScript:
    """A script in a process forked from the test worker's fork server (``PRELOAD`` imported), with what the tests
    use of ``subprocess.Popen``: ``pid``, ``poll``, ``wait``, ``communicate``, ``send_signal``, ``terminate``,
    ``kill``, ``returncode``. Its stdout and stderr go to files, read by ``communicate``."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.args = args
        self._output = Path(tempfile.mkdtemp(prefix="nndl-script-"))
        self._streams: tuple[str, str] | None = None
        for name in ("stdout", "stderr"):
            (self._output / name).touch()
        self._process = fork_server().Process(
            target=_exec_script, args=(args[1:], env, str(ROOT), str(self._output)), daemon=False
        )
        main, sys.modules["__main__"] = sys.modules["__main__"], types.ModuleType("__main__")
        try:  # with no __main__ of the tests' own (pytest's) for the new process to import first
            self._process.start()
        finally:
            sys.modules["__main__"] = main
        self.pid = self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self._process.exitcode

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        try:
            self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.wait()
            raise
        if self._streams is None:
            self._streams = tuple((self._output / name).read_text(errors="replace") for name in ("stdout", "stderr"))
            shutil.rmtree(self._output)
        return self._streams

    def send_signal(self, signum: int) -> None:
        if self._process.exitcode is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _exec_script(args: list[str], env: dict[str, str], cwd: str, output: str) -> None:
    """In the forked process: become ``python <args>`` run in ``cwd`` with environment ``env``, its stdout and
    stderr in ``<output>/stdout`` and ``<output>/stderr``, and exit as the interpreter would."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.path[:0] = [path for path in env.get("PYTHONPATH", "").split(os.pathsep) if path]
    for fd, name in ((1, "stdout"), (2, "stderr")):
        file = os.open(os.path.join(output, name), os.O_WRONLY)
        os.dup2(file, fd)
        os.close(file)
    status, signum = 0, None
    try:
        sys.argv = list(args)
        runpy.run_path(args[0], run_name="__main__")
    except SystemExit as exit_:  # as the interpreter reads sys.exit's argument
        if exit_.code is None or isinstance(exit_.code, int):
            status = (exit_.code or 0) & 0xFF
        else:
            print(exit_.code, file=sys.stderr)
            status = 1
    except KeyboardInterrupt:  # uncaught, the interpreter ends by the signal itself
        signum = signal.SIGINT
    except BaseException:
        sys.excepthook(*sys.exc_info())
        status = 1
    # What the interpreter does at its end: wait for non-daemon threads, run the exit functions, flush.
    threading._shutdown()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    if signum is not None:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    os._exit(status)


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


def events(run_dir: Path) -> EventAccumulator:
    """The TensorBoard records of ``run_dir``, read with TensorBoard's own reader: every image and histogram."""
    accumulator = EventAccumulator(str(run_dir), size_guidance={"images": 0, "histograms": 0})
    accumulator.Reload()
    return accumulator
