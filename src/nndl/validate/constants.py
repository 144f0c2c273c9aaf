"""What the models and data modules accept, copied here so that checking a config imports no torch (MNIST's shape
comes from ``nndl.mnist_shape``, which imports nothing).

``tests/test_validate.py`` checks that the copies agree with ``nndl.models``, ``nndl.data`` and ``nndl.precision``.
"""

SEED_MAX = 2**32 - 1  # Lightning's seed_everything and numpy take seeds in [0, 2**32 - 1]
MNIST_TRAIN_IMAGES = 60_000
INITS = ("large", "default")
BACKPROPS = ("fast", "autograd", "manual")
FUNCTIONS = ("book",)
MODES = ("max", "min")
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "tpu", "auto")
# Lightning's precisions, less those with loss scaling (16-mixed), which Network.on_fit_start refuses; and auto:
# bf16-mixed where the hardware computes bf16 natively, else 32-true (nndl.precision).
PRECISIONS = ("32-true", "bf16-mixed", "auto", "bf16-true", "16-true", "64-true", 32, 64, "32", "64")
# The models and data modules by their _target_, as the run's group options name them.
MODELS = {"nndl.models.MLP": "mlp", "nndl.models.CNN": "cnn", "nndl.models.curve.CurveFit": "curve"}
DATA = {"nndl.data.MNISTDataModule": "mnist", "nndl.data.function.FunctionDataModule": "function"}
# What a TensorBoardLogger (conf/logger/tensorboard.yaml) takes: its own settings and SummaryWriter's, to which
# it passes the others only when it first writes (log_dir is its own to give).
TENSORBOARD_SETTINGS = (
    "save_dir", "name", "version", "log_graph", "default_hp_metric", "prefix", "sub_dir",
    "comment", "purge_step", "max_queue", "flush_secs", "filename_suffix",
)  # fmt: skip
