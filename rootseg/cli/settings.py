"""`key=value` settings after a positional argument, for the argparse commands (`rootseg.measure`,
`rootseg.study`): typed, checked by name, a mistyped key answered with the key that was meant."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


def floats(text: str) -> list[float]:
    """`[0.5,1,2]`, `0.5,1,2` or `2` -> [0.5, 1.0, 2.0]."""
    return [float(part) for part in text.strip().strip("[]").split(",") if part.strip()]


def optional(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """`null`/`none` (or nothing) -> None, anything else converted."""
    return lambda text: None if text.strip().lower() in ("", "null", "none") else convert(text)


@dataclass(frozen=True)
class Option:
    convert: Callable[[str], Any]
    default: Any
    help: str


def describe(options: dict[str, Option]) -> str:
    """The settings, one line each, for --help."""
    width = max(len(key) for key in options) + 2
    return "settings (key=value):\n" + "\n".join(
        f"  {key:<{width}}{option.help} (default: {option.default})" for key, option in options.items()
    )


def parse_settings(tokens: Sequence[str], options: dict[str, Option], command: str) -> dict[str, Any]:
    """The defaults of `options`, overridden by each `key=value` token; an unknown key or a value that does
    not convert is a ValueError naming the key."""
    values = {key: option.default for key, option in options.items()}
    for token in tokens:
        key, sep, text = token.partition("=")
        if not sep or not key:
            raise ValueError(f"{token!r}: settings are key=value (python -m rootseg.{command} --help lists them)")
        if key not in options:
            close = difflib.get_close_matches(key, list(options), n=1)
            meant = f"did you mean {close[0]}? " if close else ""
            raise ValueError(f"{key} is not a setting of rootseg.{command}; {meant}settings: {', '.join(options)}")
        try:
            values[key] = options[key].convert(text)
        except ValueError as error:
            raise ValueError(f"{key}={text!r}: {options[key].help} ({error})") from None
    return values
