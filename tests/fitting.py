"""Training a model in-process on the tiny MNIST files, as the tests of the training path do."""

from pathlib import Path

import lightning as L

from nndl.data import MNISTDataModule


def fit(model: L.LightningModule, data_dir: Path, root: Path, max_epochs: int) -> L.Trainer:
    """``model`` trained for ``max_epochs`` on the 500 training images in ``data_dir`` (100 of the 600 held out, a
    fixed split), in mini-batches of 10 and steps of 16: no validation, logger, checkpoint or progress bar."""
    dm = MNISTDataModule(data_dir, batch_size=10, examples_per_step=160, val_size=100, seed=3)
    dm.prepare_data()
    dm.setup("fit")
    model.set_training_set(dm.n_train, dm.mini_batches_per_epoch)
    trainer = L.Trainer(
        max_epochs=max_epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, default_root_dir=root,
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    return trainer
