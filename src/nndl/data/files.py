"""Finding, checking and downloading the four MNIST files, with errors that say what is wrong and where.

The files are IDX files (http://yann.lecun.com/exdb/mnist/): a big-endian header — a magic number, then one
32-bit size per dimension — followed by uint8 data. torchvision parses them; this module only checks, before any
training starts, that the headers, sizes, counts and labels are what torchvision and the models expect, so that a
bad file is reported by name instead of as a stack trace from deep inside a parser.
"""

import os
import shutil
import struct
import tempfile
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from nndl.errors import DataError
from nndl.mnist_shape import IMAGE_SIZE, NUM_CLASSES

IMAGE_MAGIC = 0x00000803  # uint8 data, 3 dimensions (count, rows, columns)
LABEL_MAGIC = 0x00000801  # uint8 data, 1 dimension (count)
HOW_TO_POINT_ELSEWHERE = (
    "point the project at a directory holding MNIST/raw/ with the four files: "
    "set NNDL_DATA_DIR=/path/to/dir or pass data.data_dir=/path/to/dir"
)


@dataclass(frozen=True)
class Split:
    """One split of MNIST: its image file and its label file, as torchvision names them."""

    name: str
    images: str
    labels: str


TRAIN = Split("train", "train-images-idx3-ubyte", "train-labels-idx1-ubyte")
TEST = Split("test", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FILES = (TRAIN.images, TRAIN.labels, TEST.images, TEST.labels)


def raw_dir(data_dir: str | os.PathLike) -> Path:
    """Where torchvision keeps the unpacked files: ``<data_dir>/MNIST/raw``."""
    return Path(data_dir) / "MNIST" / "raw"


def missing_files(data_dir: str | os.PathLike) -> list[str]:
    return [name for name in FILES if not (raw_dir(data_dir) / name).is_file()]


def missing_files_error(data_dir: str | os.PathLike, reason: str) -> DataError:
    data_dir = Path(data_dir)
    searched = raw_dir(data_dir).resolve()
    hint = ""
    if (data_dir / TRAIN.images).is_file():
        hint = f" (the files lie in {data_dir} itself: use the directory two levels up, which holds MNIST/raw/)"
    return DataError(
        f"MNIST files not found in {searched}: missing {', '.join(missing_files(data_dir))}; {reason}{hint}. "
        f"To fix it, {HOW_TO_POINT_ELSEWHERE}."
    )


def download(data_dir: str | os.PathLike) -> None:
    """Download the four files with torchvision into ``<data_dir>/MNIST/raw``, all or nothing.

    torchvision downloads into a temporary directory beside the target; only complete, checksummed files are moved
    into place, and on failure every file and directory this call created is removed again.
    """
    from torchvision.datasets import MNIST

    data_dir = Path(data_dir)
    target = raw_dir(data_dir)
    created = [d for d in (data_dir, data_dir / "MNIST", target) if not d.exists()]
    try:
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".download-", dir=data_dir) as tmp:
            with redirect_stdout(None):  # torchvision prints every mirror it tries
                MNIST(tmp, train=True, download=True)
            for name in missing_files(data_dir):
                os.replace(raw_dir(tmp) / name, target / name)
    except Exception as err:
        for d in reversed(created):
            shutil.rmtree(d, ignore_errors=True)
        reason = " ".join(str(err).split())  # torchvision's message spans several lines
        raise missing_files_error(data_dir, f"downloading them failed ({reason})") from None


def check(data_dir: str | os.PathLike) -> None:
    """Check both splits' files (present, IDX headers, sizes, counts, labels 0–9); raise DataError naming the file."""
    if missing_files(data_dir):
        raise missing_files_error(data_dir, "download=false, so nothing was downloaded")
    for split in (TRAIN, TEST):
        n_images = _check_idx(raw_dir(data_dir) / split.images, IMAGE_MAGIC, "images", (IMAGE_SIZE, IMAGE_SIZE))
        n_labels = _check_idx(raw_dir(data_dir) / split.labels, LABEL_MAGIC, "labels", ())
        if n_images != n_labels:
            raise DataError(
                f"MNIST {split.name} split: {raw_dir(data_dir) / split.images} holds {n_images} images but "
                f"{split.labels} holds {n_labels} labels; the two files must come from the same release"
            )
        _check_labels(raw_dir(data_dir) / split.labels)


def _check_idx(path: Path, magic: int, what: str, item_shape: tuple[int, ...]) -> int:
    """Check one IDX file's header against its size; return the number of items it holds."""
    header_size = 4 * (2 + len(item_shape))
    with open(path, "rb") as f:
        header = f.read(header_size)
    if header[:2] == b"\x1f\x8b":
        raise DataError(f"{path}: the file is gzip-compressed; unzip it (gunzip {path.name}) and try again")
    if len(header) < header_size:
        raise DataError(f"{path}: truncated, only {len(header)} bytes, shorter than the {header_size}-byte IDX header")
    found_magic, count, *shape = struct.unpack(f">{2 + len(item_shape)}I", header)
    if found_magic != magic:
        raise DataError(
            f"{path}: wrong magic number 0x{found_magic:08x}, expected 0x{magic:08x} (an IDX file of uint8 {what}); "
            "is this the right file?"
        )
    if tuple(shape) != item_shape:
        size = "×".join(map(str, shape))
        raise DataError(f"{path}: {what} of {size} pixels, expected {IMAGE_SIZE}×{IMAGE_SIZE}")
    expected = header_size + count * (IMAGE_SIZE * IMAGE_SIZE if item_shape else 1)
    actual = path.stat().st_size
    if actual < expected:
        raise DataError(
            f"{path}: truncated, {actual} bytes but its header announces {count} {what} ({expected} bytes); "
            "download or copy it again"
        )
    if actual > expected:
        raise DataError(f"{path}: {actual - expected} bytes more than the {count} {what} its header announces")
    return count


def _check_labels(path: Path) -> None:
    labels = path.read_bytes()[8:]
    if labels and max(labels) >= NUM_CLASSES:
        bad = next(i for i, label in enumerate(labels) if label >= NUM_CLASSES)
        raise DataError(f"{path}: label {labels[bad]} at index {bad} is outside 0–9")
