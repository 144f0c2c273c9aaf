"""Any image of a digit as an MNIST image: what ``scripts/predict.py`` feeds a trained network.

MNIST's digits are white on a black background, 28×28 pixels, one 8-bit grey channel. A photo or a drawing of a
digit is usually dark on a light background, of any size, in colour, maybe with transparency or 16 bits per
pixel; ``mnist_image`` brings it to MNIST's form, and ``unit_pixels`` (the same function the data module applies to
every batch) then scales it to the network's input, float in [0, 1].
"""

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from nndl.data.batches import unit_pixels
from nndl.errors import InputError
from nndl.mnist_shape import IMAGE_SIZE

# Modes of more than 8 bits per pixel, which PIL's convert("L") would clip at 255 rather than scale.
WIDE_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N")


def mnist_image(image: Image.Image) -> Tensor:
    """``image`` converted as MNIST's digits are: a uint8 tensor (28, 28), a light digit on a dark background;
    ``InputError`` when its pixels are floats and some are NaN or infinite (no grey level to give them).

    1. Turned upright as its EXIF orientation says (photos), then made grey: colour by luminance (ITU-R 601-2,
       PIL's ``convert("L")``); 16-bit and 32-bit integer pixels scaled from 0–65535 to 0–255 (not clipped);
       transparent pixels laid over a plain background that contrasts with the opaque ones (white under a dark
       drawing, black under a light one), so a digit on a transparent canvas stays visible.
    2. The background colour is the median of the pixels on the image's border.
    3. Padded to a square with the background colour, the digit centred, so that resizing keeps its aspect ratio.
    4. Resized to 28×28 (area-averaged when shrinking, bilinear when enlarging); a 28×28 image is left as it is,
       so an MNIST image passes through unchanged.
    5. Inverted when the background is light (its median above 127): MNIST's digits are white on black.

    MNIST itself also fits each digit into a 20×20 box and centres it by its centre of mass; this function does
    not crop, so a digit should fill most of its image, as a digit in MNIST fills most of its 28×28.
    """
    grey = _grey(ImageOps.exif_transpose(image))
    pixels = np.asarray(grey)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    background = int(np.median(border))
    width, height = grey.size
    if width != height:
        side = max(width, height)
        square = Image.new("L", (side, side), background)
        square.paste(grey, ((side - width) // 2, (side - height) // 2))
        grey = square
    if grey.size != (IMAGE_SIZE, IMAGE_SIZE):
        shrink = grey.size[0] > IMAGE_SIZE
        grey = grey.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR)
    if background > 127:
        grey = ImageOps.invert(grey)
    return torch.from_numpy(np.array(grey, dtype=np.uint8))


def _grey(image: Image.Image) -> Image.Image:
    """One 8-bit grey channel ("L"), as ``mnist_image`` step 1 describes."""
    if image.mode in WIDE_MODES:
        wide = np.asarray(image).astype(np.float64)
        return Image.fromarray(np.clip(np.rint(wide / 257), 0, 255).astype(np.uint8), mode="L")
    if image.mode == "F":  # floating-point pixels: taken as [0, 1] when they fit there, else as [0, 255]
        values = np.asarray(image, dtype=np.float64)
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:  # NaN would make the test of the range below false and be cast to an arbitrary grey
            raise InputError(
                f"{bad} of its {values.size} float pixels are NaN or infinite: no grey level can be read from them"
            )
        scale = 255.0 if values.size and values.max() <= 1.0 else 1.0
        return Image.fromarray(np.clip(np.rint(values * scale), 0, 255).astype(np.uint8), mode="L")
    if image.has_transparency_data:
        grey, alpha = (np.asarray(band, dtype=np.float64) for band in image.convert("LA").split())
        alpha /= 255
        opaque = alpha.sum()
        drawing = (grey * alpha).sum() / opaque if opaque else 0.0
        canvas = 255.0 if drawing < 128 else 0.0  # white under a dark drawing, black under a light one
        return Image.fromarray(np.rint(grey * alpha + canvas * (1 - alpha)).astype(np.uint8), mode="L")
    return image.convert("L")


def read_image(path: str | os.PathLike) -> Tensor:
    """The image file at ``path`` as ``mnist_image`` makes it; ``InputError`` naming the file if it cannot be read
    or its pixels cannot be made an MNIST image (NaN or infinite float pixels)."""
    try:
        with Image.open(path) as image:
            image.load()  # decode now: a truncated or corrupt file fails here, not later
            return mnist_image(image)
    except InputError as err:  # decoded, but its pixels cannot be made an MNIST image
        raise InputError(f"{path}: {err}") from None
    except Exception as err:  # PIL raises OSError, ValueError, SyntaxError, ... for damaged or foreign files
        raise InputError(f"{path}: not a readable image ({type(err).__name__}: {err})") from None


def image_files(path: str | os.PathLike) -> list[Path]:
    """The files to predict: ``path`` itself, or every file in the folder ``path`` (not hidden, not in sub-folders),
    sorted by name. ``InputError`` if there is no such file or folder, or the folder holds no file."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError(f"inputs={path}: no such file or folder; expected an image file or a folder of images")
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise InputError(f"inputs={path}: the folder holds no files; expected images (PNG, JPEG, ...)")
    return files


def model_inputs(images: Sequence[Tensor]) -> Tensor:
    """uint8 images (28, 28) as one batch of the network's input, scaled exactly as the data module scales MNIST."""
    return unit_pixels(torch.stack(list(images)))
