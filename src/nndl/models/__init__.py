"""The lab's models, LightningModules on one ``Network`` base: the book's fully connected network and the
notes' CNN (``Classifier`` s of the digits)."""

from nndl.models.classifier import Classifier
from nndl.models.cnn import CNN
from nndl.models.mlp import MLP
from nndl.models.network import Network

__all__ = ["CNN", "MLP", "Classifier", "Network"]
