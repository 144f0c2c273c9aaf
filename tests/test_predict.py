"""scripts/predict.py end to end: a trained network reads digits from image files of any size and mode."""

import csv
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from torch import nn

from cli import run_script, train
from nndl.costs import LogLikelihoodCost
from nndl.data import MNISTDataModule
from nndl.models import MLP

# An MLP with a softmax output that reads the generated digits perfectly after one epoch.
MLP_RUN = ["cost=log_likelihood", "optimizer=adam", "optimizer.lr=0.01", "trainer.max_epochs=1"]
TEST_INDEX = 3  # the generated test digits' labels cycle 0–9: image 3 is a 3
# How far the probabilities predict.py gives may lie from those of the data module's batch: float32 rounding, not
# exactness. The network's outputs z are sums of 784 products (then 30), which the CPU's kernels add in different
# orders — a batch of one goes through a matrix-vector kernel, a batch of many through a blocked matrix-matrix one;
# AVX2, AVX-512 or NEON widths; with or without FMA. float32's eps is 2^-23 ≈ 1.2e-7, and a reordered sum of n
# terms may differ by up to about n·eps·Σ|terms| (784 · 1.2e-7 ≈ 1e-4 of Σ|terms| at worst, about √n·eps ≈ 3e-6 of
# it in practice); softmax passes at most half of the largest change of z on to a probability (Σ_k |∂p_j/∂z_k| =
# 2 p_j (1 − p_j) ≤ 1/2), and predict.py's normalisation adds an ulp. A network of this size, whose |z| stays below
# about 10, thus differs by 1e-7 to 1e-6: one ulp of p_3 ≈ 0.95, 1.2e-7, on an AVX2-only AMD EPYC, where atol=1e-7
# failed. 1e-5 leaves a margin of 10 over that and is still over 300 times below the smallest change a wrong
# preprocessing makes (3.4e-3, the pixels left in 0–255; checked below with a margin of 100).
PROBABILITY_ATOL = 1e-5


@pytest.fixture(scope="module")
def checkpoint(shared_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The last checkpoint of one training run, shared by the tests of this module."""
    run = tmp_path_factory.mktemp("mlp_run")
    result = train(shared_mnist, *MLP_RUN, f"hydra.run.dir={run}")
    assert result.returncode == 0, result.stderr
    return run / "checkpoints" / "last.ckpt"


def generated_test_image(shared_mnist: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Test image ``TEST_INDEX`` as uint8 (28, 28), and as the data module feeds it to the network (1, 1, 28, 28)."""
    data = MNISTDataModule(shared_mnist, download=False, val_size=100)
    data.setup("test")
    return data.test_data[0][TEST_INDEX], next(iter(data.test_dataloader())).x[[TEST_INDEX]]


def bar_photo(path: Path, digit: int) -> None:
    """A 400×300 JPEG of the generated digit ``digit`` drawn dark on a white background, as a photo of paper: rows
    2k+4 and 2k+5 of 28 dark, columns 4–23, in the 400×400 square the 400×300 image is padded to. Its white is
    speckled (195–255) as the generated digits' black is (0–59), so that the network sees what it was taught."""
    scale, pad = 400 / 28, (400 - 300) // 2
    speckle = np.random.default_rng(0).integers(195, 256, (300, 400, 1)).repeat(3, axis=2).astype(np.uint8)
    image = Image.fromarray(speckle, mode="RGB")
    top, bottom = (2 * digit + 4) * scale - pad, (2 * digit + 6) * scale - pad
    ImageDraw.Draw(image).rectangle([round(4 * scale), round(top), round(24 * scale) - 1, round(bottom) - 1], fill=0)
    image.save(path, quality=85)


@pytest.fixture
def inputs(shared_mnist: Path, tmp_path: Path) -> Path:
    """A folder of a 28×28 PNG test digit, a large JPEG of a 6, and a corrupt PNG."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    image, _ = generated_test_image(shared_mnist)
    Image.fromarray(image.numpy(), mode="L").save(folder / "a_test_digit.png")
    bar_photo(folder / "b_photo_of_a_6.jpg", 6)
    Image.fromarray(image.numpy(), mode="L").save(folder / "c_corrupt.png")
    (folder / "c_corrupt.png").write_bytes((folder / "c_corrupt.png").read_bytes()[:100])  # cut short
    return folder


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with open(path) as f:
        return {Path(row["file"]).name: row for row in csv.DictReader(f)}


def test_predict_a_folder_of_images(checkpoint, shared_mnist, inputs, tmp_path):
    out = tmp_path / "predict"
    result = run_script("predict", f"ckpt_path={checkpoint}", f"inputs={inputs}", "csv=true", f"hydra.run.dir={out}")
    assert result.returncode == 0, result.stderr

    # The corrupt file, named on one line of stderr; the others predicted, one line each in the table.
    [warning] = result.stderr.strip().splitlines()
    assert warning.startswith(f"warning: skipped {inputs / 'c_corrupt.png'}: not a readable image (")
    table = result.stdout.splitlines()
    assert re.match(r"file\s+digit\s+p0\s+p1 .* p9$", table[0])
    assert re.match(rf"{re.escape(str(inputs / 'a_test_digit.png'))}\s+3\s+(\d\.\d{{3}}\s+){{9}}\d\.\d{{3}}$", table[1])
    assert re.match(rf"{re.escape(str(inputs / 'b_photo_of_a_6.jpg'))}\s+6\s", table[2])
    assert f"Predictions: {out / 'predictions.csv'}" in result.stdout

    rows = read_csv(out / "predictions.csv")
    assert rows.keys() == {"a_test_digit.png", "b_photo_of_a_6.jpg"}
    probabilities = {name: torch.tensor([float(row[f"p{d}"]) for d in range(10)]) for name, row in rows.items()}
    for name, p in probabilities.items():
        assert p.sum() == pytest.approx(1.0, abs=1e-5) and int(rows[name]["digit"]) == p.argmax()
    assert probabilities["b_photo_of_a_6.jpg"][6] > 0.5

    # The PNG reaches the network as the data module's test batch does: the same probabilities, to float32 rounding
    # (PROBABILITY_ATOL), and the same digit.
    model = MLP.load_from_checkpoint(
        checkpoint, cost=LogLikelihoodCost(), optimizer=None, activation=nn.Sigmoid, weights_only=True
    ).eval()
    _, x = generated_test_image(shared_mnist)

    def softmax(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.softmax(model(x), dim=1)[0]

    expected, got = softmax(x), probabilities["a_test_digit.png"]
    assert got.argmax() == expected.argmax() == TEST_INDEX
    assert torch.allclose(got, expected, atol=PROBABILITY_ATOL, rtol=0), (got - expected).abs().max()
    # The tolerance still catches a wrong preprocessing: the pixels left in 0–255, inverted, transposed or shifted
    # by one pixel move some probability by 3e-3, 0.95, 0.93 and 1.5e-2 here, all over 100 × PROBABILITY_ATOL.
    for wrong in (x * 255, 1 - x, x.transpose(-1, -2), x.roll(1, dims=-1)):
        assert (softmax(wrong) - expected).abs().max() > 100 * PROBABILITY_ATOL


def test_predict_a_single_file(checkpoint, inputs, tmp_path):
    image = inputs / "b_photo_of_a_6.jpg"
    result = run_script("predict", f"ckpt_path={checkpoint}", f"inputs={image}", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 2 and not (tmp_path / "predictions.csv").exists()


def test_csv_takes_a_boolean(checkpoint, inputs, tmp_path):
    image = inputs / "b_photo_of_a_6.jpg"
    result = run_script(
        "predict", f"ckpt_path={checkpoint}", f"inputs={image}", "csv=maybe", f"hydra.run.dir={tmp_path}"
    )
    assert result.returncode == 1 and result.stderr.strip() == "error: csv='maybe' is not allowed: choose true or false"
    assert not (tmp_path / "predictions.csv").exists()


def test_inputs_that_do_not_exist_are_named(checkpoint, tmp_path):
    missing = tmp_path / "no_such_folder"
    result = run_script("predict", f"ckpt_path={checkpoint}", f"inputs={missing}", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [error] = result.stderr.strip().splitlines()
    assert error.startswith(f"error: inputs={missing}: no such file or folder")


def test_nothing_readable_is_an_error(checkpoint, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "notes.txt").write_text("no image here\n")
    result = run_script("predict", f"ckpt_path={checkpoint}", f"inputs={folder}", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    warning, error = result.stderr.strip().splitlines()
    assert warning.startswith(f"warning: skipped {folder / 'notes.txt'}: not a readable image (")
    assert error.startswith(f"error: inputs={folder}: no readable image") and "1 file" in error
    assert result.stdout == ""


def float_tiff_with_nan(path: Path, image: torch.Tensor) -> None:
    """``image`` as a float TIFF (PIL mode "F", pixels in [0, 1]) with one NaN pixel."""
    pixels = image.numpy().astype(np.float32) / 255
    pixels[0, 0] = np.nan
    Image.fromarray(pixels, mode="F").save(path)


def test_every_unusable_input_is_named_and_skipped(checkpoint, shared_mnist, inputs, tmp_path):
    """One rule for a listed file that does not exist, a folder without files, a corrupt file and an image whose
    float pixels are NaN: each is a warning naming it, and the readable images are predicted."""
    missing, empty, nan_tiff = tmp_path / "no_such.png", tmp_path / "empty", tmp_path / "nan.tif"
    empty.mkdir()
    float_tiff_with_nan(nan_tiff, generated_test_image(shared_mnist)[0])
    good, corrupt = inputs / "a_test_digit.png", inputs / "c_corrupt.png"
    listed = ",".join(f"'{path}'" for path in (missing, good, empty, nan_tiff, corrupt))
    out = tmp_path / "predict"
    result = run_script("predict", f"ckpt_path={checkpoint}", f"inputs=[{listed}]", f"hydra.run.dir={out}")
    assert result.returncode == 0, result.stderr
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 4, warnings  # in the order listed
    assert warnings[0].startswith(f"warning: skipped inputs={missing}: no such file or folder")
    assert warnings[1].startswith(f"warning: skipped inputs={empty}: the folder holds no files")
    assert warnings[2].startswith(f"warning: skipped {nan_tiff}: 1 of its 784 float pixels are NaN or infinite")
    assert warnings[3].startswith(f"warning: skipped {corrupt}: not a readable image (")
    [header, row] = result.stdout.splitlines()
    assert header.startswith("file") and re.match(rf"{re.escape(str(good))}\s+3\s", row)


def test_a_list_of_which_nothing_exists_is_an_error(checkpoint, tmp_path):
    missing = [tmp_path / "a.png", tmp_path / "b"]
    listed = ",".join(f"'{path}'" for path in missing)
    result = run_script("predict", f"ckpt_path={checkpoint}", f"inputs=[{listed}]", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    *warnings, error = result.stderr.strip().splitlines()
    assert len(warnings) == len(missing)
    for warning, path in zip(warnings, missing, strict=True):
        assert warning.startswith(f"warning: skipped inputs={path}: no such file or folder")
    assert error.startswith(f"error: inputs={missing[0]}, {missing[1]}: no readable image")
    assert result.stdout == ""
