"""Sweeps through Hydra's submitit launcher (the [cluster] extra): each job in a process of its own, as on SLURM."""

import json

import pytest

from cli import run_script

pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="the [cluster] extra is not installed")


def test_a_sweep_runs_through_the_submitit_launcher(shared_mnist, tmp_path):
    args = ["-m", "hydra/launcher=submitit_local", "optimizer.lr=0.1,1", "trainer.max_epochs=1", "data.val_size=100"]
    result = run_script("train", *args, f"hydra.sweep.dir={tmp_path}", data_dir=shared_mnist)
    assert result.returncode == 0, result.stderr
    reports = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*/metrics.json"))]
    assert len(reports) == 2 and all(r["status"] in ("ok", "no_learning") for r in reports)
    assert "Sweep of 2 runs" in result.stdout
