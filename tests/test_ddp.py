"""Data-parallel training on 2 CPU processes (gloo) is the book's SGD: every update uses the gradient of the whole
mini-batch, the ranks keep identical parameters, and the metrics cover the whole test set."""

import json
from pathlib import Path

import pytest
import torch

from cli import events, forget_killer, killed_after, run_script, train

MLP = ["trainer.max_epochs=2", "data.examples_per_step=50", "optimizer.lr=1.0", "threads=1"]


def train_saving_ranks(data_dir: Path, run: Path, *overrides: str) -> dict:
    """A run in ``run`` whose every process saves its parameters there (rankN.pt); returns its metrics."""
    keep = ["+callbacks.rank_params._target_=rank_params.SaveRankParams", f"+callbacks.rank_params.directory={run}"]
    result = train(data_dir, *overrides, *keep, f"hydra.run.dir={run}")
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((run / "metrics.json").read_text())


@pytest.fixture(scope="module")
def runs(shared_mnist, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ddp")
    train_saving_ranks(shared_mnist, root / "single", *MLP)
    train_saving_ranks(shared_mnist, root / "ddp", *MLP, "trainer=ddp", "trainer.devices=2")
    return root / "single", root / "ddp"


def test_the_ranks_hold_identical_parameters_equal_to_one_process(runs):
    single, ddp = runs
    rank0, rank1 = (torch.load(ddp / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    alone = torch.load(single / "rank0.pt", weights_only=True)
    for name in alone:
        assert torch.equal(rank0[name], rank1[name]), name  # bit for bit
        assert (rank0[name] - alone[name]).abs().max() < 1e-5, name  # the same SGD, summed in another order


def test_the_metrics_cover_the_whole_test_set_and_are_written_once(runs, shared_mnist, tmp_path):
    single, ddp = runs
    trained, alone = (json.loads((run / "metrics.json").read_text()) for run in (ddp, single))
    assert trained["status"] == "ok" and trained["test/acc"] == pytest.approx(alone["test/acc"], abs=0.011)
    result = run_script("eval", f"ckpt_path={trained['checkpoint']}", f"hydra.run.dir={tmp_path / 'eval'}",
                        data_dir=shared_mnist)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["test/acc"] == trained["test/acc"]
    assert len(list((ddp / "checkpoints").glob("*.ckpt"))) == 2  # the best and last.ckpt, by rank 0 only


def test_the_cnn_trains_on_two_processes(shared_mnist, tmp_path):
    cnn = ["model=cnn", "model.channels=[4,8]", "model.fc_sizes=[16]", "trainer.max_epochs=1"]
    metrics = train_saving_ranks(shared_mnist, tmp_path, *cnn, "trainer=ddp", "trainer.devices=2", "threads=1")
    assert metrics["status"] in ("ok", "no_learning")
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert all(torch.equal(rank0[name], rank1[name]) for name in rank0)


def test_lightnings_own_sampler_is_refused_with_the_way_to_do_it(shared_mnist, tmp_path):
    result = run_script("train", "+trainer.strategy=ddp", f"hydra.run.dir={tmp_path}", data_dir=shared_mnist)
    assert result.returncode == 1 and "use trainer=ddp" in result.stderr and "Traceback" not in result.stderr


def test_a_killed_data_parallel_run_resumed_records_what_it_would_have(shared_mnist, tmp_path):
    """Two processes, killed after update 75 and resumed from the checkpoint of update 60: the epoch's train/loss
    and train/acc average the whole epoch, every process's share of it (the checkpoint holds their sum)."""
    ddp = [*MLP[1:], "trainer.max_epochs=3", "trainer=ddp", "trainer.devices=2"]
    ddp += ["callbacks.periodic_checkpoint.every_n_train_steps=4", "trainer.log_every_n_steps=1"]
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert train(shared_mnist, *ddp, f"hydra.run.dir={whole}").returncode == 0
    assert train(shared_mnist, *ddp, *killed_after("steps=15"), f"hydra.run.dir={resumed}").returncode != 0
    forget_killer(resumed / ".hydra" / "overrides.yaml")
    result = train(shared_mnist, f"resume={resumed}")
    assert result.returncode == 0, result.stderr[-3000:]
    expected, got = (events(run) for run in (whole, resumed))
    for tag in ("train/loss", "train/acc", "val/acc", "train/loss_step"):
        pairs = zip(expected.Scalars(tag), got.Scalars(tag), strict=True)
        assert all(e.step == g.step and e.value == pytest.approx(g.value, abs=1e-6) for e, g in pairs), tag
