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
from nndl.reference import book_sgd, inputs

ETA, MINI_BATCH_SIZE, EPOCHS, SEED = 3.0, 10, 6, 5


@pytest.mark.parametrize(
    ("cost", "lmbda", "momentum", "backprop", "precision"),
    [
        (QuadraticCost(), 0.0, 0.0, "fast", "64-true"),
        (CrossEntropyCost(), 0.0, 0.0, "fast", "64-true"),
        (CrossEntropyCost(), 5.0, 0.0, "fast", "64-true"),
        (LogLikelihoodCost(), 5.0, 0.5, "fast", "64-true"),
        (LogLikelihoodCost(), 5.0, 0.5, "autograd", "64-true"),
        (QuadraticCost(), 0.0, 0.0, "fast", "32-true"),  # the book's first network as train.py runs it
        (LogLikelihoodCost(), 5.0, 0.5, "fast", "32-true"),
    ],
    ids=["quadratic", "cross_entropy", "cross_entropy_l2", "softmax_l2_momentum",
         "softmax_l2_momentum_autograd", "quadratic_float32", "softmax_l2_momentum_float32"],
)  # fmt: skip
def test_lightning_training_equals_a_plain_sgd_loop(shared_mnist, tmp_path, cost, lmbda, momentum, backprop, precision):
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
        precision=precision,
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

    dtype = torch.float64 if precision == "64-true" else torch.float32
    reference.to(dtype)
    start = copy.deepcopy(reference)
    images, labels = dm.train_data
    book_sgd(reference, cost, inputs(images).to(dtype), labels, eta=eta, mini_batch_size=MINI_BATCH_SIZE,
             epochs=EPOCHS, seed=SEED, lmbda=lmbda, momentum=momentum)  # fmt: skip
    # float64: the same arithmetic to 1e-6. float32: where the fast path makes BP4 and the update one operation
    # (no L2, no momentum), the last bits are rounded differently: 1.4e-6 apart after these 300 updates (AMD EPYC).
    atol = 1e-6 if dtype == torch.float64 else 1e-5
    for (name, p), q, p0 in zip(model.named_parameters(), reference.parameters(), start.parameters(), strict=True):
        assert p.dtype == dtype and (p - p0).abs().max() > 0.01, f"{name} did not train"
        torch.testing.assert_close(p, q, rtol=0, atol=atol, msg=lambda m, name=name: f"{name}: {m}")
