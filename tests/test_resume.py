"""Exact resume: a run killed by SIGTERM and resumed with ``resume=<run_dir>`` ends with the very parameters, bit for
bit, and the metrics of the same run left alone (sweeps and searches: test_resume_sweeps.py)."""

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from cli import events, forget_killer, killed_after, train

MLP = ["trainer.max_epochs=4", "model.dropout=0.2", "model.l2=1.0", "data.examples_per_step=70"]
CNN = [
    "model=cnn", "model.channels=[4,8]", "model.fc_sizes=[16]", "model.dropout=0.3", "trainer.max_epochs=4",
    "optimizer=adam", "scheduler=one_cycle", "data.examples_per_step=150",
]  # fmt: skip


def last_state(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def whole_runs(shared_mnist, tmp_path_factory):
    """The uninterrupted run of some overrides, made once (a periodic checkpoint changes nothing of the training)."""
    made: dict[tuple[str, ...], Path] = {}

    def whole(overrides: list[str]) -> Path:
        key = tuple(o for o in overrides if "periodic_checkpoint" not in o)
        if key not in made:
            made[key] = tmp_path_factory.mktemp("whole")
            assert train(shared_mnist, *key, f"hydra.run.dir={made[key]}").returncode == 0
        return made[key]

    return whole


@pytest.mark.parametrize(
    ("overrides", "kill"),
    [(MLP, "epochs=2"), (CNN, "epochs=2"), ([*MLP, "callbacks.periodic_checkpoint.every_n_train_steps=4"], "steps=13")],
    ids=["mlp_dropout_l2", "cnn_adam_one_cycle", "mlp_mid_epoch"],
)
def test_a_killed_run_resumed_ends_as_if_never_interrupted(shared_mnist, tmp_path, whole_runs, overrides, kill):
    resumed = tmp_path / "resumed"
    whole = whole_runs(overrides)  # the same run left alone
    result = train(shared_mnist, *overrides, *killed_after(kill), f"hydra.run.dir={resumed}")
    assert result.returncode == 143, result.stderr
    interrupted = json.loads((resumed / "metrics.json").read_text())
    assert interrupted["status"] == "interrupted" and interrupted["epochs"] < 4

    forget_killer(resumed / ".hydra" / "overrides.yaml")
    result = train(shared_mnist, f"resume={resumed}")
    assert result.returncode == 0, result.stderr
    expected, got = last_state(whole), last_state(resumed)
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
    before, after = (json.loads((run / "metrics.json").read_text()) for run in (whole, resumed))
    assert after["status"] == before["status"] != "interrupted" and after["epochs"] == 4
    for key in ("best_epoch", "val/acc", "val/loss", "test/acc", "test/loss"):
        assert after[key] == before[key], key


def scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar TensorBoard shows for the run (its own reader, purging what a resumed run logged anew), as
    (step, value); the timings' values left out, which no two runs share."""
    records = events(run)
    return {
        tag: [(e.step, 0.0 if tag.startswith("time/") else e.value) for e in records.Scalars(tag)]
        for tag in records.Tags()["scalars"]
    }


def csv_rows(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open(newline="") as file:
        return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in csv.DictReader(file)]


@pytest.mark.parametrize(
    ("logger", "kill"),
    [("tensorboard", "steps=13"), ("many", "steps=13"), ("many", "epochs=2")],
    ids=["tensorboard_mid_epoch", "many_mid_epoch", "many_epoch_end"],
)
def test_a_resumed_run_records_every_step_once(shared_mnist, tmp_path, whole_runs, logger, kill):
    """Killed (after update 85, its last checkpoint of update 64; or after epoch 1) and resumed: TensorBoard (and
    metrics.csv) show what the run left alone shows, each step once, the epoch-level averages of the epoch it
    was killed in included; what the killed run logged up to its checkpoint is kept."""
    overrides = [
        *MLP, "callbacks.periodic_checkpoint.every_n_train_steps=4", "trainer.log_every_n_steps=1", f"logger={logger}",
    ]  # fmt: skip
    resumed = tmp_path / "resumed"
    whole = whole_runs(overrides)
    assert train(shared_mnist, *overrides, *killed_after(kill), f"hydra.run.dir={resumed}").returncode == 143
    forget_killer(resumed / ".hydra" / "overrides.yaml")
    assert train(shared_mnist, f"resume={resumed}").returncode == 0
    expected, got = scalars(whole), scalars(resumed)
    assert expected.keys() == got.keys()
    steps = [step for step, _ in expected["train/loss_step"]]
    assert {57, 64, 71, 78, 85} <= set(steps) and len(steps) == len(set(steps))
    for tag in expected:
        assert got[tag] == expected[tag], tag
    if logger == "many":
        assert csv_rows(resumed) == csv_rows(whole)


def test_a_resumed_run_goes_on_with_its_mlflow_run(shared_mnist, tmp_path, whole_runs):
    """logger=mlflow: the resumed run continues the MLflow run of its directory (one run, finished, with the whole
    history: the steps the killed run logged after its checkpoint come again with the same values)."""
    mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install -e '.[mlflow]')")
    overrides = [*MLP, "callbacks.periodic_checkpoint.every_n_train_steps=4", "trainer.log_every_n_steps=1"]
    overrides += ["logger=mlflow"]

    def records(store: Path) -> tuple[Any, dict[str, set[tuple[int, float]]]]:
        client = mlflow.MlflowClient(f"sqlite:///{store}/mlflow.db")
        (run,) = client.search_runs([client.get_experiment_by_name("nndl").experiment_id])
        history = {
            name: {(m.step, m.value) for m in client.get_metric_history(run.info.run_id, name)}
            for name in ("train/loss_step", "train/loss", "val/acc", "hp/val_acc")
        }
        return run, history

    whole_store, store, resumed = tmp_path / "whole", tmp_path / "store", tmp_path / "resumed"
    whole_runs([*overrides, f"paths.log_dir={whole_store}"])
    killed = train(
        shared_mnist, *overrides, f"paths.log_dir={store}", *killed_after("steps=13"), f"hydra.run.dir={resumed}"
    )
    assert killed.returncode == 143
    forget_killer(resumed / ".hydra" / "overrides.yaml")
    refused = train(shared_mnist, f"resume={resumed}")  # the saved paths.log_dir: where the run writes
    assert refused.returncode == 1 and f"give it on the command line again: paths.log_dir={store}" in refused.stderr
    assert train(shared_mnist, f"resume={resumed}", f"paths.log_dir={store}").returncode == 0
    (_, expected), (run, got) = records(whole_store), records(store)
    assert run.info.status == "FINISHED" and run.data.params["status"] == "ok"
    assert run.data.tags["run_dir"] == str(resumed)
    assert got == expected and len(expected["train/loss_step"]) == 32


def test_a_moved_run_resumed_tests_the_checkpoint_the_run_left_alone_tests(shared_mnist, tmp_path, whole_runs):
    """A killed run moved to another directory (or handed over) and resumed there: the checkpoints' saved paths
    follow it, so the best epoch is still kept and tested, as in the run left alone."""
    whole = whole_runs(MLP)
    killed, moved = tmp_path / "killed", tmp_path / "elsewhere" / "moved"
    assert train(shared_mnist, *MLP, *killed_after("epochs=2"), f"hydra.run.dir={killed}").returncode == 143
    forget_killer(killed / ".hydra" / "overrides.yaml")
    moved.parent.mkdir()
    shutil.move(killed, moved)
    result = train(shared_mnist, f"resume={moved}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "dirpath has changed" not in result.stderr
    before, after = (json.loads((run / "metrics.json").read_text()) for run in (whole, moved))
    assert Path(after["checkpoint"]).parent == moved / "checkpoints"
    assert Path(after["checkpoint"]).name == Path(before["checkpoint"]).name
    for key in ("best_epoch", "test/acc", "test/loss"):
        assert after[key] == before[key], key


def test_a_finished_run_trained_longer_has_each_record_once(shared_mnist, tmp_path):
    """resume=<run_dir> trainer.max_epochs=3 on a finished 2-epoch run: metrics.csv holds every epoch's rows once,
    the steps once, and the one test of the longer run (the first run's test and final rows are dropped)."""
    run = tmp_path / "run"
    assert train(shared_mnist, *MLP[1:], "trainer.max_epochs=2", "logger=many", f"hydra.run.dir={run}").returncode == 0
    assert train(shared_mnist, f"resume={run}", "trainer.max_epochs=3").returncode == 0
    rows = csv_rows(run)
    assert [row["epoch"] for row in rows if row["val/acc"]] == ["0.0", "1.0", "2.0"]
    assert [row["epoch"] for row in rows if row["train/acc"]] == ["0.0", "1.0", "2.0"]
    steps = [row["step"] for row in rows if row["train/loss_step"]]
    assert len(steps) == len(set(steps)) and steps == sorted(steps, key=float)
    assert len([row for row in rows if row["test/acc"]]) == 1 and len([r for r in rows if r["hp/test_acc"]]) == 1
