"""nndl: Michael Nielsen's *Neural Networks and Deep Learning* as a Lightning + Hydra lab on MNIST.

One concept per module; "ch." is the book's chapter where one applies, conf/<group> the config group it builds.

The book's networks, costs and data
- ``costs``               quadratic, cross-entropy and log-likelihood costs from z^L (ch. 1, 3; conf/cost)
- ``backprop``            the four equations BP1–BP4, without autograd (ch. 2)
- ``fast_backprop``       network.py's ``update_mini_batch`` in place: the MLP's default path (ch. 1–3)
- ``reference``           plain SGD loops outside Lightning that the lab is checked and timed against (ch. 1–3)
- ``mnist_shape``         28×28 grey images of the ten digits, defined once (ch. 1)
- ``data.mnist``          the MNIST LightningDataModule every digit model trains on (ch. 1; conf/data)
- ``data.batches``        mini-batches cut straight from tensors in memory (ch. 1)
- ``data.files``          the four MNIST files found, checked and downloaded
- ``data.images``         any image of a digit as an MNIST image, for ``predict`` (ch. 1)
- ``data.function``       examples (x, f(x)) of a function of one variable (ch. 4)
- ``models.network``      what every network shares: the SGD loop, the cost, the optimizer, L2 (ch. 1, 3; conf/model)
- ``models.records``      each epoch's metrics and the validation history that picks the best epoch
- ``models.classifier``   the digit classifiers: accuracy and the test pass's figures (ch. 1)
- ``models.mlp``          the book's fully connected network (ch. 1–5)
- ``models.cnn``          the convolutional network (ch. 6)
- ``models.curve``        one hidden layer fitting f(x): universality (ch. 4)
- ``ensemble``            several networks vote (ch. 6)

Training a run
- ``train``               compose → check → build → fit → test the best epoch → report (``scripts/train.py``)
- ``validate``            every config value checked before anything is built, one clear error each
- ``validate.rules``      every key a user can set, one rule each
- ``validate.checks``     the keys that depend on each other
- ``validate.kinds``      the kinds of value a key takes, each saying what it allows
- ``validate.lookup``     config values read as the run reads them (interpolations resolved)
- ``validate.constants``  what the models and data accept, copied so that checking imports no torch
- ``build``               data, model, logger, callbacks and Trainer from their groups
- ``callbacks``           epoch timer, halving η on a plateau (ch. 3), weight and gradient histograms (ch. 5)
- ``divergence``          stop a run whose η is far too large (ch. 3)
- ``precision``           ``trainer.precision=auto``: bf16 where the hardware computes it natively
- ``interrupt``           SIGTERM and SIGINT recorded as ``interrupted``
- ``resume``              a run or sweep resumed to the weights it would have reached
- ``rundir``              every run owns a fresh, writable directory
- ``outcome``             whether a run learned, and the worst value a failed run gives a sweeper
- ``report``              ``metrics.json``, the hyperparameters and final metrics in every logger, the console
- ``hparams``             a run's hyperparameters under the same keys for every model; in a sweep what varies (ch. 3)
- ``tensorboard_hparams`` those hyperparameters in TensorBoard's HPARAMS tab
- ``loggers``             CSV, MLflow, several at once, and finding TensorBoard's among them
- ``figures``             figures drawn off-screen: the test pass's confusion matrix and worst mistakes (ch. 1)

Sweeps (ch. 3: choosing hyper-parameters)
- ``run_names``           what a sweep varies, and its jobs' names that show it
- ``summary``             a sweep's ``summary.md``/``.csv``/``curves.png``, written at its end
- ``summary_rows``        one run's row, read back from its directory
- ``summary_plot``        ``curves.png``

Trained networks and config
- ``checkpoints``         checkpoints as untrusted input: config found, model rebuilt, weights loaded safely
- ``evaluate``            a checkpoint's test metrics (``scripts/eval.py``)
- ``predict``             the digit a trained network sees in each image (``scripts/predict.py``)
- ``export``              a checkpoint's network as a plain ``state_dict`` (``scripts/export.py``)
- ``run_config``          a run's config from elsewhere, resolved once and checked before it is built
- ``buildable``           the classes such a config may build
- ``config``              composing the config outside ``@hydra.main`` (benchmarks, notebooks, tests)
- ``cli``                 what the scripts share: environment, path arguments, one-line errors
- ``errors``              the lab's own exceptions, shown as one clear message

Importing ``nndl`` itself stays light; torch and Lightning load with the submodules that need them.
"""

__version__ = "0.1.0"
