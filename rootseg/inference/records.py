"""Per-image records of a predict run, and results.csv, ranked.csv and failures.csv rebuilt from them.

Each finished image leaves `.rootseg/records/<stem>.json` (its measurements, in pixels) before its mask, the
mark that it is done; an unreadable one leaves `.rootseg/failures/<stem>.json`. The tables are rebuilt from
these files under a lock shared by every process writing into the folder, so no row is lost when shards, a
resumed run, or two runs one after the other write into one folder; lengths in mm follow the resolution of
the run that rebuilds them (adding `dpi=` to a finished run fills them in), and so do the trait columns
(`rootseg.measure.traits`: records keep them in pixels, diameters as a histogram), and so do the error bars
of the traits (`rootseg.measure.intervals`: records keep the pixel traits of the masks at t -/+ delta; the
margin and the flag's cutoff apply when the table is built).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rootseg.inference.jobs import Job
from rootseg.inference.locks import folder_lock, state_dir
from rootseg.inference.uncertainty import rank_by_uncertainty
from rootseg.io.atomic import write_text
from rootseg.io.files import read_json_object
from rootseg.io.images import ImageReadError
from rootseg.io.masks import read_mask
from rootseg.io.tables import write_csv
from rootseg.measure.cleaning import Cleaning
from rootseg.measure.intervals import IntervalSettings, interval_columns, interval_pixels, interval_traits
from rootseg.measure.length import skeleton_length
from rootseg.measure.traits import TraitSettings, pixel_traits, traits_from_pixels

log = logging.getLogger(__name__)

CSV_NAME = "results.csv"
FAILURES_NAME = "failures.csv"
CSV_COLUMNS = (
    "name",
    "path",
    "height",
    "width",
    "root_pixels",
    "root_fraction",
    "root_length_px",
    "root_length_mm",
    "uncertainty",
    "seconds",
)
RANKED_NAME = "ranked.csv"  # the images most uncertain first: the order a person should correct them in
RANKED_COLUMNS = ("rank", "name", "path", "uncertainty")
FAILURE_COLUMNS = ("name", "path", "error")


def measure_row(
    job: Job,
    mask: np.ndarray,
    method: str,
    seconds: float | None = None,
    traits: bool = False,
    uncertainty: float | None = None,
    clean: Cleaning | None = None,
) -> dict[str, Any]:
    """What results.csv says of one image, from its boolean mask, in pixels; with `traits`, the trait
    measurements too (`pixel_traits`, whose skeleton also gives the root length where no pinhole was filled);
    `uncertainty` from its probabilities (`rootseg.inference.uncertainty`; None for an image measured from its
    mask alone); `clean`: the robust-measurement settings the traits are measured with (kept in the record)."""
    height, width = mask.shape
    row = {"name": job.name, "path": str(job.path), "height": int(height), "width": int(width)}
    row["root_pixels"] = int(np.count_nonzero(mask))
    if traits:
        row["traits"] = {**pixel_traits(mask, length_method=method, clean=clean), "clean": clean_record(clean)}
        row["root_length_px"] = row["traits"]["root_length_px"]
    else:
        row["root_length_px"] = float(skeleton_length(mask, method=method))
    return {**row, "uncertainty": uncertainty, "seconds": seconds}


def measure_interval(probs: np.ndarray, threshold: float, traits: TraitSettings | None) -> dict[str, Any] | None:
    """A record's `interval`: the pixel traits of the masks at threshold -/+ delta, cleaned as the main mask;
    None without traits or intervals."""
    if traits is None or traits.interval is None:
        return None
    return interval_pixels(probs, threshold, traits.interval, lambda mask: pixel_traits(mask, clean=traits.clean))


def _folder(output: Path, kind: str) -> Path:
    folder = state_dir(output) / kind
    folder.mkdir(exist_ok=True)
    return folder


def write_record(output: Path, job: Job, row: dict[str, Any]) -> None:
    write_text(_folder(output, "records") / f"{job.stem}.json", json.dumps(row))
    (_folder(output, "failures") / f"{job.stem}.json").unlink(missing_ok=True)


def write_failure(output: Path, job: Job, error: str) -> None:
    write_text(_folder(output, "failures") / f"{job.stem}.json", json.dumps({**_identity(job), "error": error}))


def _identity(job: Job) -> dict[str, str]:
    return {"name": job.name, "path": str(job.path)}


def clean_record(clean: Cleaning | None) -> dict[str, Any] | None:
    """The cleaning settings as a record keeps them, to tell when traits must be measured again."""
    return None if clean is None else dataclasses.asdict(clean)


def ensure_record(
    output: Path,
    job: Job,
    mask_path: Path,
    method: str,
    traits: bool = False,
    clean: Cleaning | None = None,
    interval: IntervalSettings | None = None,
) -> bool:
    """An image done earlier keeps its record; one done by an older rootseg (no record), or without the traits
    asked for now (or with other `clean` settings), is measured again from its mask. False when the mask cannot
    be read, or when its record has `interval` traits measured with another delta or other `clean` settings:
    they need the probabilities, so the image is segmented again. A record without interval traits (segmented
    with `traits=false` or `interval=null`) keeps its outputs, its interval columns empty."""
    record = read_json_object(_folder(output, "records") / f"{job.stem}.json")
    measured = record is not None and "traits" in record and record["traits"].get("clean") == clean_record(clean)
    if traits and interval is not None and _stale_interval(record, interval, measured):
        return False
    if record is not None and (not traits or measured):
        return True
    try:
        mask = read_mask(mask_path) == 1
    except ImageReadError:
        return False
    kept = {key: (record or {}).get(key) for key in ("seconds", "uncertainty")}  # from the probabilities, gone
    write_record(output, job, {**measure_row(job, mask, method, traits=traits, clean=clean), **kept})
    return True


def _stale_interval(record: dict[str, Any] | None, interval: IntervalSettings, measured: bool) -> bool:
    """The record has interval traits, but of another delta or other cleaning than asked for now."""
    found = (record or {}).get("interval")
    if not isinstance(found, dict):
        return False
    return not measured or any(found.get(key) != value for key, value in interval.record().items())


def _table_row(record: dict[str, Any], mm_per_pixel: float | None, traits: TraitSettings | None) -> dict[str, Any]:
    pixels = int(record["height"]) * int(record["width"])
    length = float(record["root_length_px"])
    seconds, uncertainty = record.get("seconds"), record.get("uncertainty")
    return {
        **record,
        "root_fraction": f"{int(record['root_pixels']) / pixels:.6f}",
        "root_length_px": f"{length:.3f}",
        "root_length_mm": None if mm_per_pixel is None else f"{length * mm_per_pixel:.3f}",
        "uncertainty": None if uncertainty is None else f"{float(uncertainty):.6f}",
        "seconds": None if seconds is None else f"{float(seconds):.3f}",
        **(_trait_columns(record, mm_per_pixel, traits) if traits and "traits" in record else {}),
    }


def _trait_columns(record: dict[str, Any], mm_per_pixel: float | None, traits: TraitSettings) -> dict[str, Any]:
    """The trait columns, and with `traits.interval` their error bars where the record has them."""
    columns = traits_from_pixels(record["traits"], mm_per_pixel, traits)
    found = record.get("interval")
    if traits.interval is None or not isinstance(found, dict):
        return columns
    loose, strict = (traits_from_pixels(found[key], mm_per_pixel, traits) for key in ("loose", "strict"))
    return {**columns, **interval_traits(columns, loose, strict, traits.interval)}


def _ranked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ranked.csv's rows: most uncertain first, ties by name, images without a score (measured from an
    older run's mask) last."""
    keys = {f"{row['name']}\0{i:09d}": row for i, row in enumerate(rows)}  # unique even if two share a name
    scores = {key: None if row["uncertainty"] is None else float(row["uncertainty"]) for key, row in keys.items()}
    return [{**keys[key], "rank": i} for i, key in enumerate(rank_by_uncertainty(scores), start=1)]


def rebuild_tables(
    output: Path, jobs: Sequence[Job], mm_per_pixel: float | None, traits: TraitSettings | None = None
) -> list[dict[str, Any]]:
    """results.csv from the records of every finished image (those whose mask exists), in input order, then
    images of earlier runs over other inputs, with trait columns when `traits` is given; failures.csv from
    the failures not since segmented."""
    with folder_lock(output, "tables"):
        records = {p.stem: p for p in _folder(output, "records").glob("*.json")}
        order = [job.stem for job in jobs] + sorted(set(records) - {job.stem for job in jobs})
        rows = []
        for stem in order:
            record = read_json_object(records[stem]) if stem in records else None
            if record is not None and (output / f"{stem}.png").is_file():
                rows.append(_table_row(record, mm_per_pixel, traits))
        columns = [*CSV_COLUMNS, *(traits.columns() if traits else [])]
        if traits and traits.interval is not None:
            columns += interval_columns(traits.columns())
        write_csv(output / CSV_NAME, rows, columns, only_if_changed=True)
        write_csv(output / RANKED_NAME, _ranked(rows), RANKED_COLUMNS, only_if_changed=True)
        failures = [
            failure
            for path in sorted(_folder(output, "failures").glob("*.json"))
            if (failure := read_json_object(path)) is not None and not (output / f"{path.stem}.png").is_file()
        ]
        if failures:
            write_csv(output / FAILURES_NAME, failures, FAILURE_COLUMNS, only_if_changed=True)
        else:
            (output / FAILURES_NAME).unlink(missing_ok=True)
    return rows
