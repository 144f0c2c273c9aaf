"""The ensemble of chapter 6: majority vote and averaged probabilities of several networks' checkpoints."""

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from cli import ROOT, run_script
from nndl.build import build_model
from nndl.config import compose
from nndl.ensemble import averaged, evaluate_ensemble, majority_vote
from nndl.errors import CheckpointError


def test_the_majority_decides_and_the_mean_probability_breaks_ties():
    p = torch.tensor(
        [
            [[0.6, 0.4, 0, 0, 0, 0, 0, 0, 0, 0], [0.9, 0.1, 0, 0, 0, 0, 0, 0, 0, 0]],
            [[0.4, 0.6, 0, 0, 0, 0, 0, 0, 0, 0], [0.2, 0.8, 0, 0, 0, 0, 0, 0, 0, 0]],
            [[0.45, 0.55, 0, 0, 0, 0, 0, 0, 0, 0], [0.2, 0.0, 0.8, 0, 0, 0, 0, 0, 0, 0]],
        ]
    )  # 3 networks, 2 examples: 2 votes for digit 1 against 1; then one vote each, digit 0 most probable on average
    assert majority_vote(p).tolist() == [1, 0]
    assert averaged(p).tolist() == [1, 0]
    unsure = [0.0, 0.35, 0.33, 0.32] + [0.0] * 6
    confident = torch.tensor([[[0.0] * 9 + [1.0]], [unsure], [unsure]])
    assert majority_vote(confident).tolist() == [1] and averaged(confident).tolist() == [9]  # where they differ


def fake_runs(tmp_path: Path, data_dir: Path, seeds: list[int]) -> list[Path]:
    """Run directories as training leaves them (config and checkpoint), with untrained networks of ``seeds``."""
    runs = []
    for seed in seeds:
        run = tmp_path / f"run{seed}"
        cfg = compose(ROOT / "conf", [f"seed={seed}", f"data.data_dir={data_dir}", "model.sizes=[784,20,10]"], run)
        (run / ".hydra").mkdir(parents=True)
        saved = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])  # as .hydra/config.yaml holds it
        OmegaConf.save(saved, run / ".hydra" / "config.yaml", resolve=False)
        torch.manual_seed(seed)
        model = build_model(cfg)
        (run / "checkpoints").mkdir()
        torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)},
                   run / "checkpoints" / "last.ckpt")  # fmt: skip
        (run / "metrics.json").write_text(json.dumps({"checkpoint": str(run / "checkpoints" / "last.ckpt")}))
        runs.append(run)
    return runs


@pytest.mark.e2e  # runs scripts/ensemble.py
def test_an_ensemble_of_checkpoints_is_scored_on_the_test_set(shared_mnist, tmp_path):
    runs = fake_runs(tmp_path, shared_mnist, [1, 2, 3])
    result = evaluate_ensemble([runs[0], runs[1] / "checkpoints" / "last.ckpt", runs[2]])
    assert result.examples == 100 and len(result.members) == 3
    assert all(0 <= acc <= 1 for acc in [*result.members, result.vote, result.mean])
    alone = evaluate_ensemble([runs[0]])  # one network: the vote and the mean are its own answer
    assert alone.vote == alone.mean == alone.members[0] == result.members[0]

    out = run_script("ensemble", *map(str, runs), "--json", str(tmp_path / "r.json"))
    assert out.returncode == 0, out.stderr
    assert "majority vote of 3" in out.stdout and "averaged probabilities of 3" in out.stdout
    assert json.loads((tmp_path / "r.json").read_text())["vote"] == pytest.approx(result.vote)


def test_a_run_without_its_checkpoint_is_named(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"checkpoint": None}))
    with pytest.raises(CheckpointError, match="names no checkpoint"):
        evaluate_ensemble([tmp_path])
