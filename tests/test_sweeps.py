"""Sweeps that survive their jobs: diverged and failed runs, the summary written at the end, Optuna in SQLite,
the joblib launcher. The divergence guard on its own: tests/test_divergence.py."""

import csv
import json
import os
import subprocess
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from cli import train
from nndl.summary_rows import summarize_run


def summary_rows(sweep: Path) -> list[dict[str, str]]:
    with open(sweep / "summary.csv") as f:
        return list(csv.DictReader(f))


def hparam_status(run_dir: Path) -> str:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    return plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams["status"].string_value


def test_a_diverged_run_is_marked_and_the_sweep_goes_on(shared_mnist, tmp_path):
    result = train(shared_mnist, "-m", "optimizer.lr=3.0,100", "trainer.max_epochs=2", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    ok, diverged = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert json.loads((ok / "metrics.json").read_text())["status"] == "ok"
    report = json.loads((diverged / "metrics.json").read_text())
    assert report["status"] == "diverged" and report["val/acc"] == 0.0
    # 50 updates an epoch: stopped within the first two, not at the end of the run
    assert report["diverged_at_update"] <= 100 and report["reason"].startswith("the network has collapsed")
    assert hparam_status(diverged) == "diverged" and hparam_status(ok) == "ok"

    # written by the sweep itself at its end, and again by the script
    assert "Sweep of 2 runs: 1 ok, 1 diverged" in result.stdout
    rows = summary_rows(tmp_path)
    assert [(row["overrides"].split()[0], row["status"]) for row in rows] == [
        ("optimizer.lr=3.0", "ok"),
        ("optimizer.lr=100", "diverged"),
    ]
    assert rows[1]["note"] == report["reason"] and float(rows[0]["best_val_acc"]) > 0.5
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_a_failed_job_is_reported_and_the_others_are_kept(shared_mnist, tmp_path):
    result = train(shared_mnist, "-m", "data.batch_size=0,10", "trainer.max_epochs=1", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 1  # after every job has run
    failed, ok = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert json.loads((ok / "metrics.json").read_text())["status"] == "ok"
    report = json.loads((failed / "metrics.json").read_text())
    assert report.keys() == {"status", "error"} and report["status"] == "failed"
    assert report["error"].startswith("data.batch_size=0 is out of range")
    assert "ConfigError" in (failed / "traceback.txt").read_text()
    assert f"error: {failed.name} failed: data.batch_size=0 is out of range" in result.stderr
    assert "Traceback" not in result.stderr
    assert [row["status"] for row in summary_rows(tmp_path)] == ["ok", "failed"]


@pytest.fixture(scope="module")
def optuna_search(
    shared_mnist: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[subprocess.CompletedProcess, Path]:
    """One Optuna search of the MLP, two one-epoch trials, shared by the tests of what a search leaves: its result
    and its sweep directory."""
    sweep = tmp_path_factory.mktemp("optuna") / "search"
    args = ["-m", "hparams_search=mlp_optuna", "hydra.sweeper.n_trials=2", "trainer.max_epochs=1"]
    result = train(shared_mnist, *args, f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr
    return result, sweep


def test_optuna_search_runs_trials_and_reports_the_best(optuna_search):
    result, sweep = optuna_search
    assert "Best parameters: {" in result.stdout + result.stderr
    best = OmegaConf.load(sweep / "optimization_results.yaml").best_params
    assert set(best) == {"optimizer.lr", "data.batch_size", "model.l2", "model.sizes", "cost", "activation"}
    assert len([p for p in sweep.iterdir() if (p / "metrics.json").is_file()]) == 2


def test_optuna_keeps_the_study_in_sqlite(optuna_search):
    import optuna

    _, sweep = optuna_search
    study = optuna.load_study(study_name="mlp", storage=f"sqlite:///{sweep}/optuna.db")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    metrics = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/metrics.json"))]
    assert sorted(t.value for t in study.trials) == sorted(m["val/acc"] for m in metrics)


def test_an_optuna_search_whose_every_trial_fails_still_ends_with_its_summary(shared_mnist, tmp_path):
    args = ["-m", "hparams_search=mlp_optuna", "hydra.sweeper.n_trials=2", "threads=0"]
    result = train(shared_mnist, *args, f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Sweep of 2 runs: 2 failed" in result.stdout
    assert "failed: threads=0 is out of range" in result.stderr  # the reason, named
    assert [row["status"] for row in summary_rows(tmp_path)] == ["failed", "failed"]


def test_the_summary_counts_epochs_as_training_does(shared_mnist, tmp_path):
    result = train(
        shared_mnist, "trainer.max_epochs=4", "trainer.check_val_every_n_epoch=2", f"hydra.run.dir={tmp_path}"
    )
    assert result.returncode == 0, result.stderr
    row, val_acc = summarize_run(tmp_path)
    assert list(val_acc) == [1, 3]  # validated after epochs 2 and 4, counted from 0
    assert row["best_epoch"] == json.loads((tmp_path / "metrics.json").read_text())["best_epoch"]


def test_the_joblib_launcher_shares_the_cores_among_its_jobs(shared_mnist, tmp_path):
    result = train(
        shared_mnist, "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "optimizer.lr=1.0,3.0",
        "trainer.max_epochs=1", f"hydra.sweep.dir={tmp_path}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Joblib.Parallel(n_jobs=2" in result.stdout + result.stderr
    jobs = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert len(jobs) == 2
    for job in jobs:
        assert json.loads((job / "metrics.json").read_text())["status"] == "ok"
        threads = max(1, (os.cpu_count() or 1) // 2)
        assert f"torch threads: {threads}" in (job / "train.log").read_text()


def test_threads_out_of_range_is_named(shared_mnist, tmp_path):
    result = train(shared_mnist, "threads=0", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 1 and "error: threads=0 is out of range" in result.stderr
