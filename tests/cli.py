"""Running the project's scripts as a user does, for the end-to-end tests."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_script(script: str, *args: str, data_dir: Path | None = None) -> subprocess.CompletedProcess:
    """``python scripts/<script>.py <args>`` from the project's root; ``NNDL_DATA_DIR=data_dir`` when given. The
    tests' own callbacks (tests/kill_after.py, tests/rank_params.py) may be added as ``+callbacks.<name>``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    if data_dir is not None:
        env["NNDL_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / f"{script}.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
