"""`python -m rootseg.measure input=MASKS`: any folder of binary masks -> traits.csv, rows equal to `root_traits` of
each file read independently; photos and bad settings refused by name."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, run_command
from PIL import Image

from rootseg.cli.measure import grey_level
from rootseg.io.rootpainter import encode_rootpainter_annotation
from rootseg.measure.cleaning import Cleaning
from rootseg.measure.traits import TRAIT_COLUMNS, root_traits, trait_columns
from rootseg.synthetic.generator import generate_sample


@pytest.fixture(scope="module")
def masks(tmp_path_factory):
    """0/255 PNG, 0/1 TIFF, a RootPainter annotation (transparent band unlabelled), a JPEG mask and a photo."""
    folder = tmp_path_factory.mktemp("masks")
    roots = [generate_sample(seed, (160, 200)).root_mask for seed in range(4)]
    Image.fromarray(roots[0].astype(np.uint8) * 255).save(folder / "a.png")
    Image.fromarray(roots[1].astype(np.uint8)).save(folder / "b.tif")
    rgba = encode_rootpainter_annotation(roots[2].astype(np.uint8))
    rgba[40:80, :, 3] = 0
    Image.fromarray(rgba).save(folder / "c_annotation.png")
    Image.fromarray(roots[3].astype(np.uint8) * 255).save(folder / "d.jpg", quality=95)
    Image.fromarray(generate_sample(9, (160, 200)).image).save(folder / "photo.jpg")
    return folder, roots


def _independent(folder, roots):
    """What each file holds, read with PIL and numpy only: (root, labelled) per name."""
    jpeg = np.asarray(Image.open(folder / "d.jpg").convert("L")) > 127
    labelled = np.ones(roots[2].shape, bool)
    labelled[40:80] = False
    return {
        "a.png": (roots[0], None),
        "b.tif": (roots[1], None),
        "c_annotation.png": (roots[2] & labelled, labelled),
        "d.jpg": (jpeg, None),
    }


def test_measures_every_mask_and_lists_the_photo(masks, tmp_path, capsys):
    folder, roots = masks
    output = tmp_path / "out" / "traits.csv"
    settings = [f"input={folder}", "dpi=300", f"output={output}", "diameter_classes_mm=[0.2,0.5]"]
    assert run_command("measure", settings, tmp_path / "run") == 1
    table = pd.read_csv(output).set_index("name")
    assert sorted(table.index) == ["a.png", "b.tif", "c_annotation.png", "d.jpg"]
    assert list(table.columns[-len(trait_columns((0.2, 0.5))) :]) == trait_columns((0.2, 0.5))
    for name, (root, labelled) in _independent(folder, roots).items():
        expected = root_traits(root, 25.4 / 300, diameter_edges_mm=(0.2, 0.5), valid=labelled, clean=Cleaning())
        for column, value in expected.items():
            assert table.loc[name, column] == pytest.approx(value, rel=1e-6, abs=1e-9), (name, column)
    assert table.loc["c_annotation.png", "unlabelled_pixels"] == 40 * 200
    assert table.loc["c_annotation.png", "image_area_px"] == 120 * 200
    failures = pd.read_csv(tmp_path / "out" / "traits_failures.csv")
    assert failures["name"].tolist() == ["photo.jpg"] and "not a binary mask" in failures["error"][0]
    out = capsys.readouterr().out
    assert "measured 4 masks" in out and "FAILED" in out and "photo.jpg" in out


def test_without_a_resolution_the_mm_columns_are_empty(masks, tmp_path):
    folder, roots = masks
    output = tmp_path / "traits.csv"
    assert run_command("measure", [f"input={folder / 'a.png'}", f"output={output}"], tmp_path / "run") == 0
    row = pd.read_csv(output).iloc[0]
    assert row["length_px"] == pytest.approx(root_traits(roots[0], clean=Cleaning())["length_px"])
    in_mm = [c for c in TRAIT_COLUMNS if ("_mm" in c or c.startswith(("rld", "mm_"))) and c != "depth_of_field_mm"]
    assert len(in_mm) == 14 and all(math.isnan(row[c]) for c in in_mm), in_mm
    assert not (tmp_path / "traits_failures.csv").exists()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("dpi=abc", "dpi must be a finite number > 0 or null, got 'abc'"),
        ("dpi=inf", "dpi must be a finite number > 0 or null, got inf"),
        ("diameter_classes_mm=[2,1]", "strictly increasing"),
        ("depth_of_field_mm=-1", "depth_of_field_mm must be a finite number (mm) > 0 or null, got -1"),
        ("threshold=127", "threshold must be a finite number (probability) > 0 and < 1, got 127"),
        ("traits=maybe", "traits must be true or false (also yes/no, on/off, 1/0), got 'maybe'"),
    ],
)
def test_bad_settings_exit_2_with_one_paragraph(masks, tmp_path, capsys, setting, message):
    assert run_command("measure", [f"input={masks[0]}", setting, f"output={tmp_path / 't.csv'}"], tmp_path / "r") == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "t.csv").exists()


def test_a_mistyped_key_is_answered_with_the_key_meant(masks, tmp_path, capsys):
    assert run_command("measure", [f"input={masks[0]}", "dpii=600"], tmp_path / "run") == 1
    assert "hint: dpii is not a setting of this command; did you mean dpi?" in capsys.readouterr().err


@pytest.mark.parametrize(("threshold", "level"), [(0.5, 127), (0.9, 229), (1 / 255, 0), (0.001, 0), (254.5 / 255, 254)])
def test_threshold_is_a_probability_of_the_grey_level(threshold, level):
    """grey g is root where g > level, which must be g / 255 >= threshold for every g in 0-255 (predict's rule)."""
    greys = np.arange(256)
    assert np.array_equal(greys > grey_level(threshold), greys / 255 >= threshold)


def test_python_m_runs_the_command(masks, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rootseg.measure",
            f"input={masks[0] / 'a.png'}",
            f"output={tmp_path / 't.csv'}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "measured 1 masks" in result.stdout and (tmp_path / "t.csv").is_file()
