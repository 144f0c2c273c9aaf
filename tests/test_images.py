"""nndl.data.images: any image of a digit made an MNIST image, as scripts/predict.py feeds it to a network."""

import re

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from nndl.data import MNISTDataModule
from nndl.data.images import image_files, mnist_image, model_inputs, read_image
from nndl.errors import InputError


def block(width: int, height: int, box: tuple[int, int, int, int], ink: int, paper: int) -> Image.Image:
    """A grey image of ``paper`` with the rectangle ``box`` (left, top, right, bottom; exclusive) in ``ink``."""
    pixels = np.full((height, width), paper, dtype=np.uint8)
    left, top, right, bottom = box
    pixels[top:bottom, left:right] = ink
    return Image.fromarray(pixels, mode="L")


def expected_block(rows: slice, cols: slice, value: int = 255) -> torch.Tensor:
    out = torch.zeros(28, 28, dtype=torch.uint8)
    out[rows, cols] = value
    return out


def test_an_mnist_image_passes_unchanged():
    pixels = torch.randint(0, 256, (28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    pixels[0, :] = pixels[-1, :] = pixels[:, 0] = pixels[:, -1] = 0  # a dark border, as MNIST's
    out = mnist_image(Image.fromarray(pixels.numpy(), mode="L"))
    assert out.dtype == torch.uint8 and out.shape == (28, 28)
    assert torch.equal(out, pixels)


def test_dark_digit_on_light_background_is_inverted():
    out = mnist_image(block(28, 28, (10, 4, 18, 24), ink=0, paper=255))
    assert torch.equal(out, expected_block(slice(4, 24), slice(10, 18)))


def test_light_digit_on_dark_background_is_kept():
    out = mnist_image(block(28, 28, (10, 4, 18, 24), ink=200, paper=10))
    assert torch.equal(out, torch.from_numpy(np.array(block(28, 28, (10, 4, 18, 24), ink=200, paper=10))))


@pytest.mark.parametrize(("width", "height"), [(280, 140), (140, 280)])
def test_aspect_ratio_is_kept_by_padding_with_the_background(width, height):
    """A square in a 2:1 image stays a square: the image is padded to 280×280 with its (white) background, then
    shrunk ten times; the square covers the middle half of the long side, all of the short one."""
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    out = mnist_image(block(width, height, (left, top, left + side, top + side), ink=0, paper=255))
    assert torch.equal(out, expected_block(slice(7, 21), slice(7, 21)))


@pytest.mark.parametrize("size", [(1000, 800), (400, 300), (10, 10), (29, 27), (1, 1)])
def test_any_size_becomes_28_by_28(size):
    image = Image.new("L", size, 255)
    ImageDraw.Draw(image).line([(0, 0), (size[0] - 1, size[1] - 1)], fill=0, width=max(1, size[0] // 10))
    out = mnist_image(image)
    assert out.shape == (28, 28) and out.dtype == torch.uint8
    if size[0] > 1:
        assert out.max() > 100 and out[0, -1] == 0  # the stroke is bright, the background black


def reference() -> torch.Tensor:
    """What every mode of the same drawing (black bar on white, 56×28) must become."""
    return mnist_image(block(56, 28, (8, 10, 48, 18), ink=0, paper=255))


def test_reference_drawing():
    out = reference()
    assert torch.equal(out, expected_block(slice(12, 16), slice(4, 24)))  # rows 7–20 hold the image, 14 px


def test_colour_is_made_grey_by_luminance():
    rgb = Image.new("RGB", (56, 28), (255, 255, 255))
    ImageDraw.Draw(rgb).rectangle([8, 10, 47, 17], fill=(0, 0, 0))
    assert torch.equal(mnist_image(rgb), reference())
    red = Image.new("RGB", (28, 28), (255, 255, 255))
    ImageDraw.Draw(red).rectangle([8, 8, 19, 19], fill=(255, 0, 0))  # luminance 0.299 · 255 = 76
    assert mnist_image(red)[12, 12] == 255 - 76


def test_transparent_canvas_becomes_a_contrasting_background():
    dark = Image.new("RGBA", (56, 28), (0, 0, 0, 0))  # transparent black, as drawing programs leave it
    ImageDraw.Draw(dark).rectangle([8, 10, 47, 17], fill=(0, 0, 0, 255))
    assert torch.equal(mnist_image(dark), reference())
    light = Image.new("RGBA", (56, 28), (255, 255, 255, 0))
    ImageDraw.Draw(light).rectangle([8, 10, 47, 17], fill=(255, 255, 255, 255))  # a white digit
    assert torch.equal(mnist_image(light), reference())
    half = Image.new("LA", (28, 28), (0, 0))
    ImageDraw.Draw(half).rectangle([8, 8, 19, 19], fill=(0, 128))  # half-transparent black over white
    assert mnist_image(half)[12, 12] == 128


def test_palette_and_bilevel_images():
    grey = block(56, 28, (8, 10, 48, 18), ink=0, paper=255)
    assert torch.equal(mnist_image(grey.convert("P")), reference())
    assert torch.equal(mnist_image(grey.convert("1")), reference())
    palette = grey.convert("P")
    palette.info["transparency"] = palette.getpixel((0, 0))  # the white background transparent
    assert palette.has_transparency_data
    assert torch.equal(mnist_image(palette), reference())


def test_sixteen_bit_pixels_are_scaled_not_clipped(tmp_path):
    grey = np.asarray(block(56, 28, (8, 10, 48, 18), ink=0, paper=255)).astype(np.uint16) * 257
    grey[0, 0] = 240 * 257  # a light grey that 8 bits would keep as 240 (convert("L") clips it to 255)
    path = tmp_path / "wide.png"
    Image.fromarray(grey).save(path)  # a 16-bit greyscale PNG
    with Image.open(path) as image:
        assert image.mode.startswith("I")
    out = read_image(path)
    eight_bit = np.asarray(block(56, 28, (8, 10, 48, 18), ink=0, paper=255)).copy()
    eight_bit[0, 0] = 240
    assert torch.equal(out, mnist_image(Image.fromarray(eight_bit, mode="L")))
    as_int32 = Image.fromarray(grey.astype(np.int32))  # mode "I"
    assert torch.equal(mnist_image(as_int32), out)


def test_float_pixels_in_unit_range():
    grey = np.asarray(block(56, 28, (8, 10, 48, 18), ink=0, paper=255)).astype(np.float32) / 255
    assert torch.equal(mnist_image(Image.fromarray(grey, mode="F")), reference())


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_float_pixels_that_are_not_finite_are_refused(bad):
    """A NaN fails every comparison, so the range test would pass it to a cast that gives an arbitrary grey; an
    infinite pixel would set the scale. Neither has a grey level: the image is refused, the count named."""
    grey = np.asarray(block(56, 28, (8, 10, 48, 18), ink=0, paper=255)).astype(np.float32) / 255
    grey[3, 5] = grey[20, 40] = bad
    with pytest.raises(InputError, match=r"^2 of its 1568 float pixels are NaN or infinite"):
        mnist_image(Image.fromarray(grey, mode="F"))


def test_a_float_tiff_with_nan_pixels_is_named(tmp_path):
    grey = np.asarray(block(56, 28, (8, 10, 48, 18), ink=0, paper=255)).astype(np.float32) / 255
    good, bad = tmp_path / "good.tif", tmp_path / "nan.tif"
    Image.fromarray(grey, mode="F").save(good)
    grey[0, 0] = np.nan
    Image.fromarray(grey, mode="F").save(bad)
    with Image.open(bad) as image:
        assert image.mode == "F"
    assert torch.equal(read_image(good), reference())
    with pytest.raises(InputError, match=re.escape(f"{bad}: 1 of its 1568 float pixels are NaN or infinite")):
        read_image(bad)


def test_the_network_input_is_scaled_as_the_data_module_scales_mnist(shared_mnist, tmp_path):
    """A test image saved as a PNG and read back is, as the network's input, the data module's test batch row."""
    data = MNISTDataModule(shared_mnist, download=False, val_size=100)
    data.setup("test")
    batch = next(iter(data.test_dataloader()))
    images, _ = data.test_data
    paths = []
    for i in (0, 7):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(images[i].numpy(), mode="L").save(paths[-1])
    x = model_inputs([read_image(path) for path in paths])
    assert x.dtype == batch.x.dtype == torch.float32 and x.shape == (2, 1, 28, 28)
    # Exact on any CPU: both are uint8 → float32 then one IEEE division by 255, correctly rounded on every path
    # (vectorised or not), so there is no accumulation whose order a kernel could change.
    assert torch.equal(x, batch.x[[0, 7]])


def test_unreadable_files_are_named(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(InputError, match=re.escape(f"{broken}: not a readable image")):
        read_image(broken)
    truncated = tmp_path / "truncated.png"
    block(28, 28, (1, 1, 5, 5), 0, 255).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:60])
    with pytest.raises(InputError, match=r"truncated\.png: not a readable image"):
        read_image(truncated)


def test_image_files_of_a_folder_and_bad_paths(tmp_path):
    for name in ("b.png", "a.jpg", ".hidden.png"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.png").write_bytes(b"")
    assert image_files(tmp_path) == [tmp_path / "a.jpg", tmp_path / "b.png"]
    assert image_files(tmp_path / "b.png") == [tmp_path / "b.png"]
    with pytest.raises(InputError, match=r"inputs=.*nowhere: no such file or folder"):
        image_files(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".DS_Store").write_bytes(b"")
    with pytest.raises(InputError, match="the folder holds no files"):
        image_files(tmp_path / "empty")


def test_shrinking_averages_so_thin_strokes_survive():
    """A 2-pixel stroke of a 280×280 drawing covers a fifth of one column of the 28×28 image: it stays, grey."""
    out = mnist_image(block(280, 280, (141, 20, 143, 260), ink=0, paper=255))
    assert out[10, 14] == round(255 * 2 / 10) and out[10, 13] == out[10, 15] == 0
