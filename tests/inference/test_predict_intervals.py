"""predict's results.csv carries each trait's interval (traits of the masks at t -/+ delta) and the unreliable flag,
checked against traits measured by hand on the saved probabilities; a changed cutoff only rebuilds the table, a
changed delta segments again, bad settings are refused by name."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from test_predict import SIZES, images_dir, run  # noqa: F401 (fixtures)

from rootseg.measure.cleaning import Cleaning
from rootseg.measure.intervals import FIXED_COLUMNS
from rootseg.measure.traits import TRAIT_COLUMNS, root_traits

BOUNDED = [column for column in TRAIT_COLUMNS if column not in FIXED_COLUMNS]


def _rows(output: Path) -> tuple[list[str], dict[str, dict[str, str]]]:
    with open(output / "results.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), {row["name"]: row for row in reader}


def _value(text: str) -> float:
    return math.nan if text in ("", "nan") else float(text)


def _check_row(row: dict[str, str], probs: np.ndarray, delta: float, cutoff: float, mm: float, margin=0.0) -> None:
    """Every interval column against the traits of the three masks measured here, widened by the margin, and
    the flag's rule."""
    masks = [probs >= 0.5, probs >= 0.5 - delta, probs >= 0.5 + delta]
    measured = [root_traits(mask, mm, clean=Cleaning()) for mask in masks]
    scale = 1 + margin
    for column in BOUNDED:
        values = [m[column] for m in measured if not math.isnan(m[column])]
        for end, expected in (
            ("_low", min(values, default=math.nan) / scale),
            ("_high", max(values, default=math.nan) * scale),
        ):
            got = _value(row[column + end])
            assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected, rel=1e-6, abs=1e-9)
    lengths = [m["length_px"] for m in measured]
    low, high = min(lengths) / scale, max(lengths) * scale
    width = (high - low) / lengths[0] if lengths[0] > 0 else (math.inf if high else 0.0)
    assert _value(row["interval_width"]) == pytest.approx(width, rel=1e-6)
    assert int(row["unreliable"]) == int(width > cutoff)


def test_interval_columns_match_masks_at_t_minus_and_plus_delta(run, images_dir, tmp_path):  # noqa: F811
    output = tmp_path / "out"
    run(
        images_dir,
        output,
        "save_probs=npy",
        "mm_per_pixel=0.05",
        "interval.delta=0.1",
        "interval.unreliable_width=1",
        "interval.margin=0",
    )
    header, rows = _rows(output)
    assert header[-(2 + 2 * len(BOUNDED)) :][:4] == ["interval_width", "unreliable", "length_px_low", "length_px_high"]
    widths = []
    for stem in SIZES:
        probs = np.load(output / f"{stem}_prob.npy")
        _check_row(rows[f"{stem}.png"], probs, 0.1, 1.0, 0.05)
        widths.append(_value(rows[f"{stem}.png"]["interval_width"]))
    assert max(widths) > 0  # the random model's probabilities straddle 0.5 -/+ 0.1: the intervals are not empty

    # a new cutoff, margin (and resolution) only rebuild the table from the records: nothing segmented again
    widened = [
        (float(r["length_px_high"]) * 1.2 - float(r["length_px_low"]) / 1.2) / float(r["length_px"])
        for r in rows.values()
    ]
    cutoff = float(np.median(widened))  # half the images above it
    overrides = ["dpi=254", "interval.delta=0.1", f"interval.unreliable_width={cutoff}", "interval.margin=0.2"]
    summary = run(images_dir, output, "save_probs=npy", *overrides)
    assert (summary["segmented"], summary["skipped"]) == (0, len(SIZES))
    _, rows = _rows(output)
    for stem in SIZES:
        _check_row(rows[f"{stem}.png"], np.load(output / f"{stem}_prob.npy"), 0.1, cutoff, 0.1, margin=0.2)
    assert 0 < sum(int(row["unreliable"]) for row in rows.values()) < len(SIZES)

    # interval=null: no interval columns, nothing segmented; a new delta needs the probabilities: segmented again
    summary = run(images_dir, output, "interval=null")
    assert summary["segmented"] == 0 and "unreliable" not in _rows(output)[0]
    summary = run(
        images_dir,
        output,
        "save_probs=npy",
        "mm_per_pixel=0.05",
        "interval.delta=0.3",
        "interval.unreliable_width=1",
        "interval.margin=0",
    )
    assert (summary["segmented"], summary["skipped"]) == (len(SIZES), 0)
    _, rows = _rows(output)
    for stem in SIZES:
        _check_row(rows[f"{stem}.png"], np.load(output / f"{stem}_prob.npy"), 0.3, 1.0, 0.05)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("interval.delta=-0.1", "interval.delta"),
        ("interval.delta=nan", "interval.delta"),
        ("interval.unreliable_width=-1", "interval.unreliable_width"),
        ("+interval.widht=1", "interval.widht"),
        ("interval=3", "interval must be a group"),
    ],
)
def test_bad_interval_settings_are_refused_by_name(run, images_dir, tmp_path, override, key):  # noqa: F811
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        run(images_dir, tmp_path / "out", override)
    assert not (tmp_path / "out" / "results.csv").exists()


def test_a_threshold_near_one_stops_the_stricter_mask_halfway(run, images_dir, tmp_path):  # noqa: F811
    output = tmp_path / "out"
    run(
        images_dir,
        output,
        "save_probs=npy",
        "threshold=0.8",
        "interval.delta=0.3",
        "interval.unreliable_width=1",
        "interval.margin=0",
    )
    _, rows = _rows(output)
    for stem in SIZES:
        probs = np.load(output / f"{stem}_prob.npy")
        masks = [probs >= 0.8, probs >= 0.5, probs >= 0.9]  # 0.8 + 0.3 would leave (0, 1): halfway to 1
        lengths = [root_traits(mask, clean=Cleaning())["length_px"] for mask in masks]
        row = rows[f"{stem}.png"]
        bounds = (float(row["length_px_low"]), float(row["length_px_high"]))
        assert bounds == pytest.approx((min(lengths), max(lengths)))


def test_images_segmented_without_intervals_keep_their_outputs(run, images_dir, tmp_path):  # noqa: F811
    """A run with interval=null, resumed with intervals: nothing segmented, interval columns empty; with
    intervals measured, other clean settings make them stale: segmented again."""
    output = tmp_path / "out"
    run(images_dir, output, "interval=null")
    summary = run(images_dir, output)
    assert (summary["segmented"], summary["skipped"]) == (0, len(SIZES))
    header, rows = _rows(output)
    assert "length_px_low" in header and all(row["length_px_low"] == "" for row in rows.values())
    summary = run(images_dir, output, "overwrite=true")
    assert summary["segmented"] == len(SIZES) and all(row["length_px_low"] for row in _rows(output)[1].values())
    summary = run(images_dir, output, "clean.prune_px=5")
    assert (summary["segmented"], summary["skipped"]) == (len(SIZES), 0)
