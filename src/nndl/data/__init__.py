"""MNIST for every model: the LightningDataModule, its in-memory batches and its file checks."""

from nndl.data.mnist import MNISTDataModule

__all__ = ["MNISTDataModule"]
