"""rootseg.measure.intervals: min/max over the three masks, the unreliable flag's rule, coverage by hand count,
settings refused by name."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rootseg.measure.intervals import (
    IntervalSettings,
    interval_columns,
    interval_coverage,
    interval_pixels,
    interval_traits,
    relative_width,
)


def _traits(length: float, tips: int, roots: int) -> dict[str, float]:
    return {"length_px": length, "tips": tips, "connected_roots": roots, "image_area_px": 100.0, "mm_per_pixel": 0.1}


def test_bounds_are_min_and_max_over_all_three_masks():
    # not monotone: the looser mask joins pieces (fewer roots) yet the stricter one has fewer tips than both
    center, loose, strict = _traits(100, 5, 4), _traits(130, 7, 2), _traits(90, 3, 3)
    out = interval_traits(center, loose, strict, IntervalSettings(margin=0, unreliable_width=1.0))
    assert (out["length_px_low"], out["length_px_high"]) == (90, 130)
    assert (out["tips_low"], out["tips_high"]) == (3, 7)
    assert (out["connected_roots_low"], out["connected_roots_high"]) == (2, 4)  # center is the max
    assert "image_area_px_low" not in out and "mm_per_pixel_high" not in out  # fixed by the image and settings
    assert out["interval_width"] == pytest.approx((130 - 90) / 100)
    # a trait NaN in one mask (mm without a resolution) takes its bounds from the others; NaN in all stays NaN
    nan = {**center, "tips": math.nan}
    assert (
        interval_traits(nan, loose, strict, IntervalSettings(margin=0, unreliable_width=1.0))["tips_low"],
        interval_traits(nan, loose, strict, IntervalSettings(margin=0, unreliable_width=1.0))["tips_high"],
    ) == (3, 7)
    allnan = [{**t, "tips": math.nan} for t in (center, loose, strict)]
    assert math.isnan(interval_traits(*allnan, IntervalSettings(margin=0, unreliable_width=1.0))["tips_high"])


def test_unreliable_flag_is_relative_length_width_above_the_cutoff():
    center, loose, strict = _traits(100, 5, 4), _traits(150, 7, 2), _traits(100, 3, 3)  # width 0.5
    assert (
        interval_traits(center, loose, strict, IntervalSettings(margin=0, unreliable_width=0.5))["unreliable"] == 0
    )  # at the cutoff: not flagged
    assert interval_traits(center, loose, strict, IntervalSettings(margin=0, unreliable_width=0.49))["unreliable"] == 1
    empty, some = _traits(0, 0, 0), _traits(12, 2, 1)
    assert (
        interval_traits(empty, some, empty, IntervalSettings(margin=0, unreliable_width=1e6))["unreliable"] == 1
    )  # no root, but the looser mask has some
    assert interval_traits(empty, empty, empty, IntervalSettings(margin=0, unreliable_width=0.01))["unreliable"] == 0
    assert relative_width(0, 0, 0) == 0 and relative_width(0, 3, 0) == math.inf
    assert interval_columns(["length_px", "image_area_px", "tips"]) == [
        *("interval_width", "unreliable", "length_px_low", "length_px_high", "tips_low", "tips_high")
    ]


def test_margin_widens_every_bound_relatively():
    center, loose, strict = _traits(100, 5, 4), _traits(130, 7, 2), _traits(90, 3, 3)
    out = interval_traits(center, loose, strict, IntervalSettings(margin=0.5, unreliable_width=1.0))
    assert (out["length_px_low"], out["length_px_high"]) == pytest.approx((90 / 1.5, 130 * 1.5))
    assert (out["tips_low"], out["tips_high"]) == pytest.approx((3 / 1.5, 7 * 1.5))
    assert out["interval_width"] == pytest.approx((130 * 1.5 - 90 / 1.5) / 100)  # of the widened interval
    assert out["unreliable"] == 1


def test_coverage_against_a_hand_count():
    rows = [  # true, pred, low, high, flagged
        (10, 12, 9, 13, 0),  # inside, error 2
        (10, 20, 15, 25, 1),  # outside, error 10, flagged
        (5, 5, 5, 5, 0),  # inside on both bounds, error 0
        (8, 4, 2, 6, 1),  # outside, error 4, flagged
        (0, 3, 0, 4, 1),  # inside, flagged; no relative error (reference 0)
        (7, math.nan, 1, 9, 0),  # not finite: left out
    ]
    table = [
        {"true_tips": t, "pred_tips": p, "pred_tips_low": lo, "pred_tips_high": hi, "pred_unreliable": f}
        for t, p, lo, hi, f in rows
    ]
    [entry] = interval_coverage(table, ["tips", "length_px"])  # length_px: no interval columns, skipped
    # relative errors 0.2, 1.0, 0, 0.5, (none): the flagged hold 1.5 of 1.7
    assert entry == pytest.approx(
        {"trait": "tips", "n": 5, "coverage": 3 / 5, "flagged": 3 / 5, "flagged_error_share": 1.5 / 1.7}
    )


def test_interval_pixels_measure_the_masks_at_t_minus_and_plus_delta():
    probs = np.array([[0.1, 0.35, 0.5, 0.65, 0.9]], np.float32)
    out = interval_pixels(probs, 0.5, IntervalSettings(delta=0.2), lambda mask: int(mask.sum()))
    assert out == {"delta": 0.2, "thresholds": [pytest.approx(0.3), 0.7], "loose": 4, "strict": 1}


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"delta": -0.1}, "interval.delta"),
        ({"delta": "nan"}, "interval.delta"),
        ({"delta": 0.5}, "interval.delta"),
        ({"unreliable_width": 0}, "interval.unreliable_width"),
        ({"margin": -0.1}, "interval.margin"),
        ({"margin": "inf"}, "interval.margin"),
        ({"unreliable_width": "wide"}, "interval.unreliable_width"),
        ({"detla": 0.1}, "interval.detla"),
    ],
)
def test_bad_settings_are_refused_by_name(values, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        IntervalSettings.from_mapping(values)


def test_thresholds_near_zero_or_one_stop_halfway():
    assert IntervalSettings(delta=0.25).thresholds(0.5) == (0.25, 0.75)
    assert IntervalSettings(delta=0.25).thresholds(0.8) == pytest.approx((0.55, 0.9))  # not 1.05
    assert IntervalSettings(delta=0.25).thresholds(0.1) == pytest.approx((0.05, 0.35))  # not -0.15
    assert IntervalSettings(delta=0.3).thresholds(0.4) == pytest.approx((0.1, 0.7))  # inside: as it is
