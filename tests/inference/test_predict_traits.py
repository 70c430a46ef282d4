"""predict's results.csv carries the root traits, rebuilt from pixel records at the run's resolution and
classes; `rve=true` writes RhizoVision Explorer masks; `traits=false` leaves them out."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_predict import SIZES, images_dir, run  # noqa: F401 (fixtures)

from rootseg.inference.records import CSV_COLUMNS
from rootseg.measure.cleaning import Cleaning
from rootseg.measure.length import skeleton_length
from rootseg.measure.traits import TRAIT_COLUMNS, root_traits, trait_columns


def _rows(output: Path) -> dict[str, dict[str, str]]:
    with open(output / "results.csv", newline="", encoding="utf-8") as handle:
        return {row["name"]: row for row in csv.DictReader(handle)}


def _mask(output: Path, stem: str) -> np.ndarray:
    return np.asarray(Image.open(output / f"{stem}.png")) == 255


def _assert_traits(row: dict[str, str], expected: dict[str, float], columns) -> None:
    for column in columns:
        value = float(row[column]) if row[column] not in ("", "nan") else math.nan
        if math.isnan(expected[column]):
            assert math.isnan(value), column
        else:
            assert value == pytest.approx(expected[column], rel=1e-6, abs=1e-9), column


def test_results_carry_traits_and_rve_masks(run, images_dir, tmp_path):  # noqa: F811
    output = tmp_path / "out"
    run(images_dir, output, "mm_per_pixel=0.05", "rve=true")
    rows = _rows(output)
    with open(output / "results.csv", encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
    assert header[len(CSV_COLUMNS) : len(CSV_COLUMNS) + len(TRAIT_COLUMNS)] == list(TRAIT_COLUMNS)
    for stem in SIZES:
        mask = _mask(output, stem)
        row = rows[f"{stem}.png"]
        _assert_traits(row, root_traits(mask, 0.05, clean=Cleaning()), TRAIT_COLUMNS)
        # the mask as it is (traits fill pinholes first, so length_px may differ on a ragged mask)
        assert float(row["root_length_px"]) == pytest.approx(skeleton_length(mask, method="corrected"), rel=1e-6)
        rve = Image.open(output / f"{stem}_rve.png")
        assert rve.mode == "L"
        assert np.array_equal(np.asarray(rve), np.where(mask, 0, 255))  # root black, as convert_seg_to_rve

    # a second run changes the resolution and the classes: every row rebuilt from the records, nothing segmented
    summary = run(images_dir, output, "dpi=254", "diameter_classes_mm=[0.3,3]", "depth_of_field_mm=3")
    assert (summary["segmented"], summary["skipped"]) == (0, len(SIZES))
    rows = _rows(output)
    columns = trait_columns((0.3, 3))
    for stem in SIZES:
        expected = root_traits(
            _mask(output, stem), 0.1, diameter_edges_mm=(0.3, 3), depth_of_field_mm=3, clean=Cleaning()
        )
        _assert_traits(rows[f"{stem}.png"], expected, columns)
    assert "length_mm_d0-0.5" not in rows["b.png"] and "length_mm_d0.3-3" in rows["b.png"]


def test_traits_false_leaves_them_out_and_a_later_run_adds_them(run, images_dir, tmp_path):  # noqa: F811
    output = tmp_path / "out"
    run(images_dir, output, "traits=false")
    rows = _rows(output)
    assert "tips" not in rows["b.png"] and not list(output.glob("*_rve.png"))
    lengths = {name: row["root_length_px"] for name, row in rows.items()}
    summary = run(images_dir, output, "rve=true")  # traits on again, and RhizoVision masks asked for
    assert (summary["segmented"], summary["skipped"]) == (0, len(SIZES))
    rows = _rows(output)
    assert {name: row["root_length_px"] for name, row in rows.items()} == lengths  # one skeleton, one length
    for stem in SIZES:
        _assert_traits(
            rows[f"{stem}.png"],
            root_traits(_mask(output, stem), clean=Cleaning()),
            ["tips", "length_px", "branch_points"],
        )
        assert (output / f"{stem}_rve.png").is_file()
    with pytest.raises(ValueError, match="diameter class edges"):
        run(images_dir, output, "diameter_classes_mm=[2,1]")


def test_changed_clean_settings_measure_every_image_again_without_segmenting(run, images_dir, tmp_path):  # noqa: F811
    """A record keeps the cleaning it was measured with: a re-run with other `clean.*` settings measures the
    saved masks again (no image segmented twice), and `clean=null` measures them as they are. Without trait
    intervals: those need the probabilities, so with them the images are segmented again
    (test_predict_intervals)."""
    output = tmp_path / "out"
    run(images_dir, output, "interval=null")
    first = _rows(output)
    columns = ["tips", "branch_points", "length_px", "connected_roots"]
    strict = Cleaning(min_component_px=400, max_hole_px=0, prune_px=None, bridge_gap_px=0)
    summary = run(
        images_dir,
        output,
        "clean.min_component_px=400",
        "clean.max_hole_px=0",
        "clean.prune_px=null",
        "clean.bridge_gap_px=0",
        "interval=null",
    )
    assert (summary["segmented"], summary["skipped"]) == (0, len(SIZES))
    rows = _rows(output)
    for stem in SIZES:
        _assert_traits(rows[f"{stem}.png"], root_traits(_mask(output, stem), clean=strict), columns)
    changed = [name for name in rows if any(rows[name][c] != first[name][c] for c in columns)]
    assert changed, "the two cleanings measure the same traits on every image: the test shows nothing"

    summary = run(images_dir, output, "clean=null", "interval=null")
    assert (summary["segmented"], summary["skipped"]) == (0, len(SIZES))
    rows = _rows(output)
    for stem in SIZES:
        _assert_traits(rows[f"{stem}.png"], root_traits(_mask(output, stem), clean=None), columns)
