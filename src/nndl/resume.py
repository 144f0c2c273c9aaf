"""Resuming a run, or a sweep, where it stopped, to the same weights it would have reached uninterrupted.

``python scripts/train.py resume=<run_dir>`` continues a run in its own directory from its ``last.ckpt``. The
experiment is the run's own: its command line (``<run_dir>/.hydra/overrides.yaml``) is composed again with the
lab's ``conf/`` — never built from the run's saved config, which may come from elsewhere — and on the command line
only ``RESUME_KEYS`` may be given besides (``trainer.max_epochs=`` to train longer). Lightning restores the weights,
the optimizer and the schedule, the loops and the callbacks' states; the data module its training order
(``nndl.data.batches.ResumableOrder``), the model its validation history and the random generators of dropout.

``-m <the sweep's overrides> hydra.sweep.dir=<dir> resume=true`` continues a sweep: each job whose directory says
``ok`` or ``diverged`` is kept as it is, an interrupted one resumes from its ``last.ckpt``, a failed one runs again
(its earlier files moved to ``previous_attempt/``). ``resume=auto`` does the same for each job without asking for
an earlier sweep: what a cluster's requeued (preempted) job needs, since it starts again as it was submitted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from nndl.errors import CheckpointError, ConfigError

RESUME_KEYS = ("trainer.max_epochs", "data.data_dir", "threads", "trainer.enable_progress_bar")  # may be given
OVERRIDES = Path(".hydra") / "overrides.yaml"
LAST = Path("checkpoints") / "last.ckpt"
FINISHED = ("ok", "diverged")
# An override of the run's own command line: a key of conf/ (or + / ~ of one) and a plain value.
SAFE_OVERRIDE = re.compile(r"^[+~]{0,2}[A-Za-z0-9_@/.\-]+=")
BEFORE: dict[Path, bytes] = {}  # a resumed run's .hydra files as they were, before Hydra writes them again


def resume_args(args: list[str]) -> list[str]:
    """The command line of ``scripts/train.py resume=<run_dir> [RESUME_KEYS=...]`` rewritten as the run's own,
    in its own directory; ``args`` as they are when they hold no ``resume=<dir>`` or are a sweep (``-m``)."""
    given = [arg for arg in args if arg.startswith("resume=")]
    if not given or "-m" in args or "--multirun" in args:
        return args
    value = given[-1].split("=", 1)[1].strip("'\"")
    if value.lower() in ("null", "none", "false", ""):
        return [arg for arg in args if not arg.startswith("resume=")]
    if value.lower() in ("true", "auto"):  # the run's own directory, given with hydra.run.dir
        return args
    run_dir = Path(value).resolve()
    saved = run_overrides(run_dir, [arg for arg in args if not arg.startswith(("resume=", "-"))])
    BEFORE.update({file: file.read_bytes() for file in (run_dir / ".hydra").glob("*.yaml")})
    launched = [arg for arg in args if _launched_again(arg, run_dir)]  # kept, but hydra.run.dir: given below
    extra = [arg for arg in args if not arg.startswith(("resume=", "-")) and arg not in launched]
    flags = [arg for arg in args if arg.startswith("-")]
    for arg in extra:
        key = arg.split("=", 1)[0].lstrip("+~")
        if key not in RESUME_KEYS and arg not in saved:  # the run's own value again changes nothing
            raise ConfigError(
                f"resume={run_dir}: {arg} would change the experiment; a resumed run is its own command line again, "
                f"with only {', '.join(RESUME_KEYS)} given besides"
            )
    replaced = {arg.split("=", 1)[0].lstrip("+~") for arg in extra}
    kept = [arg for arg in saved if arg.split("=", 1)[0].lstrip("+~") not in replaced]
    launched = [arg for arg in launched if not arg.startswith("hydra.run.dir=")]
    return [*flags, *kept, *extra, f"resume={_quoted(run_dir)}", f"hydra.run.dir={_quoted(run_dir)}", *launched]


def restore_run_files() -> None:
    """Put back the ``.hydra`` files of a run that a resume refused (a bad value or file) overwrote: the run's
    directory is as it was, resumable with the same command as before."""
    for file, text in BEFORE.items():
        file.write_bytes(text)


def _launched_again(arg: str, run_dir: Path) -> bool:
    """Whether ``arg`` is one of what Lightning adds when it starts a resumed run's other processes (data-parallel
    training, ``_hydra_subprocess_cmd``) from the command line this module wrote: the run's own directory again,
    the process's log name, no second copy of ``.hydra``. None of them changes the experiment."""
    key, _, value = arg.partition("=")
    if key == "hydra.run.dir":
        return Path(value.strip("'\"")).resolve() == run_dir
    return (key == "hydra.job.name" and re.fullmatch(r"train_ddp_process_\d+", value) is not None) or (
        arg == "hydra.output_subdir=null"
    )


def run_overrides(run_dir: Path, given: list[str] | None = None) -> list[str]:
    """The command line of the run in ``run_dir`` (its ``resume=`` and ``hydra`` keys left out), checked: a run
    directory may come from elsewhere, so it may only choose among what the lab's own ``conf/`` offers
    (``check_saved_override``). ``given``: the command line's own overrides, which vouch for a saved one that
    decides where the run writes."""
    file = run_dir / OVERRIDES
    if not (run_dir / LAST).is_file():
        raise ConfigError(f"resume={run_dir}: no {LAST} there to resume from (a run saves it after its first epoch)")
    try:
        overrides = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"resume={run_dir}: not a run directory of the lab ({file}: {err})") from None
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise ConfigError(f"resume={run_dir}: {file} is not a list of overrides")
    kept = [o for o in overrides if not o.lstrip("+~").startswith(("resume=", "hydra.", "hydra/"))]
    for override in kept:
        problem = check_saved_override(override, given or [])
        if problem:
            raise ConfigError(
                f"resume={run_dir}: {file} holds {override!r}, which is not allowed in a resumed run: {problem}"
            )
    return kept


def conf_dir() -> Path:
    """The lab's ``conf/``: under ``PROJECT_ROOT`` (set by ``nndl.cli.prepare``), else beside ``src/``."""
    root = os.environ.get("PROJECT_ROOT")
    return Path(root) / "conf" if root else Path(__file__).resolve().parents[2] / "conf"


def check_saved_override(override: str, given: list[str]) -> str | None:
    """Why one override of a run's saved command line may not be composed again, or ``None``. Allowed: a key of
    the config (no ``_target_`` nor any other Hydra key) set to a plain value or a list of plain values, with no
    interpolation; a config group set to one of its options in the lab's ``conf/`` (in no Hydra package). A value
    that decides where the run reads or writes (any ``logger.`` or ``paths.`` key, the data's folder and whether to
    download there, a ``dirpath``, ``save_dir``, ``..._dir``, ``..._uri``, ``filename``) only when the command line
    gives it again."""
    if not SAFE_OVERRIDE.match(override) and not re.fullmatch(r"~[A-Za-z0-9_@/.\-]+", override):
        return "not a key=value override of the config"
    try:
        (parsed,) = OverridesParser.create().parse_overrides([override])
    except (HydraException, ValueError) as err:
        return f"it does not parse ({' '.join(str(err).split())[:120]})"
    key, value = parsed.key_or_group, None if parsed.is_delete() else parsed.value()
    package = parsed.package or ""
    hydra = key.split(".")[0].split("/")[0] == "hydra" or package.split(".")[0] in ("hydra", "_global_")
    if hydra or re.search(r"(^|[./@])_\w*_($|[./@])", f"{key}@{package}") or parsed.is_sweep_override():
        return "a Hydra key or a sweep"
    if (conf_dir() / key).is_dir():  # a config group: one of the lab's options
        if value is None and parsed.is_delete():
            return None
        if (
            not isinstance(value, str)
            or not re.fullmatch(r"\w+", value)
            or not (conf_dir() / key / f"{value}.yaml").is_file()
        ):
            return f"{key} must be one of the options in the lab's conf/{key}/"
        return None
    values = value if isinstance(value, list) else [value]
    if any(isinstance(v, dict | list) for v in values):
        return "a value with keys, or a list of lists: only plain values are taken from a run directory"
    if any(isinstance(v, str) and "${" in v for v in values):
        return "an interpolation"
    last = key.rsplit(".", 1)[-1].lower()
    writes = key.startswith(("logger.", "paths.")) or key in ("data.data_dir", "data.download")  # records, files
    writes = writes or re.search(r"(dir|dirpath|path|uri|location|filename|file)$", last) is not None
    if writes and override not in given:
        return f"it decides where the run reads or writes; to accept it, give it on the command line again: {override}"
    return None


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "\\'") + "'"


def read_report(run_dir: Path) -> dict[str, Any]:
    """The run's ``metrics.json``; without one, ``running`` while a process holds the run's lock, ``killed`` when
    none does (the process ended without reporting: SIGKILL, out of memory), ``unfinished`` when the run holds
    no lock to tell; ``{"status": "unreadable", "reason": ...}`` for one that is not a JSON report. A report from
    before the status field is ``ok``."""
    metrics = run_dir / "metrics.json"
    if not metrics.is_file():
        from nndl.rundir import running

        going = running(run_dir)
        if going is False:  # its process is gone without a word
            return {"status": "killed", "reason": "ended without a report: killed (SIGKILL, out of memory) or lost"}
        return {"status": "running" if going else "unfinished"}
    try:
        report = json.loads(metrics.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return {"status": "unreadable", "reason": f"{metrics} is not a JSON report ({type(err).__name__}: {err})"}
    if not isinstance(report, dict) or not isinstance(report.get("status", "ok"), str):
        return {"status": "unreadable", "reason": f"{metrics} is not a JSON report of a run (keys and values)"}
    return {"status": "ok", **report}


def job_state(job_dir: Path) -> tuple[str, dict[str, Any]]:
    """How a sweep job's directory says it ended: its ``metrics.json`` status (``read_report``; ``new`` when
    there is no such directory or it holds no run) and that report. An unreadable report is resumed from the
    job's ``last.ckpt`` as an unfinished one is."""
    if not (job_dir / "metrics.json").is_file() and not (job_dir / ".hydra").is_dir():
        return "new", {}
    report = read_report(job_dir)
    return report["status"], (report if (job_dir / "metrics.json").is_file() else {})


def set_aside(job_dir: Path) -> None:
    """Move what a failed attempt wrote (its checkpoints, events, metrics) into ``previous_attempt/``."""
    aside = job_dir / "previous_attempt"
    aside.mkdir(exist_ok=True)
    for path in job_dir.iterdir():
        if path.name not in (".hydra", "previous_attempt", ".lock") and not path.name.endswith(".log"):
            shutil.move(str(path), aside / path.name)


def resume_from(cfg: Any, run_dir: Path) -> Path | None:
    """The checkpoint this job goes on from: ``last.ckpt`` of a resumed run (``resume=<run_dir>``), or of an
    unfinished job of a resumed sweep (``resume=true``); ``None`` for a fresh start (a failed attempt set aside)."""
    resume = cfg.get("resume")
    if resume is None or resume is False:
        return None
    resume = True if resume == "auto" else resume
    if resume is not True and Path(str(resume)).resolve() != run_dir.resolve():
        raise ConfigError(f"resume={resume}: a run resumes in its own directory, not in {run_dir}")
    if resume is not True:  # resume=<run_dir>: its last.ckpt, whatever its latest attempt ended with
        if not (run_dir / LAST).is_file():
            raise ConfigError(f"resume={resume}: no {LAST} there to resume from")
        return run_dir / LAST
    status, _ = job_state(run_dir)
    if status == "failed" or not (run_dir / LAST).is_file():  # a sweep's job: a failed one runs again
        set_aside(run_dir)
        return None
    return run_dir / LAST


def check_resumable(cfg: Any, ckpt: Path) -> tuple[int, int]:
    """Check, before anything of the run is built, read or written again, that ``ckpt`` is a checkpoint of this
    run's network (read safely, ``nndl.checkpoints.load_model``) and that ``trainer.max_epochs`` reaches past it;
    return the update count it was saved at and the epoch the run goes on in (the next one after a checkpoint of
    an epoch's end), from which the records go on (``nndl.loggers.resume_settings``)."""
    import torch

    from nndl.checkpoints import load_model

    # a file torch cannot load safely, or another network's: CheckpointError naming it
    load_model(ckpt, cfg, hint="it is not a checkpoint of this run, whose command line builds that model")
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True)
    epoch, step = checkpoint.get("epoch"), checkpoint.get("global_step")
    loops = checkpoint.get("loops")
    if not isinstance(epoch, int) or not isinstance(step, int) or not isinstance(loops, dict):
        raise CheckpointError(f"{ckpt}: not the checkpoint of a training run (no epoch, global_step or loops)")
    max_epochs = cfg.trainer.get("max_epochs")
    if isinstance(max_epochs, int) and max_epochs != -1 and max_epochs < epoch + 1:
        raise ConfigError(
            f"trainer.max_epochs={max_epochs} is out of range for resume: the run's {LAST} is of epoch {epoch} "
            f"(counted from 0); it must be at least {epoch + 1}, more to train longer"
        )
    progress: Any = loops.get("fit_loop")
    for key in ("epoch_progress", "total"):
        progress = progress.get(key) if isinstance(progress, dict) else None
    processed = progress.get("processed") if isinstance(progress, dict) else None  # epoch + 1 once it has ended
    return step, processed if isinstance(processed, int) else epoch
