"""The project's own exceptions: raised for bad input, shown to the user as one clear message."""


class NNDLError(Exception):
    """Base class: an error the user can fix (bad data, bad config); scripts print it without a traceback."""


class DataError(NNDLError):
    """The MNIST files are missing, unreadable or malformed."""


class ConfigError(NNDLError):
    """A config value is out of range; the message names the key, the value and what is allowed."""


class CheckpointError(NNDLError):
    """A checkpoint is missing, is not one, holds more than weights, or does not fit its run's model."""


class InputError(NNDLError):
    """The images to predict are missing or none of them can be read."""
