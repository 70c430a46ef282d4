"""Models that ship inside the package, used by name wherever a checkpoint path is taken (`ckpt_path=segroot-ci600`,
`model.init_ckpt=segroot-ci600`). `manifest.json` beside this file lists each one: its file, sha256, threshold,
expected resolution, licence note and model card. The checksum is verified every time a model is resolved, so a
damaged or altered file is refused rather than silently segmenting badly. `python -m rootseg.models` lists them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rootseg.io.files import sha256_file

#: where the manifest, the weights and the model cards are (tests point it at a folder of their own)
SHIPPED_DIR = Path(__file__).resolve().parent
MANIFEST_NAME = "manifest.json"
#: what a manifest entry must give (written by experiments/segroot/ship.py)
FIELDS = ("file", "sha256", "threshold", "resolution", "licence", "card")


class ShippedModelError(ValueError):
    """An unknown shipped-model name, or a shipped file that is missing or fails its checksum."""


def shipped_models() -> dict[str, dict[str, Any]]:
    """name -> manifest entry, in manifest order; {} when no model ships."""
    path = SHIPPED_DIR / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        models = json.loads(path.read_text(encoding="utf-8"))["models"]
    except (ValueError, KeyError, TypeError) as error:
        raise ShippedModelError(
            f"{path}: not a readable shipped-model manifest ({error}); reinstall rootseg"
        ) from error
    return {str(name): dict(entry) for name, entry in models.items()}


def looks_like_name(value: str | Path) -> bool:
    """A bare word (no folder, no file suffix): what a shipped model's name looks like, not a path."""
    text = str(value)
    return bool(text) and "/" not in text and "\\" not in text and not Path(text).suffix and text not in (".", "..")


def listing() -> str:
    """One line per shipped model: name, what it is, threshold, resolution; for errors and the list command."""
    models = shipped_models()
    if not models:
        return "no model ships with this installation of rootseg"
    return "\n".join(
        f"  {name}: {entry.get('summary', '')} (threshold {entry['threshold']}, expects {entry['resolution']}; "
        f"model card: {SHIPPED_DIR / entry['card']})"
        for name, entry in models.items()
    )


def shipped_file(name: str) -> Path:
    """The verified weights file of shipped model `name`; an unknown name lists the shipped models."""
    models = shipped_models()
    if name not in models:
        raise ShippedModelError(
            f"{name!r} is neither a checkpoint file nor the name of a shipped model. Shipped models "
            f"(python -m rootseg.models):\n{listing()}\nFor your own model give the path of a .ckpt file."
        )
    entry = models[name]
    path = SHIPPED_DIR / entry["file"]
    if not path.is_file():
        raise ShippedModelError(f"shipped model {name!r}: its file {path} is missing; reinstall rootseg")
    actual = sha256_file(path)
    if actual != entry["sha256"]:
        raise ShippedModelError(
            f"shipped model {name!r}: {path} is damaged or altered (sha256 {actual}, the manifest says "
            f"{entry['sha256']}); it is not used. Reinstall rootseg (pip install --force-reinstall rootseg) to "
            "restore it."
        )
    return path


def resolve(value: str | Path) -> Path:
    """A checkpoint setting -> the file to read: an existing path as it is; a shipped model's name -> its
    verified file; anything else as a path (its reader reports it missing)."""
    path = Path(str(value)).expanduser()
    if path.exists() or not looks_like_name(value):
        return path
    return shipped_file(str(value))
