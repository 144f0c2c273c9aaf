"""What a run shows in TensorBoard beyond its scalars: the test-end figures, the optional weight and gradient
histograms, and the scalars read back from a real ``tensorboard`` server over HTTP."""

import contextlib
import functools
import json
import time
import urllib.parse
import urllib.request
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from torch import nn

from cli import ROOT, SERVER_TIMEOUT_S, tensorboard
from nndl import figures
from nndl.callbacks import ParameterHistograms
from nndl.config import compose
from nndl.costs import Cost, LogLikelihoodCost, QuadraticCost
from nndl.data import MNISTDataModule
from nndl.models import MLP
from nndl.models.classifier import MostConfidentMistakes
from sweep_runs import Run

FIGURES = {"test/confusion_matrix", "test/most_confident_mistakes"}


@pytest.fixture(scope="module")
def finished_run(default_run: Run) -> Path:
    """The session's default run, for all the tests that read a run: two epochs, histograms on (they are off by
    default, tested in-process)."""
    return default_run.dir


def events(run_dir: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(run_dir), size_guidance={"images": 0, "histograms": 0})
    accumulator.Reload()
    return accumulator


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


def test_histograms_are_off_by_default(shared_mnist, tmp_path):
    cfg = compose(ROOT / "conf", [], tmp_path)
    callback = instantiate(cfg.callbacks.histograms)
    assert isinstance(callback, ParameterHistograms) and callback.every_n_epochs == 0
    model = MLP(cost=QuadraticCost(), optimizer=functools.partial(torch.optim.SGD, lr=3.0), activation=nn.Sigmoid)
    data = MNISTDataModule(shared_mnist, val_size=100, download=False)
    trainer = quiet_trainer(
        tmp_path, TensorBoardLogger(tmp_path, name="", version=""), max_epochs=1, callbacks=[callback]
    )
    trainer.fit(model, datamodule=data)
    run = events(tmp_path)
    assert "train/loss" in run.Tags()["scalars"] and run.Tags()["histograms"] == []


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


def test_most_confident_mistakes_keeps_the_top_k_of_all_batches():
    torch.manual_seed(0)
    n, k = 500, 16
    x, a, y = torch.rand(n, 1, 28, 28), torch.rand(n, 10), torch.randint(0, 10, (n,))
    output, prediction = a.max(dim=1)
    metric = MostConfidentMistakes(k, (1, 28, 28))
    for start, size in ((0, 7), (7, 200), (207, 3), (210, 290)):  # batches smaller and larger than k
        batch = slice(start, start + size)
        metric.update(x[batch], output[batch], prediction[batch], y[batch])
    images, labels, predictions, outputs = metric.compute()

    wrong = (prediction != y).nonzero().squeeze(1)
    expected = wrong[output[wrong].argsort(descending=True)[:k]]
    torch.testing.assert_close(outputs, output[expected])
    torch.testing.assert_close(images, x[expected])
    assert labels.tolist() == y[expected].tolist() and predictions.tolist() == prediction[expected].tolist()


def test_fewer_mistakes_than_k_are_all_shown():
    metric = MostConfidentMistakes(25, (1, 28, 28))
    metric.update(
        torch.rand(3, 1, 28, 28), torch.tensor([0.9, 0.8, 0.7]), torch.tensor([3, 3, 5]), torch.tensor([3, 1, 2])
    )
    _, labels, predictions, _ = metric.compute()
    assert sorted(zip(labels.tolist(), predictions.tolist(), strict=True)) == [(1, 3), (2, 5)]


def test_a_single_mistake_is_drawn():
    from nndl import figures

    metric = MostConfidentMistakes(25, (1, 28, 28))
    metric.update(torch.rand(2, 1, 28, 28), torch.tensor([0.9, 0.8]), torch.tensor([3, 3]), torch.tensor([3, 1]))
    fig = figures.mistakes(*metric.compute(), probabilities=True)
    assert [t.get_text() for t in fig.axes[0].texts] == ["1 → 3  0.80"]


def quiet_trainer(root: Path, logger: object, **kwargs: object) -> L.Trainer:
    return L.Trainer(
        logger=logger,
        default_root_dir=root,
        accelerator="cpu",
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        log_every_n_steps=1,
        **kwargs,
    )


def tiny_test(data_dir: Path, root: Path, cost: Cost, logger: object) -> tuple[MLP, MNISTDataModule, float]:
    """An untrained MLP tested on the 100 tiny test images in batches of 30; returns the model, data, test/acc."""
    torch.manual_seed(0)
    sgd = functools.partial(torch.optim.SGD, lr=1.0)
    # init="default" keeps z^L small: no sigmoid output rounds to 1.0, so the most confident mistakes have no ties
    model = MLP(cost=cost, optimizer=sgd, activation=nn.Sigmoid, init="default")
    data = MNISTDataModule(data_dir, eval_batch_size=30, val_size=100, download=False)
    (result,) = quiet_trainer(root, logger).test(model, datamodule=data, verbose=False)
    return model, data, result["test/acc"]


@pytest.mark.parametrize("cost", [QuadraticCost(), LogLikelihoodCost()], ids=["sigmoid", "softmax"])
def test_test_figures_show_the_test_sets_counts_and_worst_mistakes(shared_mnist, tmp_path, monkeypatch, cost):
    drawn: dict[str, tuple] = {}  # what each figure was drawn from

    def recording(name: str) -> object:
        draw = getattr(figures, name)

        def record(*args: object, **kwargs: object) -> object:
            drawn[name] = (args, kwargs)
            return draw(*args, **kwargs)

        return record

    for name in ("confusion_matrix", "mistakes"):
        monkeypatch.setattr(figures, name, recording(name))
    logger = TensorBoardLogger(tmp_path, name="", version="")
    model, data, accuracy = tiny_test(shared_mnist, tmp_path, cost, logger)

    ((counts,), _) = drawn["confusion_matrix"]
    assert counts.shape == (10, 10) and counts.sum() == 100 and counts.trace() == round(accuracy * 100)
    (images, labels, predictions, outputs), options = drawn["mistakes"]
    assert options == {"probabilities": isinstance(cost, LogLikelihoodCost)}
    with torch.no_grad():  # the same top 25, from all the test outputs at once
        x, y = data.test_data[0].unsqueeze(1).float() / 255, data.test_data[1]
        output, prediction = cost.output(model(x)).max(dim=1)
    wrong = (prediction != y).nonzero().squeeze(1)
    expected = wrong[output[wrong].argsort(descending=True)[:25]]
    assert len(wrong) == 100 - counts.trace() and len(outputs) == min(25, len(wrong))
    torch.testing.assert_close(outputs, output[expected])
    torch.testing.assert_close(images, x[expected])
    assert labels.tolist() == y[expected].tolist() and predictions.tolist() == prediction[expected].tolist()
    assert set(events(tmp_path).Tags()["images"]) == FIGURES


@pytest.mark.parametrize("logger", ["none", "csv"])
def test_without_tensorboard_the_test_pass_tracks_and_draws_nothing(shared_mnist, tmp_path, monkeypatch, logger):
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("drew a figure with no TensorBoard logger")

    monkeypatch.setattr(figures, "confusion_matrix", fail)
    monkeypatch.setattr(figures, "mistakes", fail)
    model, _, accuracy = tiny_test(
        shared_mnist, tmp_path, QuadraticCost(), CSVLogger(tmp_path) if logger == "csv" else False
    )
    assert 0 <= accuracy <= 1
    assert model.test_confusion.update_count == 0 and model.test_mistakes.update_count == 0


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
