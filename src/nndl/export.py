"""A checkpoint's network as a plain ``state_dict``: ``scripts/export.py``.

The notes save their CNN with ``torch.save(cnn.state_dict(), ...)``; this writes the same from a checkpoint: the
network's parameters and buffers only, without Lightning's training state (optimizer, loops, callbacks). Next to
it goes the part of the run's config that builds the network (model, cost, activation, optimizer, scheduler), so
that it loads back without the run directory and without a Trainer::

    model = nndl.build.build_model(OmegaConf.load("model.yaml"))
    model.load_state_dict(torch.load("model.pt", weights_only=True))
"""

import os
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from nndl.checkpoints import MODEL_GROUPS, load_model, run_config
from nndl.errors import ConfigError


def export(cfg: DictConfig) -> Path:
    """Write the network of ``cfg.ckpt_path`` as a ``state_dict`` to ``cfg.output`` (by default ``model.pt`` in
    this run's directory) and its model config beside it (the same name with ``.yaml``); print and return the path.
    Files already there are replaced only with ``overwrite=true``."""
    output = Path(cfg.output) if cfg.get("output") else Path(HydraConfig.get().runtime.output_dir) / "model.pt"
    if output.is_dir():
        raise ConfigError(f"output={output} is a folder: give the file to write, e.g. output={output / 'model.pt'}")
    if output.suffix in (".yaml", ".yml"):
        raise ConfigError(
            f"output={output}: the model config goes to a .yaml file beside it; give e.g. output=model.pt"
        )
    overwrite = cfg.get("overwrite", False)
    if not isinstance(overwrite, bool):
        raise ConfigError(f"overwrite={overwrite!r} is not allowed: choose true or false")
    config = output.with_suffix(".yaml")
    existing = [str(path) for path in (output, config) if path.exists()]
    if existing and not overwrite:
        raise ConfigError(
            f"output={output} would replace {' and '.join(existing)}: give another output, or overwrite=true to "
            "replace what is there"
        )
    folder = next(parent for parent in output.parents if parent.exists())  # the nearest that exists
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        what = "is a file, not a folder" if not folder.is_dir() else "cannot be written"
        raise ConfigError(f"output={output}: {folder} {what}; give an output in a folder you can write")
    ckpt, config_file, run_cfg = run_config(cfg)
    model = load_model(ckpt, run_cfg)
    import torch

    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), output)
        write_model_config(run_cfg, config)
    except (OSError, RuntimeError) as err:  # torch reports a file it cannot open as a RuntimeError
        reason = err.strerror if isinstance(err, OSError) and err.strerror else " ".join(str(err).split())[:200]
        raise ConfigError(f"output={output} cannot be written ({reason})") from err
    print(
        f"Exported the state_dict of {ckpt} ({type(model).__name__} {model.architecture}) to {output}\n"
        f"Its model config (run config {config_file}): {config}"
    )
    return output


def write_model_config(run_cfg: DictConfig, path: str | os.PathLike) -> None:
    """The groups of ``run_cfg`` that ``nndl.build.build_model`` reads, resolved, as YAML at ``path``."""
    groups = {  # each resolved where it stands, so that e.g. CurveFit's ${data.function} finds its value
        group: OmegaConf.to_container(run_cfg[group], resolve=True)
        for group in MODEL_GROUPS
        if run_cfg.get(group) is not None
    }
    OmegaConf.save(OmegaConf.create(groups), path)
