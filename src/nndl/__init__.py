"""nndl: Michael Nielsen's *Neural Networks and Deep Learning* as a Lightning + Hydra lab on MNIST.

The package is laid out one concept per module, each mirrored by a group in ``conf/``:

- ``nndl.costs``        the book's cost functions (conf/cost)
- ``nndl.data``         the MNIST LightningDataModule and its file checks (conf/data)
- ``nndl.models``       the MLP and CNN LightningModules (conf/model)
- ``nndl.train``        compose → fit → test → report, called by ``scripts/train.py``

Importing ``nndl`` itself stays light; torch and Lightning load with the submodules that need them.
"""

__version__ = "0.1.0"
