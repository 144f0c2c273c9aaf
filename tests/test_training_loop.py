"""The project's training path (data module, model, Lightning Trainer) is the book's mini-batch SGD, exactly."""

import copy
import functools

import lightning as L
import pytest
import torch
from torch import nn

from nndl.costs import CrossEntropyCost, LogLikelihoodCost, QuadraticCost
from nndl.data import MNISTDataModule
from nndl.models import MLP
from nndl.reference import book_sgd

ETA, MINI_BATCH_SIZE, EPOCHS, SEED = 3.0, 10, 6, 5


@pytest.mark.parametrize(
    ("cost", "lmbda", "momentum", "backprop"),
    [
        (QuadraticCost(), 0.0, 0.0, "fast"),
        (CrossEntropyCost(), 0.0, 0.0, "fast"),
        (CrossEntropyCost(), 5.0, 0.0, "fast"),
        (LogLikelihoodCost(), 5.0, 0.5, "fast"),
        (LogLikelihoodCost(), 5.0, 0.5, "autograd"),
    ],
    ids=["quadratic", "cross_entropy", "cross_entropy_l2", "softmax_l2_momentum",
         "softmax_l2_momentum_autograd"],
)  # fmt: skip
def test_lightning_training_equals_a_plain_sgd_loop(shared_mnist, tmp_path, cost, lmbda, momentum, backprop):
    # 70 images, 7 mini-batches, per Lightning step: the 50 mini-batches of an epoch end on a partial step
    dm = MNISTDataModule(shared_mnist, batch_size=MINI_BATCH_SIZE, examples_per_step=70, val_size=100, seed=SEED)
    dm.prepare_data()
    dm.setup("fit")
    torch.manual_seed(0)
    eta = ETA if momentum == 0 else ETA / 10
    optimizer = functools.partial(torch.optim.SGD, lr=eta, momentum=momentum)
    model = MLP(cost, optimizer, nn.Sigmoid, sizes=[784, 30, 10], l2=lmbda, backprop=backprop)
    model.set_training_set(dm.n_train, dm.mini_batches_per_epoch)
    reference = copy.deepcopy(model)

    trainer = L.Trainer(
        max_epochs=EPOCHS,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
    )
    torch.manual_seed(123)  # the shuffling must not depend on the global generator
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == EPOCHS * 50  # 300 updates, one per mini-batch
    assert (model._fast is not None) == (backprop == "fast")  # the path under test is the one taken

    start = copy.deepcopy(reference)
    book_sgd(reference, cost, *dm.train_data, eta=eta, mini_batch_size=MINI_BATCH_SIZE, epochs=EPOCHS, seed=SEED,
             lmbda=lmbda, momentum=momentum)  # fmt: skip
    for (name, p), q, p0 in zip(model.named_parameters(), reference.parameters(), start.parameters(), strict=True):
        assert (p - p0).abs().max() > 0.01, f"{name} did not train"
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6, msg=lambda m, name=name: f"{name}: {m}")
