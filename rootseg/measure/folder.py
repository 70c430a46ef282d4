"""Traits of every mask in a list of files, one CSV row each: the trait half of rootseg without a model.

Any binary masks work: RootPainter segmentations and annotations, other tools' masks (0/255, 0/1, JPEG of
them), rootseg's own; predict's `<stem>_rve.png` (RhizoVision Explorer's polarity, root black on white) is read
as such, root where dark. A file that cannot be read, or that is not a binary mask (a photo, an overlay), is
reported by name and listed in `<output stem>_failures.csv`; the others are measured.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rootseg.io.images import ImageReadError
from rootseg.io.masks import read_binary_mask
from rootseg.io.paths import refuse_output_on_inputs
from rootseg.io.rhizovision import is_rhizovision_name, read_rhizovision_mask
from rootseg.io.tables import write_csv
from rootseg.measure.traits import TraitSettings, pixel_traits, traits_from_pixels

log = logging.getLogger(__name__)

#: columns before the traits: which file, its size, and how long it took
ID_COLUMNS = ("name", "path", "height", "width", "unlabelled_pixels")


def failures_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}_failures.csv")


def measure_mask_file(
    path: Path, mm_per_pixel: float | None, settings: TraitSettings, threshold: int = 127
) -> dict[str, Any]:
    """One CSV row: the file, its size, unlabelled pixels (RootPainter's transparent areas) and its traits."""
    read = read_rhizovision_mask if is_rhizovision_name(path) else read_binary_mask
    labels = read(path, threshold)
    pixels = pixel_traits(labels, clean=settings.clean)
    return {
        "name": path.name,
        "path": str(path),
        "height": int(labels.shape[0]),
        "width": int(labels.shape[1]),
        "unlabelled_pixels": int(np.count_nonzero(labels == 255)),
        **traits_from_pixels(pixels, mm_per_pixel, settings),
    }


def measure_masks(
    paths: Sequence[Path],
    output: Path,
    mm_per_pixel: float | None = None,
    settings: TraitSettings | None = None,
    threshold: int = 127,
) -> dict[str, Any]:
    """Measure each mask and write `output` (CSV, atomically), and the failures beside it; returns counts.
    Refuses, before any work, an output (or its failures file) that is one of the masks."""
    from tqdm.auto import tqdm

    refuse_output_on_inputs([output, failures_path(output)], [Path(path) for path in paths])
    settings = settings or TraitSettings()
    rows, failures = [], []
    started = time.perf_counter()
    for path in tqdm(paths, unit="mask", desc="measuring", dynamic_ncols=True, file=sys.stderr):
        try:
            rows.append(measure_mask_file(Path(path), mm_per_pixel, settings, threshold))
        except ImageReadError as error:
            failures.append({"name": Path(path).name, "path": str(path), "error": str(error)})
            log.error("skipped %s", error)
    write_csv(output, rows, [*ID_COLUMNS, *settings.columns()])
    failed = failures_path(output)
    if failures:
        write_csv(failed, failures, ["name", "path", "error"])
    else:
        failed.unlink(missing_ok=True)
    seconds = time.perf_counter() - started
    return {"measured": len(rows), "failed": len(failures), "failures": failures, "seconds": seconds}
