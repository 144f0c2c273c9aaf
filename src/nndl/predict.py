"""The digit a trained network sees in each image: ``scripts/predict.py``.

Each image is made an MNIST image (``nndl.data.images.mnist_image``: grey, square, 28×28, a light digit on a dark
background) and scaled as the data module scales MNIST; the network, rebuilt from its run's config with the
checkpoint's weights (``nndl.checkpoints``), gives its outputs a^L. The predicted digit is argmax_j a^L_j.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, ListConfig, OmegaConf

from nndl.checkpoints import load_model, required, run_config
from nndl.errors import ConfigError, InputError

if TYPE_CHECKING:  # torch and Lightning load once the checkpoint and its config are found
    from torch import Tensor

    from nndl.models import Classifier

DIGITS = 10


@dataclass
class Prediction:
    """One image's predicted digit and the probability of each digit 0–9."""

    file: Path
    digit: int
    probabilities: list[float]


def predict(cfg: DictConfig) -> list[Prediction]:
    """Predict every image of ``cfg.inputs`` with the network of ``cfg.ckpt_path``; print a table (and write
    ``predictions.csv`` in this run's directory when ``cfg.csv``) and return the predictions.

    One rule for every input: what cannot be used — a listed file or folder that does not exist, a folder that
    holds no files, a file that is not a readable image (corrupt, truncated, not an image, float pixels that are
    NaN or infinite) — is reported on stderr, by name, and skipped; the others are predicted. ``InputError`` when
    nothing is left to predict: with the one problem's own message when ``inputs`` names a single file or folder
    that does not exist or holds no files, else after the warnings, as "no readable image".
    """
    if not isinstance(cfg.get("csv", False), bool):
        raise ConfigError(f"csv={cfg.csv!r} is not allowed: choose true or false")
    ckpt, _, run_cfg = run_config(cfg)
    from nndl.data.images import image_files, model_inputs, read_image
    from nndl.models import Classifier

    if not OmegaConf.is_missing(cfg, "inputs") and isinstance(cfg.inputs, ListConfig):  # inputs=[a.png,b.png]
        paths = [str(path) for path in cfg.inputs]
    else:
        paths = [required(cfg, "inputs", "digits/")]
    files, missing = [], []
    for path in paths:  # cheap checks of the paths first, before torch loads the checkpoint
        try:
            files.extend(image_files(path))
        except InputError as err:
            missing.append(err)
    if not files and len(missing) == 1:
        raise missing[0]  # the whole of inputs: its own message, not a warning followed by the same as an error
    for err in missing:
        _skipped(err)
    if not files:
        raise InputError(f"inputs={', '.join(paths)}: no readable image; none of these is a file or a folder of files")
    model = load_model(ckpt, run_cfg)
    if not isinstance(model, Classifier):
        raise ConfigError(
            f"{ckpt} holds a {type(model).__name__}, not a digit classifier: predict needs a model=mlp or model=cnn run"
        )

    images, readable = [], []
    for file in files:
        try:
            images.append(read_image(file))
            readable.append(file)
        except InputError as err:
            _skipped(err)
    if not images:
        count = f"{len(files)} file{'s' if len(files) != 1 else ''}"
        raise InputError(f"inputs={', '.join(paths)}: no readable image among its {count}")

    probabilities = digit_probabilities(model, model_inputs(images))
    predictions = [
        Prediction(file, int(p.argmax()), p.tolist()) for file, p in zip(readable, probabilities, strict=True)
    ]
    print(table(predictions))
    if cfg.get("csv"):
        out = Path(HydraConfig.get().runtime.output_dir) / "predictions.csv"
        write_csv(out, predictions)
        print(f"Predictions: {out}")
    return predictions


def _skipped(err: InputError) -> None:
    print(f"warning: skipped {err}", file=sys.stderr)


def digit_probabilities(model: Classifier, x: Tensor) -> Tensor:
    """The classifier's probability of each digit for inputs ``x`` (n, 1, 28, 28), in float32
    (``Classifier.digit_probabilities``)."""
    import torch

    model.eval()
    with torch.inference_mode():
        return model.digit_probabilities(model(x.to(model.device))).float().cpu()


def table(predictions: Sequence[Prediction]) -> str:
    """One line per image: the file, the predicted digit and the 10 probabilities, in aligned columns."""
    width = max(len("file"), *(len(str(p.file)) for p in predictions))
    header = f"{'file':<{width}}  digit  " + "  ".join(f"{f'p{d}':>5}" for d in range(DIGITS))
    rows = [
        f"{p.file!s:<{width}}  {p.digit:>5}  " + "  ".join(f"{q:5.3f}" for q in p.probabilities) for p in predictions
    ]
    return "\n".join([header, *rows])


def write_csv(path: str | os.PathLike, predictions: Sequence[Prediction]) -> None:
    """``file,digit,p0,...,p9``, one row per image, the probabilities in full precision."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "digit", *(f"p{d}" for d in range(DIGITS))])
        for p in predictions:
            writer.writerow([str(p.file), p.digit, *(repr(q) for q in p.probabilities)])
