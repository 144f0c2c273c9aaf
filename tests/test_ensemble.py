"""The ensemble of chapter 6: majority vote and averaged probabilities of several networks' checkpoints."""

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from cli import ROOT, run_script
from nndl.build import build_model
from nndl.config import compose
from nndl.ensemble import (
    averaged,
    evaluate_ensemble,
    majority_vote,
    network_config,
    network_probabilities,
    resolve_checkpoint,
    run_config,
)
from nndl.errors import CheckpointError, ConfigError
from nndl.rundir import lock, unlock


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


def test_a_tie_goes_to_the_higher_mean_probability_however_close():
    p = torch.zeros(2, 1, 10)
    p[0, 0, 1], p[0, 0, 7] = 0.5, 0.49999997  # votes 1
    p[1, 0, 1], p[1, 0, 7] = 0.49999976, 0.49999997  # votes 7: a tie, and 7's mean is higher by 9e-8
    assert p.mean(dim=0)[0, 7] > p.mean(dim=0)[0, 1]
    assert majority_vote(p).tolist() == averaged(p).tolist() == [7]


def fake_runs(
    tmp_path: Path, data_dir: Path, seeds: list[int], overrides: tuple[str, ...] = ("model.sizes=[784,20,10]",)
) -> list[Path]:
    """Run directories as training leaves them (config and checkpoint), with untrained networks of ``seeds``."""
    runs = []
    for seed in seeds:
        run = tmp_path / f"run{seed}"
        data = [f"data.data_dir={data_dir}"] if "experiment=universality" not in overrides else []
        cfg = compose(ROOT / "conf", [f"seed={seed}", *data, *overrides], run)
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
    assert "GPU available" not in out.stdout + out.stderr  # the table, not Lightning's device lines per network
    assert json.loads((tmp_path / "r.json").read_text())["vote"] == pytest.approx(result.vote)


def test_a_run_without_its_checkpoint_is_named(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"checkpoint": None}))
    with pytest.raises(CheckpointError, match="names no checkpoint"):
        evaluate_ensemble([tmp_path])


def run_dir(path: Path, metrics: dict, checkpoints: tuple[str, ...] = ("epoch003.ckpt",)) -> Path:
    """A run directory with ``metrics.json`` and empty checkpoint files (only their paths are looked at)."""
    (path / "checkpoints").mkdir(parents=True)
    for name in checkpoints:
        (path / "checkpoints" / name).touch()
    (path / "metrics.json").write_text(json.dumps(metrics))
    return path


def test_a_moved_or_handed_over_run_directory_is_read_from_where_it_is_now(tmp_path):
    elsewhere = str(tmp_path / "original" / "checkpoints" / "epoch003.ckpt")  # where it was written
    run = run_dir(tmp_path / "moved", {"status": "ok", "checkpoint": elsewhere})
    assert resolve_checkpoint(run) == run / "checkpoints" / "epoch003.ckpt"
    other = run_dir(tmp_path / "other", {"status": "ok"}, ("epoch009.ckpt",))
    foreign = run_dir(tmp_path / "foreign", {"status": "ok", "checkpoint": str(other / "checkpoints/epoch009.ckpt")})
    with pytest.raises(CheckpointError, match="names no checkpoint"):  # not followed out of its own directory
        resolve_checkpoint(foreign)
    (run / "metrics.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"metrics\.json: not a readable metrics file"):
        resolve_checkpoint(run)


@pytest.mark.parametrize("status", ["interrupted", "diverged", "failed", "no_learning"])
def test_a_run_that_did_not_end_ok_is_refused_with_its_status(tmp_path, status):
    run = run_dir(tmp_path, {"status": status, "reason": "SIGTERM after 3 complete epoch(s)",
                             "checkpoint": str(tmp_path / "checkpoints" / "epoch003.ckpt")})  # fmt: skip
    with pytest.raises(CheckpointError, match=f"ended '{status}' \\(SIGTERM after 3") as err:
        evaluate_ensemble([run])
    assert ("resume=" in str(err.value)) == (status == "interrupted")
    assert resolve_checkpoint(run / "checkpoints" / "epoch003.ckpt").is_file()  # its file, given, is taken as it is


def test_an_unfinished_run_is_named_as_such(tmp_path):
    run = run_dir(tmp_path / "killed", {})
    (run / "metrics.json").unlink()  # SIGKILL, or still training: nothing reported yet
    with pytest.raises(CheckpointError, match=r"no metrics\.json, the run is unfinished"):
        resolve_checkpoint(run)
    with pytest.raises(CheckpointError, match="not a run directory"):  # a folder that is no run directory
        resolve_checkpoint(tmp_path)


def test_a_checkpoint_away_from_its_run_directory_is_named(tmp_path):
    (tmp_path / "stray.ckpt").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"stray\.ckpt: no run config next to it") as err:
        evaluate_ensemble([tmp_path / "stray.ckpt"])
    assert "config_path" not in str(err.value)  # eval.py's option: scripts/ensemble.py has none


def test_a_failed_runs_error_and_a_missing_path_are_named(tmp_path):
    run = run_dir(tmp_path / "failed", {"status": "failed", "error": "ConfigError: model.l2=-1 is out of range"})
    with pytest.raises(CheckpointError, match=r"ended 'failed' \(ConfigError: model\.l2=-1 is out of range\)"):
        resolve_checkpoint(run)
    with pytest.raises(CheckpointError, match="no such checkpoint file or run directory") as err:
        resolve_checkpoint(tmp_path / "nowhere")
    assert "ckpt_path" not in str(err.value)  # eval.py's option: scripts/ensemble.py has none


def test_a_run_directory_is_rebuilt_from_its_own_config(tmp_path):
    run = run_dir(tmp_path / "run", {"status": "ok", "checkpoint": "epoch003.ckpt"})
    with pytest.raises(ConfigError, match=r"no \.hydra/config\.yaml"):  # not looked for where a link leads
        run_config(run)
    (run / ".hydra").mkdir()
    (run / ".hydra" / "config.yaml").touch()
    assert run_config(run) == run / ".hydra" / "config.yaml"


def test_a_run_training_again_is_refused(tmp_path):
    run = run_dir(tmp_path / "run", {"status": "ok", "checkpoint": "epoch003.ckpt"})
    assert resolve_checkpoint(run) == run / "checkpoints" / "epoch003.ckpt"
    lock(run)  # resume=<run_dir> trainer.max_epochs=...: its ok report stays while it trains on
    try:
        with pytest.raises(CheckpointError, match=r"the run is training \(another process holds its \.lock\)"):
            resolve_checkpoint(run)
    finally:
        unlock(run)


def test_only_digit_classifiers_trained_on_mnist_vote(tmp_path, shared_mnist):
    (curve,) = fake_runs(tmp_path, shared_mnist, [1], ("experiment=universality",))
    with pytest.raises(ConfigError, match=r"run1: its run trained on data\._target_=nndl\.data\.function\."):
        network_config(curve, None)
    with pytest.raises(ConfigError, match=r"its run trained on data\._target_="):  # before --data-dir is applied
        evaluate_ensemble([curve], data_dir=str(shared_mnist))


def test_a_network_whose_outputs_are_not_finite_cannot_vote(tmp_path, shared_mnist):
    runs = fake_runs(tmp_path, shared_mnist, [1, 2])
    ckpt = runs[1] / "checkpoints" / "last.ckpt"
    saved = torch.load(ckpt, weights_only=True)
    next(v for k, v in saved["state_dict"].items() if k.endswith("weight")).fill_(float("nan"))
    torch.save(saved, ckpt)
    with pytest.raises(CheckpointError, match=r"last\.ckpt: its network's outputs are not finite"):
        evaluate_ensemble(runs)


def test_each_network_computes_in_its_runs_precision(tmp_path, shared_mnist):
    (run,) = fake_runs(tmp_path, shared_mnist, [1], ("model.sizes=[784,20,10]", "trainer.precision=64-true"))
    cfg = network_config(run, None)
    from nndl.build import build
    from nndl.checkpoints import load_model

    datamodule = build(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("test")
    p = network_probabilities(resolve_checkpoint(run), cfg, datamodule)
    x = torch.cat([batch.x for batch in datamodule.test_dataloader()])
    model = load_model(run / "checkpoints" / "last.ckpt", cfg)
    with torch.inference_mode():
        p32 = model.digit_probabilities(model(x)).double()
        model.double()
        p64 = model.digit_probabilities(model(x.double()))
    assert p.dtype == torch.float64 and p.shape == (100, 10)
    assert (p - p64).abs().max() < 1e-12 < (p - p32).abs().max()  # float64, as the run tested: not float32
