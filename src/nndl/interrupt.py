"""A killed run says so: SIGTERM (what ``timeout`` and cluster schedulers send) and SIGINT (Ctrl+C) become
``Interrupted``, which ``nndl.train`` records (``metrics.json``: ``status: interrupted``, the epochs completed, the
last checkpoint) before the script exits with the shell's status for the signal, 128 + its number (143, 130).

Lightning's own SIGTERM handler only asks the loop to stop and ends the process with status 0, which a scheduler
reads as success. While the Trainer runs, the signal is only noted, and ``StopOnSignal`` raises ``Interrupted``
at the end of the Lightning step (a few hundred milliseconds at most): an exception raised at an arbitrary point
could leave a lock held (TensorBoard's writer, a checkpoint half written). Outside the Trainer it is raised at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import lightning as L

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(BaseException):
    """The run received ``signum``: not an ``Exception``, so that no ``except Exception`` on the way swallows it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.name}")

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class _State:
    received: int | None = None  # the signal noted while the Trainer runs
    deferred = False  # inside the Trainer: note the signal, StopOnSignal raises it


@contextmanager
def interruptible() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT end the run with ``Interrupted`` (in the main thread; elsewhere,
    nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if _State.deferred:
            _State.received = _State.received or signum
        else:
            raise Interrupted(signum)

    previous = {signum: signal.signal(signum, handler) for signum in SIGNALS}
    _State.received, _State.deferred = None, False
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
        _State.received, _State.deferred = None, False


class StopOnSignal(L.Callback):
    """Raise the noted signal as ``Interrupted`` between Lightning steps (training, validation and test), or at
    the start of the next epoch, once the last one's checkpoints are saved."""

    def _enter(self, *args: Any) -> None:
        _State.deferred = True

    def _leave(self, *args: Any) -> None:
        _State.deferred = False
        self._raise()

    def _raise(self, *args: Any) -> None:
        if _State.received is not None:
            signum, _State.received, _State.deferred = _State.received, None, False
            raise Interrupted(signum)

    # Not at an epoch's end: the checkpoints of the epoch are saved then, after every other callback.
    on_fit_start = on_test_start = _enter
    on_fit_end = on_test_end = _leave
    on_train_batch_end = on_validation_batch_end = on_test_batch_end = on_train_epoch_start = _raise

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        _State.deferred = False
