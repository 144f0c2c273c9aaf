"""What the four scripts share: their environment, their path arguments, and errors shown as one line.

``prepare`` runs when a script starts, before Hydra reads the command line; ``run_job`` wraps the work of a job.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig

from nndl.errors import NNDLError
from nndl.resume import resume_args

T = TypeVar("T")
PATH_KEYS = ("ckpt_path", "config_path", "inputs", "output", "resume")  # arguments that name a file or a folder


def prepare(script: str, argv: list[str] | None = None) -> None:
    """Set up the process for ``script`` (its ``__file__``) and make its path arguments Hydra-proof.

    - ``PROJECT_ROOT``: the folder holding ``conf/`` and ``src/`` (``paths.root_dir``);
    - ``NNDL_RUN_ID``: four random hex digits, new in every process, which end its run or sweep directory's name
      (``outputs/runs/<date>/<time>-<id>``), so that two runs started in the same second never share one;
    - a path argument (``ckpt_path=``, ``config_path=``, ``inputs=``, ``output=``) that names an existing file or
      folder is quoted for Hydra, so that the paths the lab writes (a sweep job's directory holds ``=`` and ``,``)
      work as written.
    """
    os.environ.setdefault("PROJECT_ROOT", str(Path(script).resolve().parents[1]))
    os.environ["NNDL_RUN_ID"] = secrets.token_hex(2)
    # Optuna 2's SQLite storage (conf/hparams_search) runs on SQLAlchemy 1.4, pinned: no notice about 2.0 needed.
    os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    args = sys.argv if argv is None else argv
    try:
        args[1:] = quote_paths(resume_args(args[1:]))  # resume=<run_dir>: the run's own command line again
    except NNDLError as err:
        fail(err)


def quote_paths(args: Sequence[str], keys: Sequence[str] = PATH_KEYS) -> list[str]:
    """``args`` with each ``key=value`` of ``keys`` whose value is an existing path written as a quoted string."""
    quoted = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and key in keys and value[:1] not in ("'", '"', "[") and os.path.exists(value):
            value = "'" + value.replace("'", "\\'") + "'"
        quoted.append(f"{key}{sep}{value}")
    return quoted


def run_job(job: Callable[[DictConfig], T], cfg: DictConfig) -> T:
    """``job(cfg)``; a bad value or file (``NNDLError``) ends the script with its one-line message, exit status 1."""
    try:
        return job(cfg)
    except NNDLError as err:
        fail(err)


def fail(err: NNDLError | str) -> Any:
    print(f"error: {err}", file=sys.stderr)
    sys.exit(1)
