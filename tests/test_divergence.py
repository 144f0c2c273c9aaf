"""nndl.divergence.DivergenceGuard on its own, given what a training step returns: its mini-batch losses and
outputs z^L (the end-to-end runs that diverge are in tests/test_sweeps.py)."""

import math
from types import SimpleNamespace

import pytest
import torch

from nndl.divergence import Diverged, DivergenceGuard


class Sigmoid:
    cost = SimpleNamespace(output=torch.sigmoid)


def step(guard: DivergenceGuard, trainer: SimpleNamespace, losses: list[float], z: torch.Tensor | None = None) -> None:
    trainer.global_step += len(losses)
    z = torch.randn(200, 10, generator=torch.Generator().manual_seed(0)) if z is None else z
    guard.on_train_batch_end(trainer, Sigmoid(), {"losses": torch.tensor(losses), "z": z}, None, 0)


def noisy(mean: float, n: int = 20) -> list[float]:
    """Mini-batch losses of a learning network: tens of percent apart."""
    return (mean * (1 + 0.3 * torch.randn(n, generator=torch.Generator().manual_seed(0))).abs()).tolist()


def test_guard_lets_a_learning_network_pass():
    guard, trainer = DivergenceGuard(), SimpleNamespace(global_step=0, world_size=1)
    for mean in (2.0, 1.5, 0.1, 3.0, 0.5):  # a spike to 30× the lowest loss, under 4× the first: not divergence
        step(guard, trainer, noisy(mean))
    step(guard, trainer, noisy(0.5), z=torch.randn(200, 10) * 0.1)  # small outputs, as at the start: they vary
    assert guard.initial_loss == noisy(2.0)[0]


def test_guard_judges_a_resumed_run_against_the_untrained_loss():
    guard = DivergenceGuard()
    guard.load_state_dict({"initial_loss": 2.0})
    with pytest.raises(Diverged, match="over 4 times the untrained network's"):
        step(guard, SimpleNamespace(global_step=0, world_size=1), noisy(9.0))


# outputs saturated at 0 or 1 whatever the input: z^L large, of one sign per output
SATURATED = torch.tensor([-30.0, 40.0] * 5) * (1 + torch.rand(200, 10))


@pytest.mark.parametrize(
    ("losses", "message"),
    [
        ([noisy(1.0), [1.0, math.nan]], "the training loss is nan"),
        ([noisy(1.0), [math.inf, 1.0]], "the training loss is inf"),
        ([[1.0, *noisy(1.0)], noisy(0.2), noisy(4.5)], r"rose to 4\.\d+, over 4 times the untrained network's \(1\)"),
        ([[20.0, 300.0, *noisy(400.0, 18)]], r"rose to 4\d\d\.\d+, over 4 times the untrained network's \(20\)"),
        ([noisy(2.0), noisy(0.9)], "the network has collapsed: its outputs are the same for every input"),
    ],
)
def test_guard_stops_a_diverging_run(losses, message):
    guard, trainer = DivergenceGuard(), SimpleNamespace(global_step=0, world_size=1)
    with pytest.raises(Diverged, match=message) as caught:
        for i, step_losses in enumerate(losses):
            step(guard, trainer, step_losses, z=SATURATED if "collapsed" in message and i else None)
    assert caught.value.step == sum(map(len, losses))
