"""What the tests of the fast paths (``test_fast_path``, ``test_fast_conv``) share: the base path's update without
a Trainer, network2.py's parameter groups, and the check that a run continues from one path on the other."""

import copy
from collections.abc import Callable

import torch
from torch import nn

from nndl.models.network import Network


def groups(model: nn.Module, decay: float) -> list[dict]:
    """network2.py's L2 as ``Network._parameter_groups`` builds it: λ/n on the weights only."""
    weights = [p for p in model.parameters() if p.ndim > 1]
    return [{"params": weights, "weight_decay": decay}, {"params": [p for p in model.parameters() if p.ndim <= 1]}]


def autograd_update(model: Network, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer):
    """The base path's update of one process (``Network.update_mini_batch`` without a Trainer): autograd's
    gradients, then the torch optimizer's step."""
    optimizer.zero_grad()
    z = model(x)
    loss = model.cost(z, y)
    loss.backward()
    optimizer.step()
    return z.detach(), loss.detach()


def check_a_run_continues_on_either_path(fast: Network, make_optimizer: Callable, decay: float) -> None:
    """The momentum buffers the fast path leaves in the optimizer's state_dict are torch's: a run saved from one
    path resumes on the other (a checkpoint's optimizer state), and continues as if never stopped. ``fast``
    takes its fast path; a copy trained by autograd throughout is the reference."""
    slow = copy.deepcopy(fast)
    slow.backprop = "autograd"
    fast_opt, slow_opt = make_optimizer(groups(fast, decay)), make_optimizer(groups(slow, decay))
    generator = torch.Generator().manual_seed(2)
    batches = [(torch.rand(8, 1, 28, 28, dtype=torch.float64, generator=generator),
                torch.randint(0, 10, (8,), generator=generator)) for _ in range(4)]  # fmt: skip
    for x, y in batches:
        autograd_update(slow, x, y, slow_opt)
    for x, y in batches[:2]:
        fast.update_mini_batch(x, y, fast_opt)
    assert fast._fast is not None
    resumed = copy.deepcopy(fast)
    resumed.backprop = "autograd"
    resumed_opt = make_optimizer(groups(resumed, decay))
    resumed_opt.load_state_dict(copy.deepcopy(fast_opt.state_dict()))
    for x, y in batches[2:]:
        autograd_update(resumed, x, y, resumed_opt)
        fast.update_mini_batch(x, y, fast_opt)  # and the fast one goes on
    for p, q, r in zip(slow.parameters(), resumed.parameters(), fast.parameters(), strict=True):
        torch.testing.assert_close(q, p, rtol=0, atol=1e-9)
        torch.testing.assert_close(r, p, rtol=0, atol=1e-9)
