"""The project's own exceptions: raised for bad input, shown to the user as one clear message."""

from typing import Any


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


def check_range(
    key: str, value: Any, low: float, high: float | None = None, *, integer: bool = True, open_high: bool = False
) -> None:
    """``ConfigError`` naming ``key`` unless ``value`` is an integer (a number when not ``integer``) from ``low`` to
    ``high``: ``high`` itself excluded when ``open_high``, no upper bound when ``None``. Booleans are not numbers."""
    number = (isinstance(value, int) if integer else isinstance(value, int | float)) and not isinstance(value, bool)
    in_range = number and value >= low and (high is None or (value < high if open_high else value <= high))
    if not in_range:  # NaN compares false: out of range too
        kind = "an integer" if integer else "a number"
        if high is None:
            allowed = f"{kind} ≥ {low}"
        else:
            allowed = f"{kind} in [{low}, {high})" if open_high else f"{kind} from {low} to {high}"
        raise ConfigError(f"{key}={value!r} is out of range: it must be {allowed}")
