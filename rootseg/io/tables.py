"""The one CSV writer, Markdown tables and JSON for every table rootseg writes; numbers read back as numbers and
image names as text.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rootseg.io.atomic import write_if_changed, write_text


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def write_csv(
    path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, only_if_changed: bool = False
) -> Path:
    """Write rows atomically; `columns` fixes the header (missing values empty, None empty too), otherwise the
    union of the rows' keys in order. `only_if_changed` leaves an identical file untouched (a resumed run with
    nothing to do changes nothing)."""
    columns = list(columns or dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows({key: "" if row.get(key) is None else row[key] for key in columns} for row in rows)
    if only_if_changed:
        return write_if_changed(path, buffer.getvalue())
    return write_text(path, buffer.getvalue())


def _cell(value: Any) -> str:
    """A Markdown table cell: a `|` escaped and line breaks as spaces, so a run named `a|b` stays one cell."""
    return _fmt(value).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    columns = list(columns or dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(map(_cell, columns)) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_json(path: Path, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _number(text: str) -> Any:
    try:
        return float(text) if any(c in text for c in ".eEn") else int(text)
    except ValueError:
        return text


#: columns read back as text: image names such as `0001`, `1e3` or `nan` are names, not numbers
TEXT_COLUMNS = frozenset({"name", "prediction", "image_path", "mask_path"})


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV written by `write_csv`, numbers parsed back (except in `TEXT_COLUMNS`)."""
    with open(path, newline="") as handle:
        return [
            {key: value if key in TEXT_COLUMNS else _number(value) for key, value in row.items()}
            for row in csv.DictReader(handle)
        ]
