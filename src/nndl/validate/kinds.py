"""The kinds of value a key of the config takes, each able to say what it allows and why a value fails.

A kind's ``allowed`` ends every message about its key: ``<key>=<value> is out of range: it must be <allowed>``.
"""

import math
import re
from dataclasses import dataclass
from typing import Any, Protocol

# How a value is refused; the message goes on with <allowed>.
OUT_OF_RANGE = " is out of range: it must be "
NOT_ALLOWED = " is not allowed: it must be "
NAME = re.compile(r"[\w.:-]+")
NOT_A_CHOICE = " is not allowed: choose "  # as the models word it: model.init='zeros' is not allowed: choose one of ...


class Kind(Protocol):
    """What a key accepts: ``allowed`` says it in words; ``problem(value)`` is ``None``, or how ``value`` fails up to
    ``allowed`` (``OUT_OF_RANGE``, ``": not a number; it must be "``)."""

    @property
    def allowed(self) -> str: ...
    def problem(self, value: Any) -> str | None: ...


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(x)


@dataclass(frozen=True)
class Num:
    """A number (an int when ``integer``) within the bounds given, or one of ``also``, or null when ``null``.

    ``finite=False`` lets ±inf through (never nan); ``text`` says the range where the bounds alone read badly.
    """

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    integer: bool = False
    null: bool = False
    finite: bool = True
    also: tuple[int, ...] = ()
    text: str | None = None

    @property
    def allowed(self) -> str:
        if self.text:
            return self.text
        noun = "an integer" if self.integer else "a number"
        low = f"({_fmt(self.gt)}" if self.gt is not None else f"[{_fmt(self.ge)}" if self.ge is not None else None
        high = f"{_fmt(self.lt)})" if self.lt is not None else f"{_fmt(self.le)}]" if self.le is not None else None
        if low and high:
            text = f"{noun} in {low}, {high}"
        elif low:
            text = f"{noun} {'>' if self.gt is not None else '≥'} {low[1:]}"
        elif high:
            text = f"{noun} {'<' if self.lt is not None else '≤'} {high[:-1]}"
        else:
            text = noun
        extras = [*(_fmt(x) for x in self.also), *(["null"] if self.null else [])]
        return ", ".join([text, *extras[:-1]]) + f" or {extras[-1]}" if extras else text

    def problem(self, value: Any) -> str | None:
        if value is None and self.null:
            return None
        if not _is_number(value) or (self.integer and not isinstance(value, int)):
            return f": not {'an integer' if self.integer else 'a number'}; it must be "
        if value in self.also:
            return None
        if math.isnan(value) or (self.finite and math.isinf(value)):
            return " is not a finite number: it must be "
        if (
            (self.gt is not None and not value > self.gt)
            or (self.ge is not None and not value >= self.ge)
            or (self.lt is not None and not value < self.lt)
            or (self.le is not None and not value <= self.le)
        ):
            return OUT_OF_RANGE
        return None


@dataclass(frozen=True)
class OneOf:
    """One of ``choices``, of the same type (``true`` is not ``1``); a word that is not is shown quoted."""

    choices: tuple[Any, ...]

    @property
    def allowed(self) -> str:
        shown = list(dict.fromkeys(show(c) for c in self.choices))
        return shown[0] if len(shown) == 1 else f"one of {', '.join(shown)}"

    def problem(self, value: Any) -> str | None:
        if any(type(value) is type(choice) and value == choice for choice in self.choices):
            return None
        return NOT_A_CHOICE


@dataclass(frozen=True)
class Bool:
    """``true`` or ``false`` (or null when ``null``)."""

    null: bool = False

    @property
    def allowed(self) -> str:
        return "true, false or null" if self.null else "true or false"

    def problem(self, value: Any) -> str | None:
        return None if isinstance(value, bool) or (value is None and self.null) else ": not a boolean; it must be "


@dataclass(frozen=True)
class ListOf:
    """A list of ``item`` values: ``length`` of them (or at least ``min_length``), starting with ``first`` and
    ending with ``last`` when given."""

    item: Num
    length: int | None = None
    min_length: int = 0
    first: int | None = None
    last: int | None = None
    text: str | None = None

    @property
    def allowed(self) -> str:
        if self.text:
            return self.text
        count = {1: "one", 2: "two", 3: "three"}.get(self.length or 0, str(self.length))
        noun = self.item.allowed.removeprefix("an ").removeprefix("a ").replace("integer", "integers", 1)
        noun = noun.replace("number", "numbers", 1)
        if self.length:
            return f"{count} {noun}"
        return f"a non-empty list of {noun}" if self.min_length else f"a list of {noun}"

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, list):
            return ": not a list; it must be "
        problems = [self.item.problem(x) for x in value]
        if any(p and p.startswith(":") for p in problems):
            return f": not a list of {'integers' if self.item.integer else 'numbers'}; it must be "
        if (
            any(problems)
            or (self.length is not None and len(value) != self.length)
            or len(value) < self.min_length
            or (self.first is not None and value and value[0] != self.first)
            or (self.last is not None and value and value[-1] != self.last)
        ):
            return OUT_OF_RANGE
        return None


@dataclass(frozen=True)
class Names:
    """A list of names (``tags=[a,b]``): each a word of letters, digits and ``_ - . :``."""

    @property
    def allowed(self) -> str:
        return "a list of names, as tags=[baseline,ch3] (letters, digits, _ - . :)"

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, list):
            return ": not a list; it must be "
        if not all(isinstance(x, str | int) and not isinstance(x, bool) and NAME.fullmatch(str(x)) for x in value):
            return NOT_ALLOWED
        return None


@dataclass(frozen=True)
class AnyOf:
    """A value that one of ``kinds`` accepts."""

    kinds: tuple[Kind, ...]

    @property
    def allowed(self) -> str:
        texts = [kind.allowed for kind in self.kinds]
        return ", ".join(texts[:-1]) + f" or {texts[-1]}"

    def problem(self, value: Any) -> str | None:
        if any(kind.problem(value) is None for kind in self.kinds):
            return None
        return OUT_OF_RANGE if _is_number(value) or isinstance(value, list) else NOT_ALLOWED


def show(value: Any) -> str:
    """A value as it is written on the command line: true, null, [784,30,10]."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "[" + ",".join(show(x) for x in value) + "]"
    return str(value)
