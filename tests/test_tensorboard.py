"""What a run shows in TensorBoard beyond its scalars: the test-end figures, the optional weight and gradient
histograms, and the scalars read back from a real ``tensorboard`` server over HTTP."""

import contextlib
import functools
import json
import os
import socket
import subprocess
import sys
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
from torch import nn

from nndl import figures
from nndl.callbacks import ParameterHistograms
from nndl.config import compose
from nndl.costs import Cost, LogLikelihoodCost, QuadraticCost
from nndl.data import MNISTDataModule
from nndl.models import MLP
from nndl.models.classifier import MostConfidentMistakes

ROOT = Path(__file__).resolve().parents[1]
FIGURES = {"test/confusion_matrix", "test/most_confident_mistakes"}
SERVER_TIMEOUT_S = 60


def train(data_dir: Path, run_dir: Path, *overrides: str) -> Path:
    """A finished one-epoch run of scripts/train.py on the tiny MNIST files; returns its run directory."""
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "train.py"),
            "trainer.max_epochs=1",
            "data.val_size=100",
            f"hydra.run.dir={run_dir}",
            *overrides,
        ],
        env={**os.environ, "NNDL_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return run_dir


@pytest.fixture(scope="module")
def finished_run(shared_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run for all the tests that read a run: histograms on (they are off by default, tested in-process)."""
    return train(shared_mnist, tmp_path_factory.mktemp("run"), "callbacks.histograms.every_n_epochs=1")


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
    assert len(grads) == 1 and grads[0].histogram_value.num == 30 * 10
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def test_tensorboard_serves_the_runs_scalars_and_figures(finished_run, tmp_path):
    executable = Path(sys.executable).with_name("tensorboard")
    command = [str(executable)] if executable.is_file() else [sys.executable, "-m", "tensorboard.main"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "tensorboard.log").open("w")
    server = subprocess.Popen(
        [*command, "--logdir", str(finished_run), "--host", "127.0.0.1", "--port", str(port), "--load_fast=false"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline, tags = time.monotonic() + SERVER_TIMEOUT_S, {}
        while "val/acc" not in tags.get(".", {}):  # the server answers first, then loads the events
            assert server.poll() is None, (tmp_path / "tensorboard.log").read_text()
            assert time.monotonic() < deadline, f"no val/acc from {base} in {SERVER_TIMEOUT_S} s"
            with contextlib.suppress(OSError):  # not listening yet (URLError, ConnectionError are OSErrors)
                tags = get_json(f"{base}/data/plugin/scalars/tags")
            time.sleep(0.2)
        assert get_json(f"{base}/data/runs") == ["."]  # the run directory itself holds the event files
        query = urllib.parse.urlencode({"run": ".", "tag": "val/acc"})
        points = get_json(f"{base}/data/plugin/scalars/scalars?{query}")  # [[wall_time, step, value], ...]
        metrics = json.loads((finished_run / "metrics.json").read_text())
        assert len(points) == 1  # one epoch, one validation
        assert points[0][2] == metrics["val/acc"] == events(finished_run).Scalars("val/acc")[0].value
        assert set(get_json(f"{base}/data/plugin/images/tags")["."]) == FIGURES
        query = urllib.parse.urlencode({"run": ".", "tag": "test/confusion_matrix", "sample": 0})
        (image,) = get_json(f"{base}/data/plugin/images/images?{query}")
        with urllib.request.urlopen(f"{base}/data/plugin/images/individualImage?{image['query']}", timeout=10) as png:
            assert png.read(8) == b"\x89PNG\r\n\x1a\n"
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


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
