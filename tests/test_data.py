"""The MNIST data module: the book's split, the batches, and a clear error for every kind of bad file."""

import shutil
import struct
from pathlib import Path

import pytest
import torch

from mnist_idx import digits, write_images, write_labels
from nndl.data import MNISTDataModule
from nndl.errors import ConfigError, DataError

RAW = ("MNIST", "raw")


def datamodule(data_dir: Path, **kwargs) -> MNISTDataModule:
    kwargs = {"val_size": 100, "download": False, **kwargs}
    dm = MNISTDataModule(data_dir, **kwargs)
    dm.prepare_data()
    dm.setup("fit")
    dm.setup("test")
    return dm


def test_book_split_first_images_train_last_images_validate(shared_mnist):
    images, labels = digits(600, seed=0)  # what the fixture wrote
    dm = datamodule(shared_mnist)
    train_x, train_y = dm.train_data
    val_x, val_y = dm.val_data
    assert (len(train_y), len(val_y), len(dm.test_data[1])) == (500, 100, 100)
    assert torch.equal(train_x, images[:500].to(torch.uint8)) and torch.equal(train_y, labels[:500])
    assert torch.equal(val_x, images[500:].to(torch.uint8)) and torch.equal(val_y, labels[500:])


def test_train_size_keeps_the_first_images(shared_mnist):
    dm = datamodule(shared_mnist, train_size=50)
    _, labels = digits(600, seed=0)
    assert torch.equal(dm.train_data[1], labels[:50])
    assert len(dm.val_data[1]) == 100  # validation is unchanged


def sizes(loader) -> list[list[int]]:
    return [[len(y) for _, y in step.split()] for step in loader]


def test_batches_are_float_images_in_unit_range(shared_mnist):
    dm = datamodule(shared_mnist, batch_size=32, eval_batch_size=64, examples_per_step=32)
    [(x, y)] = next(iter(dm.train_dataloader())).split()
    assert x.shape == (32, 1, 28, 28) and x.dtype == torch.float32 and y.shape == (32,) and y.dtype == torch.int64
    assert 0.0 <= x.min() and x.max() == 1.0
    assert sizes(dm.train_dataloader()) == [[32]] * 15 + [[20]]  # every image once per epoch, the last batch smaller
    assert sizes(dm.val_dataloader()) == [[64], [36]]


def test_a_training_step_takes_several_mini_batches(shared_mnist):
    dm = datamodule(shared_mnist, batch_size=30, examples_per_step=120)
    assert sizes(dm.train_dataloader()) == [[30] * 4] * 4 + [[20]]  # 500 images: 4 steps of 120, then 20
    assert sizes(dm.val_dataloader()) == [[100]]  # evaluation: one large batch per step


def test_a_step_takes_the_whole_mini_batches_that_examples_per_step_holds(shared_mnist):
    dm = datamodule(shared_mnist, batch_size=30, examples_per_step=100)  # 3 mini-batches of 30 per step
    assert sizes(dm.train_dataloader()) == [[30] * 3] * 5 + [[30, 20]]  # 500 images: 5 steps of 90, then 50
    dm = datamodule(shared_mnist, batch_size=30, examples_per_step=20)  # fewer than a mini-batch: one per step
    assert sizes(dm.train_dataloader()) == [[30]] * 16 + [[20]]


def test_training_order_is_reshuffled_each_epoch_and_seeded(shared_mnist):
    dm = datamodule(shared_mnist, batch_size=100, examples_per_step=500)

    def epoch_orders() -> list[torch.Tensor]:
        torch.manual_seed(7)
        loader = dm.train_dataloader()
        return [next(iter(loader)).x.flatten(1).sum(1) for _ in range(2)]

    first, second = epoch_orders()
    assert not torch.equal(first, second)
    assert torch.equal(first.sort().values, second.sort().values)  # the same images, in another order
    assert torch.equal(epoch_orders()[0], first)  # the same seed, the same order


def test_validation_and_test_keep_their_order(shared_mnist):
    dm = datamodule(shared_mnist, eval_batch_size=30)
    labels = torch.cat([step.y for step in dm.test_dataloader()])
    assert torch.equal(labels, digits(100, seed=1)[1])


def test_missing_files_name_the_files_the_directory_and_the_fix(tmp_path):
    with pytest.raises(DataError) as err:
        datamodule(tmp_path)
    message = str(err.value)
    for name in ("train-images", "train-labels", "t10k-images", "t10k-labels"):
        assert f"{name}-idx" in message
    assert str(tmp_path.resolve() / "MNIST" / "raw") in message
    assert "NNDL_DATA_DIR" in message and "data.data_dir" in message


def test_pointing_at_the_raw_folder_itself_gets_a_hint(mnist_dir):
    with pytest.raises(DataError, match="two levels up"):
        datamodule(mnist_dir.joinpath(*RAW))


def test_failed_download_leaves_nothing_behind(tmp_path, monkeypatch):
    from torchvision.datasets import MNIST

    def broken_download(self):  # writes half a file, then the network goes away
        Path(self.raw_folder).mkdir(parents=True, exist_ok=True)
        Path(self.raw_folder, "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b partial")
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\n<urlopen error no network>")

    monkeypatch.setattr(MNIST, "download", broken_download)
    data_dir = tmp_path / "data"
    with pytest.raises(DataError, match=r"downloading them failed \(Error downloading .* no network>\)"):
        datamodule(data_dir, download=True)
    assert not data_dir.exists()

    data_dir.mkdir()  # a directory the user made stays, empty
    with pytest.raises(DataError):
        datamodule(data_dir, download=True)
    assert list(data_dir.iterdir()) == []


def test_download_puts_the_files_in_place(tmp_path, monkeypatch, shared_mnist):
    from torchvision.datasets import MNIST

    def fake_download(self):
        shutil.copytree(shared_mnist.joinpath(*RAW), self.raw_folder, dirs_exist_ok=True)

    monkeypatch.setattr(MNIST, "download", fake_download)
    dm = datamodule(tmp_path / "data", download=True)
    assert len(dm.train_data[1]) == 500
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["MNIST"]  # no temporary directory left


def corrupt(mnist_dir: Path, name: str, data: bytes) -> Path:
    path = mnist_dir.joinpath(*RAW, name)
    path.write_bytes(data)
    return path


def test_truncated_image_file(mnist_dir):
    path = mnist_dir.joinpath(*RAW, "train-images-idx3-ubyte")
    corrupt(mnist_dir, path.name, path.read_bytes()[:-784])
    with pytest.raises(DataError, match=rf"{path}: truncated, 469632 bytes but its header announces 600 images"):
        datamodule(mnist_dir)


def test_file_shorter_than_its_header(mnist_dir):
    path = corrupt(mnist_dir, "t10k-labels-idx1-ubyte", b"\x00\x00\x08")
    with pytest.raises(DataError, match=rf"{path}: truncated, only 3 bytes"):
        datamodule(mnist_dir)


def test_wrong_magic_number(mnist_dir):
    path = mnist_dir.joinpath(*RAW, "t10k-images-idx3-ubyte")
    images, _ = digits(100, seed=1)
    write_images(path, images, magic=0x801)
    with pytest.raises(DataError, match=rf"{path}: wrong magic number 0x00000801, expected 0x00000803"):
        datamodule(mnist_dir)


def test_gzip_file_is_recognised(mnist_dir):
    path = corrupt(mnist_dir, "train-labels-idx1-ubyte", b"\x1f\x8b\x08\x00" + bytes(20))
    with pytest.raises(DataError, match=rf"{path}: the file is gzip-compressed"):
        datamodule(mnist_dir)


def test_images_and_labels_disagree_in_count(mnist_dir):
    write_labels(mnist_dir.joinpath(*RAW, "train-labels-idx1-ubyte"), digits(599, seed=0)[1])
    with pytest.raises(DataError, match="holds 600 images but train-labels-idx1-ubyte holds 599 labels"):
        datamodule(mnist_dir)


def test_label_outside_0_to_9(mnist_dir):
    labels = digits(100, seed=1)[1]
    labels[42] = 11
    path = mnist_dir.joinpath(*RAW, "t10k-labels-idx1-ubyte")
    write_labels(path, labels)
    with pytest.raises(DataError, match=rf"{path}: label 11 at index 42 is outside 0–9"):
        datamodule(mnist_dir)


def test_images_of_the_wrong_size(mnist_dir):
    path = mnist_dir.joinpath(*RAW, "t10k-images-idx3-ubyte")
    path.write_bytes(struct.pack(">4I", 0x803, 100, 32, 32) + bytes(100 * 32 * 32))
    with pytest.raises(DataError, match=rf"{path}: images of 32×32 pixels, expected 28×28"):
        datamodule(mnist_dir)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, r"data.batch_size=0 is out of range: it must be an integer ≥ 1"),
        ({"val_size": 60_000}, r"data.val_size=60000 is out of range: it must be an integer from 1 to 59999"),
        ({"examples_per_step": 0}, r"data.examples_per_step=0 is out of range: it must be an integer ≥ 1"),
        ({"train_size": 501}, r"data.train_size=501 is out of range: only 500 training images remain"),
    ],
)
def test_config_values_out_of_range(shared_mnist, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        datamodule(shared_mnist, **kwargs)
