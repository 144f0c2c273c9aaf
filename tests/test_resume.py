"""Exact resume: a run killed by SIGTERM and resumed with ``resume=<run_dir>`` ends with the very parameters, bit for
bit, and the metrics of the same run left alone (sweeps and searches: test_resume_sweeps.py)."""

import json
from pathlib import Path

import pytest
import torch

from cli import forget_killer, killed_after, train

MLP = ["trainer.max_epochs=4", "model.dropout=0.2", "model.l2=1.0", "data.examples_per_step=70"]
CNN = [
    "model=cnn", "model.channels=[4,8]", "model.fc_sizes=[16]", "model.dropout=0.3", "trainer.max_epochs=4",
    "optimizer=adam", "scheduler=one_cycle", "data.examples_per_step=150",
]  # fmt: skip


def last_state(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def whole_runs(shared_mnist, tmp_path_factory):
    """The uninterrupted run of some overrides, made once (a periodic checkpoint changes nothing of the training)."""
    made: dict[tuple[str, ...], Path] = {}

    def whole(overrides: list[str]) -> Path:
        key = tuple(o for o in overrides if "periodic_checkpoint" not in o)
        if key not in made:
            made[key] = tmp_path_factory.mktemp("whole")
            assert train(shared_mnist, *key, f"hydra.run.dir={made[key]}").returncode == 0
        return made[key]

    return whole


@pytest.mark.parametrize(
    ("overrides", "kill"),
    [(MLP, "epochs=2"), (CNN, "epochs=2"), ([*MLP, "callbacks.periodic_checkpoint.every_n_train_steps=4"], "steps=13")],
    ids=["mlp_dropout_l2", "cnn_adam_one_cycle", "mlp_mid_epoch"],
)
def test_a_killed_run_resumed_ends_as_if_never_interrupted(shared_mnist, tmp_path, whole_runs, overrides, kill):
    resumed = tmp_path / "resumed"
    whole = whole_runs(overrides)  # the same run left alone
    result = train(shared_mnist, *overrides, *killed_after(kill), f"hydra.run.dir={resumed}")
    assert result.returncode == 143, result.stderr
    interrupted = json.loads((resumed / "metrics.json").read_text())
    assert interrupted["status"] == "interrupted" and interrupted["epochs"] < 4

    forget_killer(resumed / ".hydra" / "overrides.yaml")
    result = train(shared_mnist, f"resume={resumed}")
    assert result.returncode == 0, result.stderr
    expected, got = last_state(whole), last_state(resumed)
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
    before, after = (json.loads((run / "metrics.json").read_text()) for run in (whole, resumed))
    assert after["status"] == before["status"] != "interrupted" and after["epochs"] == 4
    for key in ("best_epoch", "val/acc", "val/loss", "test/acc", "test/loss"):
        assert after[key] == before[key], key
