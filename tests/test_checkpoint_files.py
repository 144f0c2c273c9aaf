"""nndl.checkpoints on files that are not the lab's own checkpoints: pickled code, plain data, a config that is
not a run's (the lab's checkpoints, eval and export end to end: tests/test_checkpoints.py)."""

import os
from pathlib import Path

import pytest
import torch

from nndl.checkpoints import load_run_config, load_state_dict
from nndl.errors import CheckpointError, ConfigError


class Payload:
    """Pickled, it asks the loader to create ``marker``: what a malicious checkpoint could make it do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.makedirs, (str(self.marker),)


def test_a_checkpoint_with_pickled_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    ckpt = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"layers.0.weight": torch.zeros(1)}, "extra": Payload(marker)}, ckpt)
    with pytest.raises(CheckpointError, match="holds objects other than tensors and plain containers"):
        load_state_dict(ckpt)
    assert not marker.exists()
    torch.load(ckpt, weights_only=False)  # the payload is real: an unsafe load runs it
    assert marker.is_dir()


def test_plain_data_that_is_no_checkpoint_is_refused(tmp_path):
    ckpt = tmp_path / "list.pt"
    torch.save([1, 2, 3], ckpt)
    with pytest.raises(CheckpointError, match="not a checkpoint: expected a Lightning checkpoint"):
        load_state_dict(ckpt)


def test_a_config_that_is_not_a_run_config(tmp_path):
    (tmp_path / "config.yaml").write_text("seed: 1\nmodel: {}\n")
    with pytest.raises(ConfigError, match=r"is not the composed config of a training run .* it has no cost"):
        load_run_config(tmp_path / "config.yaml")
