"""Whole files as values: a content digest, and a small JSON record read without trusting it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """The file's sha256, read in 1 MiB blocks (downloads, shipped models and predict's source records alike)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json_object(path: Path) -> dict[str, Any] | None:
    """A JSON object from `path`; None when the file is missing, unreadable, not JSON or not an object (a record
    a killed run left half-written is treated as absent, never trusted)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
