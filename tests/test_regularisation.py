"""The chapter 3 and 6 options: L2 on weights as network2.py, dropout, the expanded training set, and the
book's learning-rate schedule."""

import functools
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from nndl.callbacks import HalveEtaOnPlateau
from nndl.costs import CrossEntropyCost, LogLikelihoodCost
from nndl.data.mnist import expanded
from nndl.errors import ConfigError
from nndl.models import CNN, MLP

SGD = functools.partial(torch.optim.SGD, lr=0.5)


def test_expanded_data_adds_the_four_one_pixel_shifts():
    image = torch.zeros(1, 28, 28, dtype=torch.uint8)
    image[0, 10, 20] = 255
    images, labels = expanded(image, torch.tensor([7]))
    assert images.shape == (5, 28, 28) and labels.tolist() == [7] * 5
    bright = [tuple(torch.nonzero(im).flatten().tolist()) for im in images]
    assert bright == [(10, 20), (9, 20), (11, 20), (10, 19), (10, 21)]  # itself, up, down, left, right


def test_expanded_shift_drops_what_leaves_the_image():
    image = torch.zeros(1, 28, 28, dtype=torch.uint8)
    image[0, 0, 5] = 255  # the top row: shifting up loses it
    assert expanded(image, torch.tensor([1]))[0][1].sum() == 0


def test_mlp_dropout_is_on_while_training_only():
    torch.manual_seed(0)
    model = MLP(CrossEntropyCost(), SGD, nn.Sigmoid, sizes=[784, 100, 10], dropout=0.5)
    x = torch.rand(4, 1, 28, 28)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_cnn_dropout_is_on_the_inputs_of_the_fully_connected_layers():
    model = CNN(
        LogLikelihoodCost(), SGD, nn.ReLU, nn.ReLU, channels=[20, 40], padding=0, fc_sizes=[1000, 1000], dropout=0.5
    )
    kinds = [type(m).__name__ for m in model.classifier]
    assert kinds == ["Flatten", "Dropout", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]


def test_l2_and_optimizer_weight_decay_exclude_each_other():
    model = MLP(CrossEntropyCost(), functools.partial(torch.optim.SGD, lr=0.5, weight_decay=1e-4), nn.Sigmoid, l2=5.0)
    model.set_training_set(n=1000, updates_per_epoch=100)
    with pytest.raises(ConfigError, match=r"set either model.l2 .* or optimizer.weight_decay, not both"):
        model.configure_optimizers()


def trainer_at(lr: float) -> SimpleNamespace:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    return SimpleNamespace(optimizers=[optimizer], sanity_checking=False, should_stop=False, callback_metrics={})


def test_eta_is_halved_after_patience_epochs_without_improvement_and_training_stops_at_1_over_128():
    trainer = trainer_at(0.8)
    schedule = HalveEtaOnPlateau(patience=3, stop_at=1 / 128)
    schedule.on_train_start(trainer, None)
    lrs = []
    for acc in [0.90, 0.91, 0.91, 0.91, 0.91] + [0.5] * 30:  # one improvement, then none
        trainer.callback_metrics = {"val/acc": torch.tensor(acc)}
        schedule.on_validation_end(trainer, None)
        lrs.append(trainer.optimizers[0].param_groups[0]["lr"])
        if trainer.should_stop:
            break
    assert lrs[:5] == [0.8, 0.8, 0.8, 0.8, 0.4]  # halved after the 3rd epoch without improvement
    assert lrs[-1] == pytest.approx(0.8 / 128) and lrs.count(0.8 / 128) == 1  # stopped on reaching 1/128
    assert trainer.should_stop and len(lrs) == 2 + 3 * 7
