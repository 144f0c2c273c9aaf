"""nndl.outcome.worst_value: what a run without a result returns to a sweeper, derived from monitor and mode."""

import math

import pytest
from omegaconf import OmegaConf

from nndl.outcome import worst_value


@pytest.mark.parametrize(
    ("monitor", "mode", "worst"),
    [
        ("val/acc", "max", 0.0),  # an accuracy's floor: finite, so metrics.json stays plain JSON
        ("test/acc", "max", 0.0),
        ("val/loss", "min", math.inf),  # a loss has no ceiling (model=curve)
        ("val/acc", "min", math.inf),
        ("val/f1", "max", -math.inf),  # any other maximised monitor
        ("val/accuracy_top5", "max", -math.inf),  # only a metric named acc is an accuracy in [0, 1]
    ],
)
def test_worst_value_follows_the_monitor_and_its_mode(monitor: str, mode: str, worst: float) -> None:
    assert worst_value(OmegaConf.create({"monitor": monitor, "monitor_mode": mode})) == worst


def test_a_worse_value_than_the_worst_does_not_exist() -> None:
    """Every result a sweeper could see ranks at or above the worst value, in the direction sought."""
    maximised = OmegaConf.create({"monitor": "val/acc", "monitor_mode": "max"})
    minimised = OmegaConf.create({"monitor": "val/loss", "monitor_mode": "min"})
    assert all(acc >= worst_value(maximised) for acc in (0.0, 0.1, 1.0))
    assert all(loss <= worst_value(minimised) for loss in (0.0, 1e30))
