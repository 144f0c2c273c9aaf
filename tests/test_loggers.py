"""The loggers besides TensorBoard and the debug group: logger=csv writes metrics.csv on the epoch axis,
logger=mlflow a run MLflow's own client reads back (skipped without the mlflow extra), debug=* compose."""

import csv
import json
from pathlib import Path

import pytest

from cli import run_script

pytest_plugins = ["sweep_runs"]  # the four_run_sweep fixture (logger=many: TensorBoard and CSV)
ROOT = Path(__file__).resolve().parents[1]


def test_logger_many_writes_csv_beside_the_events(four_run_sweep, sweep_jobs):
    run = four_run_sweep / sweep_jobs[0]
    assert any(run.glob("events.out.tfevents.*"))
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    val = [(row["epoch"], row["step"]) for row in rows if row.get("val/acc")]
    assert val == [("0.0", "0"), ("1.0", "1")]  # epoch-level rows: the epoch, counted from 0
    assert [row["step"] for row in rows if row.get("train/loss_step")] == ["50", "100"]  # the update count
    metrics = json.loads((run / "metrics.json").read_text())
    assert [float(row["hp/val_acc"]) for row in rows if row.get("hp/val_acc")] == [pytest.approx(metrics["val/acc"])]


def test_the_summary_tells_the_sweeps_story(four_run_sweep, sweep_jobs):
    with open(four_run_sweep / "summary.csv") as f:
        rows = {row["run"]: row for row in csv.DictReader(f)}
    assert set(rows) == set(sweep_jobs)
    for job, row in rows.items():
        metrics = json.loads((four_run_sweep / job / "metrics.json").read_text())
        assert row["status"] == metrics["status"] and int(row["best_epoch"]) == metrics["best_epoch"]
        assert float(row["wall_time_s"]) >= float(row["train_time_s"]) >= 0  # tiny data: 0.0 s at 0.1 s precision
        assert row["tags"] == "smoke ci" and row["params"] == str(metrics["params"])
    md = (four_run_sweep / "summary.md").read_text()
    assert "Every run: trainer.max_epochs=2 data.val_size=100 logger=many tags=[smoke,ci]" in md
    assert "| run | status | best_val_acc | best_epoch |" in md  # no overrides column: the names show them


def test_mlflow_run_is_read_back_by_mlflows_client(shared_mnist, tmp_path):
    mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install -e '.[mlflow]')")
    run_dir = tmp_path / "run"
    result = run_script(
        "train", "logger=mlflow", "debug=fast", "tags=[smoke]", "data.val_size=100", f"paths.log_dir={tmp_path}",
        f"hydra.run.dir={run_dir}", data_dir=shared_mnist,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = mlflow.search_runs(experiment_names=["nndl"], output_format="list")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert run.info.run_name == "run" and run.info.status == "FINISHED"
    assert run.data.tags["smoke"] == "true" and run.data.tags["run_dir"] == str(run_dir)
    assert run.data.params["model"] == "mlp" and run.data.params["status"] == metrics["status"]
    assert run.data.metrics["hp/val_acc"] == pytest.approx(metrics["val/acc"])
    assert run.data.metrics["test/acc"] == pytest.approx(metrics["test/acc"])
    assert metrics["epochs"] == 1  # debug=fast: one epoch of two Lightning steps
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "val/acc")
    assert [m.step for m in history] == [0]
