"""The project's training path (data module, model, Lightning Trainer) is the book's mini-batch SGD, exactly."""

import copy
import functools

import lightning as L
import pytest
import torch
from torch import nn

from nndl.costs import CrossEntropyCost, QuadraticCost
from nndl.data import MNISTDataModule
from nndl.models import MLP

ETA, MINI_BATCH_SIZE, EPOCHS, SEED = 3.0, 10, 6, 5


def reference_sgd(model: nn.Module, cost, images: torch.Tensor, labels: torch.Tensor, lmbda: float = 0.0) -> None:
    """network.py's SGD: each epoch a fresh permutation of the training set, one update w → w − η ∇C per
    mini-batch; the permutations come from a generator seeded as the data module's. With lmbda, network2.py's
    L2-regularised update of the weights, w → (1 − ηλ/n) w − η ∇C_0, written as w → w − η (∇C_0 + (λ/n) w):
    the same rule, in the order of operations that makes float32 rounding agree."""
    n = len(labels)
    generator = torch.Generator().manual_seed(SEED)
    for _ in range(EPOCHS):
        order = torch.randperm(len(labels), generator=generator)
        for k in range(0, len(order), MINI_BATCH_SIZE):
            index = order[k : k + MINI_BATCH_SIZE]
            x, y = images[index].unsqueeze(1).float() / 255, labels[index]
            model.zero_grad()
            cost(model(x), y).backward()
            with torch.no_grad():
                for p in model.parameters():
                    decay = lmbda / n if p.ndim > 1 else 0.0  # weights, not biases
                    p.add_(p.grad.add(p, alpha=decay), alpha=-ETA)


@pytest.mark.parametrize(
    ("cost", "lmbda"),
    [(QuadraticCost(), 0.0), (CrossEntropyCost(), 0.0), (CrossEntropyCost(), 5.0)],
    ids=["quadratic", "cross_entropy", "cross_entropy_l2"],
)
def test_lightning_training_equals_a_plain_sgd_loop(shared_mnist, tmp_path, cost, lmbda):
    # 7 mini-batches per Lightning step: the 50 mini-batches of an epoch end on a partial step
    dm = MNISTDataModule(shared_mnist, batch_size=MINI_BATCH_SIZE, mini_batches_per_step=7, val_size=100, seed=SEED)
    dm.prepare_data()
    dm.setup("fit")
    torch.manual_seed(0)
    model = MLP(cost, functools.partial(torch.optim.SGD, lr=ETA), nn.Sigmoid, sizes=[784, 30, 10], l2=lmbda)
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

    start = copy.deepcopy(reference)
    reference_sgd(reference, cost, *dm.train_data, lmbda=lmbda)
    for (name, p), q, p0 in zip(model.named_parameters(), reference.parameters(), start.parameters(), strict=True):
        assert (p - p0).abs().max() > 0.01, f"{name} did not train"
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6, msg=lambda m, name=name: f"{name}: {m}")
