"""The lab's models: the book's fully connected network and the notes' CNN, both ``Classifier`` LightningModules."""

from nndl.models.classifier import Classifier
from nndl.models.cnn import CNN
from nndl.models.mlp import MLP

__all__ = ["CNN", "MLP", "Classifier"]
