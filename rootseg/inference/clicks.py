"""Human clicks for RootSAM from a file: CSV (image,x,y) or JSON, matched to input images by file name or stem."""

from __future__ import annotations

import csv
import logging
import math
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


def _entries(path: Path) -> list[tuple[str, object, object, str]]:
    """(image key, x, y, where) of every click in the file, `where` naming its line (CSV) or place (JSON)."""
    if path.suffix.lower() == ".json":
        import json

        return [
            (_click_key(name), point[0], point[1], f"click {i} of {name!r}")
            for name, points in json.loads(path.read_text()).items()
            for i, point in enumerate(points, start=1)
        ]
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return [(_click_key(row["image"]), row["x"], row["y"], f"line {reader.line_num}") for row in reader]


def read_prompt_file(path: str | Path) -> dict[str, np.ndarray]:
    """Clicks per image from a CSV (columns image, x, y) or a JSON ({"image": [[x, y], ...]}); pixel
    coordinates of the original image. Keys are the file names as given (`a.jpg`, `tube1.d10.png`) or
    stems (`a`, `tube1.d10`: anything without an image suffix), folders dropped; `assign_clicks` matches
    them to the input images. A coordinate that is not a finite number is refused with its line."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"prompts={path}: no such file (a CSV with columns image,x,y or a JSON of clicks)")
    clicks: dict[str, list[list[float]]] = {}
    try:
        for key, x, y, where in _entries(path):
            point = [float(x), float(y)]  # type: ignore[arg-type]
            if not all(math.isfinite(v) for v in point):
                raise ValueError(
                    f"prompts={path}, {where}: the click for image {key!r} is at x={x}, y={y}; give finite pixel "
                    "coordinates (x from the left, y from the top)"
                )
            clicks.setdefault(key, []).append(point)
    except ValueError as error:
        if str(error).startswith(f"prompts={path}, "):
            raise
        raise _unreadable(path, error) from error
    except (KeyError, TypeError, IndexError, AttributeError) as error:
        raise _unreadable(path, error) from error
    return {name: np.asarray(points, np.float32).reshape(-1, 2) for name, points in clicks.items()}


def _unreadable(path: Path, error: Exception) -> ValueError:
    return ValueError(
        f"prompts={path}: cannot read clicks ({type(error).__name__}: {error}); expected "
        "CSV columns image,x,y or JSON {image: [[x, y], ...]}"
    )


def check_clicks_inside(clicks: np.ndarray, shape: Sequence[int], image: Path, source: str | Path) -> None:
    """Refuse clicks off the image (0 <= x < width, 0 <= y < height): RootSAM would decode nothing there and
    write an empty mask without a word. The error names the click file, the click's line and the image."""
    height, width = int(shape[0]), int(shape[1])
    outside = ~((clicks[:, 0] >= 0) & (clicks[:, 0] < width) & (clicks[:, 1] >= 0) & (clicks[:, 1] < height))
    if not outside.any():
        return
    x, y = (float(v) for v in clicks[np.flatnonzero(outside)[0]])
    raise ValueError(
        f"prompts={source}, {_where(source, image, x, y)}: the click x={x:g}, y={y:g} is outside the image {image} "
        f"({width} x {height} pixels; {int(outside.sum())} of its {len(clicks)} clicks are); give pixel coordinates "
        "of the original image, x from the left in [0, width), y from the top in [0, height)"
    )


def _where(source: str | Path, image: Path, x: float, y: float) -> str:
    """The line (or JSON place) of the first click of `image` at (x, y): read again only to word an error."""
    try:
        for key, kx, ky, where in _entries(Path(source)):
            if key in (image.name, image.stem) and (np.float32(kx), np.float32(ky)) == (np.float32(x), np.float32(y)):
                return where
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        pass
    return "a click"


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
