"""What a run shows in TensorBoard beyond its scalars: the test-end figures, the optional weight and gradient
histograms, and the scalars read back from a real ``tensorboard`` server over HTTP."""

import contextlib
import json
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from cli import FIGURES, SERVER_TIMEOUT_S, events, tensorboard
from sweep_runs import Run


@pytest.fixture(scope="module")
def finished_run(default_run: Run) -> Path:
    """The session's default run, for all the tests that read a run: two epochs, histograms on (they are off by
    default, tested in-process)."""
    return default_run.dir


def test_a_run_ends_with_the_test_figures(finished_run):
    run = events(finished_run)
    assert set(run.Tags()["images"]) == FIGURES
    for tag in FIGURES:
        (image,) = run.Images(tag)
        assert image.encoded_image_string.startswith(b"\x89PNG") and image.width > 300 and image.height > 300


def test_the_histograms_flag_logs_every_parameter_and_its_gradient(finished_run):
    tags = set(events(finished_run).Tags()["histograms"])
    names = ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]  # the MLP [784, 30, 10]
    assert tags == {f"{kind}/{name}" for kind in ("weights", "grads") for name in names}
    grads = events(finished_run).Histograms("grads/layers.1.weight")
    assert len(grads) == 2 and grads[0].histogram_value.num == 30 * 10  # one an epoch
    assert grads[0].histogram_value.sum_squares > 0  # a real gradient, not a cleared one


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def test_tensorboard_serves_the_runs_scalars_and_figures(finished_run, tmp_path):
    with tensorboard(finished_run, tmp_path / "tensorboard.log", "--load_fast=false") as base:
        deadline, tags = time.monotonic() + SERVER_TIMEOUT_S, {}
        while "val/acc" not in tags.get(".", {}):  # the server answers first, then loads the events
            assert time.monotonic() < deadline, f"no val/acc from {base} in {SERVER_TIMEOUT_S} s"
            with contextlib.suppress(OSError):  # a dropped connection (URLError, ConnectionError): asked again
                tags = get_json(f"{base}/data/plugin/scalars/tags")
            time.sleep(0.2)
        assert get_json(f"{base}/data/runs") == ["."]  # the run directory itself holds the event files
        query = urllib.parse.urlencode({"run": ".", "tag": "val/acc"})
        points = get_json(f"{base}/data/plugin/scalars/scalars?{query}")  # [[wall_time, step, value], ...]
        metrics = json.loads((finished_run / "metrics.json").read_text())
        assert [step for _, step, _ in points] == [0, 1]  # two epochs, a validation each
        assert [value for _, _, value in points] == [event.value for event in events(finished_run).Scalars("val/acc")]
        assert points[metrics["best_epoch"]][2] == metrics["val/acc"]
        assert set(get_json(f"{base}/data/plugin/images/tags")["."]) == FIGURES
        query = urllib.parse.urlencode({"run": ".", "tag": "test/confusion_matrix", "sample": 0})
        (image,) = get_json(f"{base}/data/plugin/images/images?{query}")
        with urllib.request.urlopen(f"{base}/data/plugin/images/individualImage?{image['query']}", timeout=10) as png:
            assert png.read(8) == b"\x89PNG\r\n\x1a\n"


# A sweep in TensorBoard: run names of what varies, HPARAMS that open on the swept keys, one step axis.


def hparams_data(run_dir: Path) -> dict[str, plugin_data_pb2.HParamsPluginData]:
    """The hparams plugin's records of a run, read with TensorBoard's own reader."""
    content = events(run_dir).PluginTagToContent("hparams")
    return {tag: plugin_data_pb2.HParamsPluginData.FromString(data) for tag, data in content.items()}


def test_sweep_jobs_are_named_after_what_varies(four_run_sweep, sweep_jobs):
    assert sorted(p.name for p in four_run_sweep.iterdir() if p.is_dir()) == sweep_jobs


def test_hparams_of_a_sweep_open_on_the_swept_keys_then_the_metrics(four_run_sweep, sweep_jobs):
    for job in sweep_jobs:
        run = four_run_sweep / job
        data = hparams_data(run)
        experiment = data["_hparams_/experiment"].experiment
        infos = {info.name: info for info in experiment.hparam_infos}
        assert [name for name, info in infos.items() if info.differs] == ["cost", "optimizer"]
        assert set(infos) == {"cost", "optimizer", "lr", "status"}  # constant keys left out
        assert [m.name.tag for m in experiment.metric_infos][:2] == ["hp/val_acc", "hp/test_acc"]
        assert {m.name.tag for m in experiment.metric_infos} == {"hp/val_acc", "hp/test_acc", "hp/val_loss",
                                                                  "hp/test_loss"}  # fmt: skip
        values = data["_hparams_/session_start_info"].session_start_info.hparams
        metrics = json.loads((run / "metrics.json").read_text())
        cost, optimizer = job.split("_", 1)[1].replace("cost=", "").split(",opt=")
        assert (values["cost"].string_value, values["optimizer"].string_value) == (cost, optimizer)
        assert values["lr"].number_value == (3.0 if optimizer == "sgd" else 0.001)
        assert values["status"].string_value == metrics["status"]
        assert set(values) == set(infos)
        assert data["_hparams_/session_start_info"].session_start_info.group_name == job  # one row per run
        assert "tags/text_summary" in events(run).Tags()["tensors"]  # the sweep's tags, constant: as text


def test_a_single_run_records_its_own_keys_typed(finished_run):
    values = hparams_data(finished_run)["_hparams_/session_start_info"].session_start_info.hparams
    assert {"model", "architecture", "params", "cost", "activation", "optimizer", "lr", "batch_size", "status"} <= set(
        values
    )
    assert not {"conv_activation", "book_accuracy", "experiment", "l2", "dropout"} & set(values)  # meaningless here
    # integers as text: TensorBoard prints every number with 5 significant digits (10.000)
    assert values["batch_size"].string_value == "10" and values["params"].string_value == str(784 * 30 + 30 + 310)
    assert values["lr"].number_value == 3.0


def test_one_step_axis_epochs_for_epoch_scalars_updates_for_step_scalars(four_run_sweep, sweep_jobs):
    run = four_run_sweep / sweep_jobs[0]
    metrics = json.loads((run / "metrics.json").read_text())
    acc = events(run)

    def steps(tag: str) -> list[int]:
        return [e.step for e in acc.Scalars(tag)]

    for tag in ("train/loss", "train/acc", "val/loss", "val/acc", "train/lr", "time/train_s", "time/val_s"):
        assert steps(tag) == [0, 1], tag  # two epochs, counted from 0
    updates = 500 // 10  # 500 training images in mini-batches of 10: one Lightning step of 50 updates an epoch
    assert steps("train/loss_step") == [updates, 2 * updates]
    assert steps("grad_norm/layer_1") == [updates, 2 * updates]
    best = metrics["best_epoch"]
    assert steps("test/acc") == steps("hp/val_acc") == [best]  # the tested weights' epoch
    images = EventAccumulator(str(run), size_guidance={"images": 0})
    images.Reload()
    assert [image.step for image in images.Images("test/confusion_matrix")] == [best]
    assert metrics["epochs"] == 2 and metrics["wall_time_s"] >= metrics["train_time_s"]


def test_histograms_are_on_the_epoch_axis(finished_run):
    assert [h.step for h in events(finished_run).Histograms("weights/layers.0.weight")] == [0, 1]
