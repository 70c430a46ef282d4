"""Human clicks for RootSAM from a file: CSV (image,x,y) or JSON, matched to input images by file name or stem."""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rootseg.io.images import IMAGE_SUFFIXES

log = logging.getLogger(__name__)


def _click_key(name: str) -> str:
    """How a click file names an image: its file name when it has an image suffix, else its stem."""
    return Path(str(name)).name


def _names_a_file(key: str) -> bool:
    return Path(key).suffix.lower() in IMAGE_SUFFIXES


def read_prompt_file(path: str | Path) -> dict[str, np.ndarray]:
    """Clicks per image from a CSV (columns image, x, y) or a JSON ({"image": [[x, y], ...]}); pixel
    coordinates of the original image. Keys are the file names as given (`a.jpg`, `tube1.d10.png`) or
    stems (`a`, `tube1.d10`: anything without an image suffix), folders dropped; `assign_clicks` matches
    them to the input images."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"prompts={path}: no such file (a CSV with columns image,x,y or a JSON of clicks)")
    clicks: dict[str, list[list[float]]] = {}
    try:
        if path.suffix.lower() == ".json":
            import json

            for name, points in json.loads(path.read_text()).items():
                clicks.setdefault(_click_key(name), []).extend([float(p[0]), float(p[1])] for p in points)
        else:
            with path.open(newline="") as handle:
                for row in csv.DictReader(handle):
                    clicks.setdefault(_click_key(row["image"]), []).append([float(row["x"]), float(row["y"])])
    except (KeyError, ValueError, TypeError, IndexError) as error:
        raise ValueError(
            f"prompts={path}: cannot read clicks ({type(error).__name__}: {error}); expected "
            "CSV columns image,x,y or JSON {image: [[x, y], ...]}"
        ) from error
    return {name: np.asarray(points, np.float32).reshape(-1, 2) for name, points in clicks.items()}


def assign_clicks(
    clicks: dict[str, np.ndarray], images: Sequence[Path], source: str | Path = "prompts"
) -> dict[Path, np.ndarray]:
    """The clicks of each input image: a key with an image suffix matches that file name, any other key
    the image stem (`tube1.d10` is the stem of `tube1.d10.jpg`). A key that fits two input images (stem
    `a` for `a.jpg` and `a.png`, or one file name in two folders) raises ValueError naming both; keys
    matching no image are logged. An image named both ways gets both sets of clicks."""
    by_name: dict[str, list[Path]] = {}
    by_stem: dict[str, list[Path]] = {}
    for image in images:
        by_name.setdefault(image.name, []).append(image)
        by_stem.setdefault(image.stem, []).append(image)
    assigned: dict[Path, list[np.ndarray]] = {}
    unmatched = []
    for key, points in clicks.items():
        found = by_name.get(key, []) if _names_a_file(key) else by_stem.get(key, [])
        if len(found) > 1:
            first, second = found[:2]
            fix = (
                f"name the image with its suffix ({first.name} or {second.name})"
                if not _names_a_file(key)
                else "predict the folders separately"
            )
            raise ValueError(
                f"prompts={source}: the clicks for {key!r} fit two input images, {first} and {second}; {fix}"
            )
        if found:
            assigned.setdefault(found[0], []).append(points)
        else:
            unmatched.append(key)
    if unmatched:
        log.warning(
            "prompts=%s: no input image for the clicks of %s (name images by file name or stem)",
            source,
            ", ".join(sorted(unmatched)[:10]) + (" ..." if len(unmatched) > 10 else ""),
        )
    return {image: np.concatenate(parts) for image, parts in assigned.items()}
