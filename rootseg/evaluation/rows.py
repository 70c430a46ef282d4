"""One image's row of per_image.csv: the pixel scores, root pixels, length and line-intersect counts of the
prediction and of the annotation, on labelled pixels only; and the prediction saved for `rootseg.report`."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rootseg.io.arrays import IGNORE_INDEX
from rootseg.io.atomic import write_image
from rootseg.measure.intersect import line_intersect_counts
from rootseg.measure.intervals import interval_pixels, interval_traits
from rootseg.measure.length import skeleton_length
from rootseg.measure.traits import TraitSettings, pixel_traits, traits_from_pixels
from rootseg.metrics.pixels import confusion, scores, segroot_soft_dice


def grid_suffix(grid_mm: float, grids_mm: Sequence[float]) -> str:
    """Column suffix of a line-intersect grid: none for the first (headline) grid, `_<g>mm` for the others."""
    return "" if grid_mm == grids_mm[0] else f"_{grid_mm:g}mm"


def measure_image(
    probs: np.ndarray,
    target: np.ndarray,
    threshold: float,
    mm_per_pixel: float | None = None,
    grids_mm: Sequence[float] = (10.0,),
    length_method: str = "corrected",
    grid_px: float | None = None,
    traits: TraitSettings | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """One per_image.csv row (less name and seconds) and the hard prediction.

    Every column counts labelled pixels only (target 0 or 1; 255 is unlabelled, e.g. RootPainter's
    transparent areas): the prediction is cut to them before root pixels, length and line intersects are
    measured, as the annotation can only hold root there. The first grid's intersections and intensity have
    plain column names (`intensity_true_per_m`); each further grid's end in `_<spacing>mm`. Without a
    resolution, `grid_px` counts intersections on a grid that many pixels apart (no intensity per metre).
    With `traits`, the root traits of both (`rootseg.measure.traits`) as `true_<trait>` and `pred_<trait>`, and
    with `traits.interval` the prediction's error bars as predict's results.csv has them (`pred_<trait>_low`,
    `pred_<trait>_high`, `pred_interval_width`, `pred_unreliable`; `rootseg.measure.intervals`).
    """
    pred = probs >= threshold  # the rule of rootseg.inference.predictor.Predictor.mask
    labelled = target != IGNORE_INDEX
    truth = target == 1
    pred_labelled = pred & labelled
    counts = confusion(pred, target)
    row: dict[str, Any] = {
        **counts,
        **scores(**counts),
        "segroot_soft_dice": segroot_soft_dice(probs, target),
        "unlabelled_pixels": int(np.count_nonzero(~labelled)),
        "root_pixels_true": int(truth.sum()),
        "root_pixels_pred": int(pred_labelled.sum()),
    }
    row.update(_lengths_and_traits(truth, pred_labelled, labelled, length_method, mm_per_pixel, traits))
    if traits is not None and traits.interval is not None:
        row.update(_interval_columns(probs, threshold, labelled, row, mm_per_pixel, traits))
    if mm_per_pixel:
        row["length_true_mm"] = row["length_true_px"] * mm_per_pixel
        row["length_pred_mm"] = row["length_pred_px"] * mm_per_pixel
        for grid_mm in grids_mm:
            suffix = grid_suffix(grid_mm, grids_mm)
            for side, mask in (("true", truth), ("pred", pred_labelled)):
                found = line_intersect_counts(mask, grid_mm / mm_per_pixel, mm_per_pixel, valid=labelled)
                row[f"intersections_{side}{suffix}"] = found["intersections"]
                intensity = found["intensity_per_m"]
                row[f"intensity_{side}_per_m{suffix}"] = math.nan if intensity is None else float(intensity)
    elif grid_px:
        for side, mask in (("true", truth), ("pred", pred_labelled)):
            row[f"intersections_{side}"] = line_intersect_counts(mask, grid_px, valid=labelled)["intersections"]
    return row, pred


def _lengths_and_traits(
    truth: np.ndarray,
    pred: np.ndarray,
    labelled: np.ndarray,
    method: str,
    mm_per_pixel: float | None,
    traits: TraitSettings | None,
) -> dict[str, Any]:
    """Root length of annotation and prediction; with `traits`, their traits too, from the same skeleton."""
    if traits is None:
        return {
            f"length_{side}_px": skeleton_length(mask, method=method)
            for side, mask in (("true", truth), ("pred", pred))
        }
    out: dict[str, Any] = {}
    for side, mask in (("true", truth), ("pred", pred)):
        pixels = pixel_traits(mask, valid=labelled, length_method=method, clean=traits.clean)
        out[f"length_{side}_px"] = pixels["root_length_px"]
        out.update({f"{side}_{k}": v for k, v in traits_from_pixels(pixels, mm_per_pixel, traits).items()})
    return out


def _interval_columns(
    probs: np.ndarray,
    threshold: float,
    labelled: np.ndarray,
    row: dict[str, Any],
    mm_per_pixel: float | None,
    traits: TraitSettings,
) -> dict[str, Any]:
    """The prediction's trait error bars: its traits at threshold -/+ delta, on labelled pixels, cleaned alike."""
    center = {key: row[f"pred_{key}"] for key in traits.columns()}

    def measure(mask: np.ndarray) -> dict[str, Any]:
        return pixel_traits(mask & labelled, valid=labelled, clean=traits.clean)

    measured = interval_pixels(probs, threshold, traits.interval, measure)
    loose, strict = (traits_from_pixels(measured[key], mm_per_pixel, traits) for key in ("loose", "strict"))
    found = interval_traits(center, loose, strict, traits.interval)
    return {f"pred_{key}": value for key, value in found.items()}


def prediction_file(name: str) -> str:
    """predictions/<name>.png, relative to the run directory (path separators in a name become _)."""
    return "predictions/" + re.sub(r"[\\/]", "_", name) + ".png"


def save_prediction(run_dir: Path, sample: Any, pred: np.ndarray, mask_threshold: int) -> dict[str, Any]:
    """The hard mask as a lossless 1-bit PNG (root white) and its predictions/index.csv row."""
    relative = prediction_file(sample.name)
    write_image(run_dir / relative, np.ascontiguousarray(pred, dtype=bool), optimize=True)
    return {
        "name": sample.name,
        "prediction": relative,
        "image_path": str(Path(sample.image_path).resolve()),
        "mask_path": str(Path(sample.mask_path).resolve()),
        "mask_threshold": mask_threshold,
    }


def model_info(module: Any) -> dict[str, Any]:
    """What the checkpoint is (for `rootseg.report`, which names methods by experiment)."""
    run_config = module.run_config or {}
    return {
        "kind": module.kind,
        "experiment_name": run_config.get("experiment_name"),
        "model_target": (run_config.get("model") or {}).get("_target_"),
    }
