"""Every run owns its directory and says how it ended: interrupted, failed or ok, even when killed."""

import csv
import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from cli import run_script, start_script

TINY = ["data.val_size=100", "data.examples_per_step=50"]  # steps of 50 images: a signal is seen within one


def start_train(data_dir: Path, *overrides: str) -> subprocess.Popen:
    return start_script("train", *overrides, *TINY, data_dir=data_dir)


def wait_for(root: Path, pattern: str, process: subprocess.Popen, timeout: float = 120) -> None:
    """Until a file matching ``pattern`` under ``root`` exists, while ``process`` runs."""
    deadline = time.monotonic() + timeout
    while not list(root.glob(pattern)):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{root}/{pattern} did not appear"
        time.sleep(0.05)


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_killed_run_says_so(shared_mnist, tmp_path, signum, status):
    run = tmp_path / "run"
    process = start_train(shared_mnist, "trainer.max_epochs=1000", f"hydra.run.dir={run}")
    wait_for(run, "checkpoints/last.ckpt", process)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == status, stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["signal"] == signal.Signals(signum).name
    assert 1 <= metrics["epochs"] < 1000
    assert metrics["checkpoint"] == str(run / "checkpoints" / "last.ckpt")
    assert f"Interrupted by {signal.Signals(signum).name} after {metrics['epochs']} complete epoch" in stderr


def test_an_interrupted_sweep_summarises_the_jobs_so_far_and_those_not_started(shared_mnist, tmp_path):
    sweep = tmp_path / "sweep"
    process = start_train(
        shared_mnist, "-m", "optimizer.lr=0.1,0.2,0.3,0.4", "trainer.max_epochs=1000", f"hydra.sweep.dir={sweep}"
    )
    wait_for(sweep, "0_*/checkpoints/last.ckpt", process)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    summary = (sweep / "summary.md").read_text()
    assert summary.count("| interrupted |") == 1 and summary.count("| not started |") == 3, summary
    assert "Sweep of 4 runs: 1 interrupted, 3 not started" in stdout


def test_two_runs_started_together_get_a_directory_each(shared_mnist, tmp_path):
    log_dir = tmp_path / "outputs"
    processes = [start_train(shared_mnist, "trainer.max_epochs=1", f"paths.log_dir={log_dir}") for _ in range(2)]
    for process in processes:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
    runs = sorted((log_dir / "runs").glob("*/*"))
    assert len(runs) == 2, runs
    for run in runs:  # each complete: its metrics, one best checkpoint and last.ckpt, events of one process
        assert json.loads((run / "metrics.json").read_text())["status"] == "ok"
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch000.ckpt", "last.ckpt"]
        assert len({p.name.split(".")[-2] for p in run.glob("events.out.tfevents.*")}) == 1


def test_a_directory_that_holds_a_run_is_refused_and_left_as_it_was(shared_mnist, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text('{"status": "ok"}\n')
    result = run_script("train", "trainer.max_epochs=1", f"hydra.run.dir={run}", data_dir=shared_mnist)
    assert result.returncode == 1
    [error] = result.stderr.strip().splitlines()
    assert error.startswith(f"error: hydra.run.dir={run} already holds a run (metrics.json)")
    assert sorted(p.name for p in run.iterdir()) == ["metrics.json"]

    (tmp_path / "sweep" / "0_x" / ".hydra").mkdir(parents=True)
    result = run_script("train", "-m", "seed=1,2", f"hydra.sweep.dir={tmp_path / 'sweep'}", data_dir=shared_mnist)
    assert result.returncode == 1 and "already holds a sweep (0_x/.hydra)" in result.stderr

    checkpoints = tmp_path / "checkpoints"  # a run's checkpoints/ given as a directory of its own
    checkpoints.mkdir()
    (checkpoints / "last.ckpt").write_bytes(b"")
    result = run_script("train", "trainer.max_epochs=1", f"hydra.run.dir={checkpoints}", data_dir=shared_mnist)
    assert result.returncode == 1 and "already holds a run (last.ckpt)" in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_place_names_the_key_that_moves_it(shared_mnist, tmp_path):
    tmp_path.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        result = run_script("train", f"paths.log_dir={tmp_path / 'outputs'}", data_dir=shared_mnist)
    finally:
        tmp_path.chmod(stat.S_IRWXU)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cannot write the run's directory" in result.stderr and "hydra.run.dir=<dir>" in result.stderr


def test_a_run_that_fails_late_is_recorded(shared_mnist, tmp_path):
    run = tmp_path / "run"
    # a value only the data module can judge: a validation set larger than the training images
    result = run_script("train", "data.val_size=100000", f"hydra.run.dir={run}", data_dir=shared_mnist)
    assert result.returncode == 1 and result.stderr.startswith("error: ")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "failed" and metrics["error"] == result.stderr.strip().removeprefix("error: ")


def test_a_run_still_going_is_not_resumed_beside_itself(shared_mnist, tmp_path):
    run = tmp_path / "run"
    process = start_train(shared_mnist, "trainer.max_epochs=1000", f"hydra.run.dir={run}")
    wait_for(run, "checkpoints/last.ckpt", process)
    overrides = (run / ".hydra" / "overrides.yaml").read_bytes()
    result = run_script("train", f"resume={run}", data_dir=shared_mnist)
    assert result.returncode == 1 and f"hydra.run.dir={run} is in use: a run there is still going" in result.stderr
    assert (run / ".hydra" / "overrides.yaml").read_bytes() == overrides and process.poll() is None
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 143
    epochs = json.loads((run / "metrics.json").read_text())["epochs"]
    result = run_script("train", f"resume={run}", f"trainer.max_epochs={epochs + 1}", data_dir=shared_mnist)
    assert result.returncode == 0, result.stderr[-2000:]  # the lock went with the process


def test_a_run_killed_without_a_word_is_told_from_one_still_going(shared_mnist, tmp_path):
    """No metrics.json: the summary says running while the run's process holds its lock, killed once it is gone
    (SIGKILL leaves it no chance to report)."""
    root = tmp_path / "runs"
    process = start_train(shared_mnist, "trainer.max_epochs=1000", f"hydra.run.dir={root / 'run'}")
    wait_for(root / "run", "checkpoints/last.ckpt", process)

    def status() -> str:
        result = run_script("summarize", str(root))
        assert result.returncode == 0, result.stderr
        with (root / "summary.csv").open(newline="") as file:
            (row,) = csv.DictReader(file)
        return row["status"]

    assert status() == "running"
    process.kill()
    process.wait(timeout=60)
    assert status() == "killed"
