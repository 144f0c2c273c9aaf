"""Sweeps that survive their jobs: diverged and failed runs, the summary written at the end, Optuna in SQLite,
the joblib launcher; and the divergence guard on its own."""

import csv
import json
import math
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from nndl.divergence import Diverged, DivergenceGuard
from test_train import train


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
    assert report == {"status": "failed", "error": "data.batch_size=0 is out of range: it must be an integer ≥ 1"}
    assert "ConfigError" in (failed / "traceback.txt").read_text()
    assert f"error: {failed.name} failed: data.batch_size=0 is out of range" in result.stderr
    assert "Traceback" not in result.stderr
    assert [row["status"] for row in summary_rows(tmp_path)] == ["ok", "failed"]


def test_optuna_searches_the_cnn_and_keeps_the_study_in_sqlite(shared_mnist, tmp_path):
    import optuna

    args = ["-m", "hparams_search=cnn_optuna", "hydra.sweeper.n_trials=2", "trainer.max_epochs=1"]
    result = train(shared_mnist, *args, f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    assert "Best parameters: {" in result.stdout + result.stderr
    study = optuna.load_study(study_name="cnn", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    metrics = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*/metrics.json"))]
    assert sorted(t.value for t in study.trials) == sorted(m["val/acc"] for m in metrics)

    # the same sweep directory resumes the study
    result = train(shared_mnist, *args[:2], "hydra.sweeper.n_trials=1", args[3], f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    assert len(optuna.load_study(study_name="cnn", storage=f"sqlite:///{tmp_path}/optuna.db").trials) == 3


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


# The guard on its own, given what a training step returns: its mini-batch losses and outputs z^L.


class Sigmoid:
    cost = SimpleNamespace(output=torch.sigmoid)


def step(guard: DivergenceGuard, trainer: SimpleNamespace, losses: list[float], z: torch.Tensor | None = None) -> None:
    trainer.global_step += len(losses)
    z = torch.randn(200, 10, generator=torch.Generator().manual_seed(0)) if z is None else z
    guard.on_train_batch_end(trainer, Sigmoid(), {"losses": torch.tensor(losses), "z": z}, None, 0)


def noisy(mean: float, n: int = 20) -> list[float]:
    """Mini-batch losses of a learning network: tens of percent apart."""
    return (mean * (1 + 0.3 * torch.randn(n, generator=torch.Generator().manual_seed(0))).abs()).tolist()


def test_guard_lets_a_learning_network_pass():
    guard, trainer = DivergenceGuard(), SimpleNamespace(global_step=0)
    for mean in (2.0, 1.5, 1.0, 3.0, 0.5):  # noise up to 6× the lowest loss is not divergence
        step(guard, trainer, noisy(mean))
    step(guard, trainer, noisy(0.5), z=torch.randn(200, 10) * 0.1)  # small outputs, as at the start: they vary
    assert guard.lowest_loss == pytest.approx(sum(noisy(0.5)) / 20)


# outputs saturated at 0 or 1 whatever the input: z^L large, of one sign per output
SATURATED = torch.tensor([-30.0, 40.0] * 5) * (1 + torch.rand(200, 10))


@pytest.mark.parametrize(
    ("losses", "message"),
    [
        ([noisy(1.0), [1.0, math.nan]], "the training loss is nan"),
        ([noisy(1.0), [math.inf, 1.0]], "the training loss is inf"),
        ([noisy(1.0), noisy(0.2), noisy(2.5)], r"rose to 2\.\d+, over 10 times its lowest \(0\.2"),
        ([noisy(2.0), noisy(0.9)], "the network has collapsed: its outputs are the same for every input"),
    ],
)
def test_guard_stops_a_diverging_run(losses, message):
    guard, trainer = DivergenceGuard(), SimpleNamespace(global_step=0)
    with pytest.raises(Diverged, match=message) as caught:
        for i, step_losses in enumerate(losses):
            step(guard, trainer, step_losses, z=SATURATED if "collapsed" in message and i else None)
    assert caught.value.step == sum(map(len, losses))
