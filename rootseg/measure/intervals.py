"""An error bar per trait per image: the traits of the masks at thresholds t - delta and t + delta.

A segmentation's traits move with its threshold where the model hesitates (faint fine roots, blurred edges):
the same places where they are most likely wrong. So each image gets, per trait column, `<col>_low` and
`<col>_high`, the least and the most of the trait over three masks of one probability map: at the threshold
t (the mask predict writes), at t - delta (looser) and at t + delta (stricter), each cleaned as the main mask
(`clean:`). Min and max over all three, as a trait need not be monotone in the threshold (a looser mask
joins pieces: fewer connected roots, more length). `delta` is chosen on SegRoot's val scans so that the
annotation's trait falls inside the interval for about 80 % of images (experiments/segroot_study,
`calibrate_intervals.py`).

The threshold band alone can miss a model's systematic error (a weak model over-segments sparse scans whatever
the threshold), so every bound is then widened by a relative `margin` m, calibrated on val with the delta:
low / (1 + m), high * (1 + m). An image is flagged `unreliable` when its root-length interval is wide against
its length: (length_px_high - length_px_low) / length_px > `unreliable_width` (`interval_width` in results.csv; an
image without root whose looser mask has some is flagged too). `interval_coverage` reports, per trait, the
share of images whose reference trait lies in the interval, and the share of the total relative error the
flagged images hold (eval and compare).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rootseg.config.typed import Number

#: trait columns that do not depend on the mask (the image and the settings): no interval
FIXED_COLUMNS = frozenset({"image_area_px", "image_area_mm2", "mm_per_pixel", "depth_of_field_mm"})
WIDTH_COLUMN, FLAG_COLUMN = "interval_width", "unreliable"
_RULES = {
    "delta": Number(low=0, high=0.5, low_open=True, high_open=True, unit="probability"),
    "margin": Number(low=0, unit="relative widening"),
    "unreliable_width": Number(low=0, low_open=True, allow_inf=True, unit="relative width of root length"),
}


@dataclass(frozen=True)
class IntervalSettings:
    """`interval:` of conf/measure: the threshold half-width, the relative widening of every bound and the
    flag's cutoff on the relative width of the root-length interval; the defaults (conf/measure/default.yaml's
    too) are calibrated on SegRoot val with the shipped segroot-ci600 (experiments/segroot_study)."""

    delta: float = 0.45
    margin: float = 0.424
    unreliable_width: float = 0.857

    def __post_init__(self) -> None:
        for key, rule in _RULES.items():
            object.__setattr__(self, key, float(rule.convert(f"interval.{key}", getattr(self, key))))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> IntervalSettings:
        """From `interval:` of a config (missing keys keep the defaults); unknown keys are refused by name."""
        values = dict(values or {})
        unknown = sorted(set(values) - set(_RULES))
        if unknown:
            raise ValueError(f"unknown setting interval.{unknown[0]}; the interval settings are {sorted(_RULES)}")
        return cls(**values)

    def thresholds(self, threshold: float) -> tuple[float, float]:
        """(looser, stricter) thresholds, t - delta and t + delta; where one would leave (0, 1) (a threshold near
        0 or 1, such as a checkpoint's 0.9), halfway between t and 0 or 1 instead, so the three masks still
        differ and stay ordered."""
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
        loose, strict = threshold - self.delta, threshold + self.delta
        return (loose if loose > 0 else threshold / 2), (strict if strict < 1 else (1 + threshold) / 2)

    def record(self) -> dict[str, float]:
        """What a record keeps to tell when the interval traits must be measured again (the margin and the flag's
        cutoff are applied when results.csv is built, so changing them needs no new measurement)."""
        return {"delta": self.delta}


def interval_pixels(
    probs: np.ndarray, threshold: float, settings: IntervalSettings, measure: Callable[[np.ndarray], dict]
) -> dict[str, Any]:
    """The pixel measurements (`measure`, e.g. `pixel_traits` with the run's cleaning) of the looser and the
    stricter mask of `probs`, with the settings that made them: what a record keeps."""
    loose, strict = settings.thresholds(threshold)
    measured = {"loose": measure(probs >= loose), "strict": measure(probs >= strict)}
    return {**settings.record(), "thresholds": [loose, strict], **measured}


def _bounds(values: Sequence[float]) -> tuple[float, float]:
    finite = [float(v) for v in values if not math.isnan(float(v))]
    return (min(finite), max(finite)) if finite else (math.nan, math.nan)


def relative_width(low: float, high: float, value: float) -> float:
    """(high - low) / value; 0 for an empty interval at 0, inf for a wide one at 0."""
    if value > 0:
        return (high - low) / value
    return 0.0 if high - low <= 0 else math.inf


def interval_columns(columns: Sequence[str]) -> list[str]:
    """results.csv's interval columns after the trait columns: width, flag, then `<col>_low`, `<col>_high`."""
    bounded = [c for c in columns if c not in FIXED_COLUMNS]
    return [WIDTH_COLUMN, FLAG_COLUMN, *(f"{c}{end}" for c in bounded for end in ("_low", "_high"))]


def interval_traits(
    traits: Mapping[str, float], loose: Mapping[str, float], strict: Mapping[str, float], settings: IntervalSettings
) -> dict[str, Any]:
    """The interval columns from the trait columns of the three masks (threshold, looser, stricter): min and max,
    then widened by the margin m (low / (1 + m), high * (1 + m)), and the flag."""
    out: dict[str, Any] = {}
    scale = 1.0 + settings.margin
    for column, value in traits.items():
        if column not in FIXED_COLUMNS:
            low, high = _bounds((value, loose[column], strict[column]))
            out[f"{column}_low"], out[f"{column}_high"] = low / scale, high * scale
    width = relative_width(out["length_px_low"], out["length_px_high"], float(traits["length_px"]))
    return {WIDTH_COLUMN: width, FLAG_COLUMN: int(width > settings.unreliable_width), **out}


def interval_coverage(
    rows: Sequence[Mapping[str, Any]], traits: Sequence[str], true_prefix: str = "true_", pred_prefix: str = "pred_"
) -> list[dict[str, Any]]:
    """Per trait, over images with finite values: the share whose reference (`true_<trait>`) lies in
    [`pred_<trait>_low`, `pred_<trait>_high`], the share flagged (`pred_unreliable`) and the share of the total
    relative error |pred - true| / true the flagged images hold, over images whose reference is not 0 (the scale
    of `median_relative_error`: a sparse scan counts as much as a dense one; NaN where the total is 0)."""
    out = []
    for trait in traits:
        low_key = f"{pred_prefix}{trait}_low"
        if not rows or low_key not in rows[0]:
            continue
        table = np.array(
            [
                [float(r[f"{true_prefix}{trait}"]), float(r[f"{pred_prefix}{trait}"]), float(r[low_key])]
                + [float(r[f"{pred_prefix}{trait}_high"]), float(r[f"{pred_prefix}{FLAG_COLUMN}"])]
                for r in rows
            ],
            np.float64,
        ).reshape(-1, 5)
        table = table[np.isfinite(table).all(axis=1)]
        true, pred, low, high, flagged = table.T
        inside = (low <= true) & (true <= high)
        error = np.abs(pred - true) / np.where(true != 0, np.abs(true), np.inf)  # 0 where the reference is 0
        total = float(error.sum())
        share = float(error[flagged > 0].sum() / total) if total > 0 else math.nan
        n = int(true.size)
        out.append(
            {
                "trait": trait,
                "n": n,
                "coverage": float(inside.mean()) if n else math.nan,
                "flagged": float((flagged > 0).mean()) if n else math.nan,
                "flagged_error_share": share,
            }
        )
    return out
