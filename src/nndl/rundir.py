"""Every run owns its directory: a Hydra callback that checks it before Hydra writes anything there.

Run and sweep directories end in a process's own ``NNDL_RUN_ID`` (``nndl.cli.prepare``), so two runs started in
the same second land apart. A directory given by hand (``hydra.run.dir=...``, ``hydra.sweep.dir=...``) that already
holds a run is refused, with one line, before its config, checkpoints or events can be overwritten or mixed with
another run's; so is one that cannot be written, with the key that moves it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

# What a run leaves in its directory (conf/hydra, conf/callbacks, conf/logger, nndl.train, nndl.summary).
RUN_FILES = (".hydra", "metrics.json", "checkpoints", "multirun.yaml", "summary.md")


def holds_run(path: Path) -> str | None:
    """The first sign that ``path`` holds a run (a file name), or ``None``."""
    if not path.is_dir():
        return None
    for name in RUN_FILES:
        if (path / name).exists():
            return name
    found = next(path.glob("events.out.tfevents.*"), None) or next(path.glob("*.ckpt"), None)  # a checkpoints/
    return found.name if found else None


def check_writable(path: Path, key: str) -> None:
    """Create ``path`` and write a file into it, or stop with one line naming ``key``."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        _stop(f"cannot write the run's directory {path} ({err.strerror or err}): give a writable one with "
              f"{key}=<dir>, or move all outputs with paths.log_dir=<dir>")  # fmt: skip


class FreshRunDirectory(Callback):
    """Refuse to start a run (``on_run_start``) or a sweep (``on_multirun_start``) in a directory that holds one."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if os.environ.get("LOCAL_RANK", "0") != "0":  # a data-parallel process of the run that made the directory
            return
        run_dir = Path(config.hydra.run.dir)
        found = None if config.get("resume") else holds_run(run_dir)  # resume=<run_dir>: its own directory
        if found:
            _stop(f"hydra.run.dir={run_dir} already holds a run ({found}): a new run needs a directory of its own")
        if config.get("resume") in (True, "auto"):  # the run there must be this one (resume=<run_dir> is, by make)
            same_run(run_dir, list(config.hydra.overrides.task))
        check_writable(run_dir, "hydra.run.dir")
        lock(run_dir)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """A sweep's job holds its directory's lock while it runs (a single run holds it from ``on_run_start``)."""
        if config.hydra.mode == RunMode.MULTIRUN and os.environ.get("LOCAL_RANK", "0") == "0":
            lock(Path(config.hydra.runtime.output_dir))

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if config.hydra.mode == RunMode.MULTIRUN:
            unlock(Path(config.hydra.runtime.output_dir))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if config.get("resume") in (True, "auto"):  # before Hydra writes into a job's directory again
            going = next((d for d in sorted(sweep_dir.glob("*")) if d.is_dir() and running(d)), None)
            if going is not None:
                _stop(f"hydra.sweep.dir={sweep_dir} is in use: its job {going.name} is still going (its process "
                      f"holds {LOCK}); wait for the sweep to end or stop it, then resume")  # fmt: skip
        if config.get("resume") is True:
            searched = list((OmegaConf.select(config, "hydra.sweeper.params") or {}).keys())
            same_sweep(sweep_dir, list(config.hydra.overrides.task), searched)
            return
        if config.get("resume") == "auto":  # each job goes on from what its directory holds, if anything
            if (sweep_dir / "multirun.yaml").is_file():  # submitted before: the same sweep only
                same_sweep(sweep_dir, list(config.hydra.overrides.task))
            check_writable(sweep_dir, "hydra.sweep.dir")
            return
        found = holds_run(sweep_dir) or next(
            (f"{d.name}/{holds_run(d)}" for d in sorted(sweep_dir.glob("*")) if d.is_dir() and holds_run(d)), None
        )
        if found:
            _stop(
                f"hydra.sweep.dir={sweep_dir} already holds a sweep ({found}): a new sweep needs a directory of its own"
            )
        check_writable(sweep_dir, "hydra.sweep.dir")


LOCK = ".lock"
_held: dict[Path, int] = {}  # the open lock files of this process's runs, released when it ends, however it ends


def lock(run_dir: Path) -> None:
    """Hold ``<run_dir>/.lock`` for as long as this process lives, or stop if another live process holds it: a
    run resumed while it still trains would write into the same files. The operating system releases the lock
    when the process ends, killed or not, so none is ever left behind."""
    if fcntl is None:  # not a POSIX system: no locking
        return
    fd = os.open(run_dir / LOCK, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        _stop(f"hydra.run.dir={run_dir} is in use: a run there is still going (its process holds {LOCK}); wait "
              "for it to end or stop it, then resume")  # fmt: skip
    except OSError as err:  # a file system without locks (some NFS, Lustre, FUSE mounts): go on without one
        os.close(fd)
        print(f"warning: {run_dir / LOCK} cannot be locked ({err.strerror or err}): a run resumed while this one "
              "goes on would not be stopped", file=sys.stderr)  # fmt: skip
        return
    _held[run_dir] = fd


def unlock(run_dir: Path) -> None:
    """Let go of ``run_dir``'s lock (a sweep's job that ended: the sweep's process goes on with the next)."""
    fd = _held.pop(run_dir, None)
    if fd is not None:
        os.close(fd)


def running(run_dir: Path) -> bool | None:
    """Whether a live process holds ``run_dir``'s lock: ``None`` when the run holds none (a run from before the
    lock, or a system without ``fcntl``), so that it cannot be told."""
    if fcntl is None or not (run_dir / LOCK).is_file():
        return None
    if run_dir in _held:
        return True
    try:
        fd = os.open(run_dir / LOCK, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # taken and given back at once: nobody holds it
        return False
    except BlockingIOError:
        return True
    except OSError:  # a file system without locks: cannot be told
        return None
    finally:
        os.close(fd)


def same_sweep(sweep_dir: Path, overrides: list[str], searched: list[str] | None = None) -> None:
    """Stop unless ``sweep_dir`` holds a sweep of the same ``overrides`` (``resume=`` aside) to resume. An Optuna
    search writes no ``multirun.yaml``: its trials' command lines, less the ``searched`` keys, are compared."""
    saved = sweep_dir / "multirun.yaml"
    if saved.is_file():
        before = OmegaConf.select(OmegaConf.load(saved), "hydra.overrides.task", default=[]) or []
    elif (sweep_dir / "optuna.db").is_file():
        trials = sorted(sweep_dir.glob("*/.hydra/overrides.yaml"))
        if not trials:  # stopped before its first trial started: the study alone
            return
        keys = set(searched or [])
        before = [o for o in OmegaConf.load(trials[0]) if o.split("=", 1)[0].lstrip("+~") not in keys]
    else:
        _stop(f"hydra.sweep.dir={sweep_dir} holds no sweep to resume (no multirun.yaml, no optuna.db)")

    def plain(items: list[str]) -> list[str]:
        return sorted(o for o in items if not o.startswith("resume="))

    if plain(list(before)) != plain(overrides):
        _stop(
            f"hydra.sweep.dir={sweep_dir} holds the sweep of {' '.join(plain(list(before)))}; resume it with the same "
            f"overrides, not {' '.join(plain(overrides))}"
        )


def same_run(run_dir: Path, overrides: list[str]) -> None:
    """Stop unless the run in ``run_dir`` (if any) was started with the same ``overrides``, but for ``resume=``
    and the keys a resumed run may change (``nndl.resume.RESUME_KEYS``): ``resume=auto`` must not continue
    another experiment's checkpoint under this one's name."""
    from nndl.resume import OVERRIDES, RESUME_KEYS

    saved = run_dir / OVERRIDES
    if not saved.is_file():
        return
    before = OmegaConf.load(saved)

    def plain(items: list[str]) -> list[str]:
        return sorted(o for o in items if o.split("=", 1)[0].lstrip("+~") not in ("resume", *RESUME_KEYS))

    if plain(list(before)) != plain(overrides):
        _stop(
            f"hydra.run.dir={run_dir} holds the run of {' '.join(plain(list(before))) or 'the defaults'}; resume it "
            f"with the same overrides (or resume={run_dir}), not {' '.join(plain(overrides)) or 'the defaults'}"
        )


def _stop(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)
