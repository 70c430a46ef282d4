"""Typed settings: every command's `key=value` values checked for type, range and finiteness before any work.

Hydra hands a command strings for anything that is not plainly a number or true/false (`rve=no`, `seed=abc`),
so each value is converted here, once, by the rule of its key, and a value that breaks the rule is a
ValueError naming the key the user typed and the rule:

- booleans: true/false, yes/no, on/off, 1/0 (any case); anything else is refused;
- whole numbers: an int (or a float with no fraction, `2.0`), never `1.5`, `abc` or true/false;
- numbers: finite (no nan, inf) unless the rule allows inf, within the rule's bounds;
- choices: one of a listed set of words.

`check(cfg, rules)` converts the keys in place (so later code reads the typed value) and returns `cfg`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")
BOOL_RULE = "true or false (also yes/no, on/off, 1/0)"


def _text(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def boolean(key: str, value: Any) -> bool:
    """`rve=no` -> False; `rve=maybe` -> ValueError naming rve."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    word = str(value).strip().lower() if isinstance(value, str) else None
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"{key} must be {BOOL_RULE}, got {_text(value)}")


def _bounds(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return " and ".join(parts)


@dataclass(frozen=True)
class Number:
    """A number rule: whole (int) or real, bounds (open or closed), null allowed, inf allowed."""

    whole: bool = False
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False
    allow_inf: bool = False
    unit: str = ""

    def rule(self) -> str:
        kind = "a whole number" if self.whole else "a finite number" if not self.allow_inf else "a number"
        bounds = _bounds(self.low, self.high, self.low_open, self.high_open)
        unit = f" ({self.unit})" if self.unit else ""
        return f"{kind}{unit}{' ' + bounds if bounds else ''}{' or null' if self.optional else ''}"

    def convert(self, key: str, value: Any) -> int | float | None:
        if value is None and self.optional:
            return None
        number = _as_number(value)
        if number is None or (math.isnan(number)) or (math.isinf(number) and not self.allow_inf):
            raise ValueError(f"{key} must be {self.rule()}, got {_text(value)}")
        if self.whole:
            if math.isinf(number) or not float(number).is_integer():
                raise ValueError(f"{key} must be {self.rule()}, got {_text(value)}")
            number = int(number)
        if (self.low is not None and (number <= self.low if self.low_open else number < self.low)) or (
            self.high is not None and (number >= self.high if self.high_open else number > self.high)
        ):
            raise ValueError(f"{key} must be {self.rule()}, got {_text(value)}")
        return number


def _as_number(value: Any) -> int | float | None:
    """An int or float from a number or its text; None for anything else (bools included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return float(text)
        except ValueError:
            return None
    try:  # numpy scalars
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Bool:
    optional: bool = False

    def convert(self, key: str, value: Any) -> bool | None:
        return None if value is None and self.optional else boolean(key, value)


@dataclass(frozen=True)
class Choice:
    options: Sequence[str]
    optional: bool = False

    def convert(self, key: str, value: Any) -> str | None:
        if value is None and self.optional:
            return None
        if isinstance(value, bool):  # Hydra reads `side=true` as a boolean; the word is the choice
            value = str(value).lower()
        if isinstance(value, str) and value in self.options:
            return value
        null = " or null" if self.optional else ""
        raise ValueError(f"{key} must be one of {', '.join(self.options)}{null}, got {_text(value)}")


@dataclass(frozen=True)
class Texts:
    """A list of words or paths: `runs=[a,b]`, or one value `runs=a`; null only when optional."""

    optional: bool = False

    def convert(self, key: str, value: Any) -> list[str] | None:
        if value is None and self.optional:
            return None
        values = list(value) if isinstance(value, list | tuple | ListConfig) else [value]
        if value is None or not values or any(v is None or isinstance(v, list | dict | ListConfig) for v in values):
            null = " (or null)" if self.optional else ""
            raise ValueError(f"{key} must be one value or a list such as {key}=[a,b]{null}, got {value}")
        return [str(v) for v in values]


@dataclass(frozen=True)
class Numbers:
    """A list of numbers, each by `item`'s rule, of `length` items when given: `size=[512,512]`."""

    item: Number
    length: int | None = None

    def convert(self, key: str, value: Any) -> list[int | float]:
        values = list(value) if isinstance(value, list | tuple | ListConfig) else None
        if values is None or (self.length is not None and len(values) != self.length):
            count = f"{self.length} " if self.length else ""
            raise ValueError(f"{key} must be a list of {count}numbers such as {key}=[512,512], got {value}")
        return [self.item.convert(f"{key}[{i}]", v) for i, v in enumerate(values)]  # type: ignore[misc]


def integer(key: str, value: Any, low: float | None = None, high: float | None = None) -> int:
    """A whole number within [low, high], or a ValueError naming `key`."""
    return Number(whole=True, low=low, high=high).convert(key, value)  # type: ignore[return-value]


def number(key: str, value: Any, low: float | None = None, high: float | None = None, low_open: bool = False) -> float:
    """A finite number within the bounds, or a ValueError naming `key`."""
    return float(Number(low=low, high=high, low_open=low_open).convert(key, value))  # type: ignore[arg-type]


Rule = Number | Numbers | Bool | Choice | Texts
_ABSENT = object()


def check(cfg: DictConfig | dict, rules: Mapping[str, Rule], prefix: str = "") -> DictConfig | dict:
    """Convert every key of `rules` present in `cfg` (dotted keys reach into groups) in place; the first value
    that breaks its rule is a ValueError naming `prefix + key`, the key as the user types it."""
    for key, rule in rules.items():
        if isinstance(cfg, DictConfig):
            value = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=False)
            if value is _ABSENT:  # not in this config, or still ??? (its own check names it)
                continue
            OmegaConf.update(cfg, key, rule.convert(prefix + key, value), force_add=False)
        elif key in cfg:
            cfg[key] = rule.convert(prefix + key, cfg[key])
    return cfg
