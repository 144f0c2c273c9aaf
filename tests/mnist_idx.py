"""Small MNIST files in the real IDX format, written by the tests (the real data is never needed to test)."""

import struct
from pathlib import Path

import torch

IMAGE_MAGIC, LABEL_MAGIC = 0x803, 0x801


def write_images(path: Path, images: torch.Tensor, magic: int = IMAGE_MAGIC) -> None:
    n, rows, cols = images.shape
    path.write_bytes(struct.pack(">4I", magic, n, rows, cols) + images.to(torch.uint8).numpy().tobytes())


def write_labels(path: Path, labels: torch.Tensor, magic: int = LABEL_MAGIC) -> None:
    path.write_bytes(struct.pack(">2I", magic, len(labels)) + labels.to(torch.uint8).numpy().tobytes())


def digits(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` easy 28×28 "digits": label k lights rows 2k+4 and 2k+5 over faint noise; labels cycle 0–9."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    images = torch.randint(0, 60, (n, 28, 28), generator=g)
    for k in range(10):
        images[labels == k, 2 * k + 4 : 2 * k + 6, 4:24] = 255
    return images, labels


def write_mnist(root: Path, n_train: int = 600, n_test: int = 100) -> Path:
    """``root/MNIST/raw/`` with the four files, as torchvision lays them out; returns ``root``."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = digits(n, seed)
        write_images(raw / f"{prefix}-images-idx3-ubyte", images)
        write_labels(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root
