"""The test metrics of a saved checkpoint: ``scripts/eval.py``.

The run's own config (found next to the checkpoint, or given with ``config_path=``) rebuilds its data module, its
model and its Trainer; the checkpoint's weights are loaded into the model safely (``nndl.checkpoints``) and the
official test set runs through ``Trainer.test``, as at the end of training. The test accuracy of the checkpoint
training tested (``metrics.json``'s ``checkpoint``) is therefore the one training reported.
"""

import json
import logging
import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from nndl.checkpoints import load_model, run_config
from nndl.precision import resolve_precision

log = logging.getLogger(__name__)

# The parts of the run's config an evaluation builds (and so checks; see nndl.run_config).
EVAL_GROUPS = ("model", "cost", "activation", "optimizer", "scheduler", "data")


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test ``cfg.ckpt_path`` on its run's test set; log the metrics to TensorBoard in this evaluation's run
    directory, write them to its ``metrics.json``, print them and return them (with the checkpoint and config)."""
    ckpt, config_file, run_cfg = run_config(cfg, EVAL_GROUPS)  # bad paths fail here, before torch loads
    import lightning as L

    from nndl.build import build, quiet_library_noise

    quiet_library_noise()
    L.seed_everything(run_cfg.seed, workers=True)

    model = load_model(ckpt, run_cfg)  # a bad checkpoint fails first, before any data is read
    datamodule = build(run_cfg.data)
    datamodule.prepare_data()  # missing or bad data files fail here, with the message training gives
    datamodule.setup("test")

    logger = build(cfg.logger)
    trainer = build(
        trainer_config(run_cfg, cfg.trainer),
        logger=logger,
        callbacks=[],
        enable_checkpointing=False,
        enable_progress_bar=sys.stderr.isatty(),
    )
    test = trainer.test(model, datamodule=datamodule, verbose=False)[0]

    data_dir = run_cfg.data.get("data_dir")
    report = {"checkpoint": str(ckpt), "config": str(config_file), "data_dir": str(data_dir or ""), **test}
    logger.log_hyperparams(
        {**{k: v for k, v in report.items() if not k.startswith("test/")}, "architecture": model.architecture},
        metrics={f"hp/{name.replace('/', '_')}": value for name, value in test.items()},
    )
    (Path(logger.log_dir) / logger.NAME_HPARAMS_FILE).unlink(missing_ok=True)  # written empty by the test: anew
    logger.finalize("success")
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    (out_dir / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"\nTest metrics of {ckpt} (run config {config_file}):\n"
        + "\n".join(f"  {name:<10} {value:.4f}" for name, value in test.items())
        + f"\nEval directory: {out_dir}"
    )
    return report


def trainer_config(run_cfg: DictConfig, overrides: DictConfig | None) -> DictConfig:
    """A Trainer config with the run's accelerator, devices, precision and determinism (``nndl.run_config``'s
    ``TRAINER_KEYS``), and the evaluation's ``trainer.*`` values that are set in their place; ``ConfigError`` when
    it asks for a GPU this machine does not have."""
    settings = dict(run_cfg.get("trainer") or {})
    settings.update({key: value for key, value in (overrides or {}).items() if value is not None})
    from nndl.build import check_accelerator

    accelerator = str(settings.get("accelerator", "auto"))
    check_accelerator(accelerator)
    if "precision" in settings:  # precision=auto: bf16 where the hardware has it, as in training
        settings["precision"], why = resolve_precision(settings["precision"], accelerator)
        log.info(why)
    # under its key, as in a run's config: an error building it names trainer.<key>
    return OmegaConf.create({"trainer": {"_target_": "lightning.pytorch.Trainer", **settings}}).trainer
