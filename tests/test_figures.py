"""What a run draws for TensorBoard, checked in-process on the tiny test set: the confusion matrix and the most
confident mistakes of the test pass (``nndl.models.classifier``, ``nndl.figures``), nothing drawn without a
TensorBoard logger, and no histograms unless asked for (``nndl.callbacks.ParameterHistograms``)."""

import functools
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from torch import nn

from cli import FIGURES, ROOT, events
from nndl import figures
from nndl.callbacks import ParameterHistograms
from nndl.config import compose
from nndl.costs import Cost, LogLikelihoodCost, QuadraticCost
from nndl.data import MNISTDataModule
from nndl.models import MLP
from nndl.models.classifier import MostConfidentMistakes


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
