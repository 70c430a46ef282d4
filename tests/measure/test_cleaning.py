"""Robust measurement (`rootseg.measure.cleaning`): each step against drawn shapes whose traits are known
exactly, the defaults against the synthetic generator's exact truth, and every setting's bad values."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from omegaconf import OmegaConf

from rootseg.measure.cleaning import RAW, Cleaning
from rootseg.measure.degrade import junctions
from rootseg.measure.settings import resolve_traits
from rootseg.measure.traits import root_traits
from rootseg.synthetic.generator import generate_sample

SIZE = (300, 300)
DEFAULTS = Cleaning()


def drawn(*segments: tuple[tuple[int, int], tuple[int, int], int], shape=SIZE) -> np.ndarray:
    """Roots drawn as cv2 lines ((x0, y0), (x1, y1), thickness): integer ends, so tips and forks are exact."""
    canvas = np.zeros(shape, np.uint8)
    for start, stop, thickness in segments:
        cv2.line(canvas, start, stop, 1, thickness=thickness)
    return canvas.astype(bool)


def topology(mask: np.ndarray, clean: Cleaning | None) -> tuple[int, int, int]:
    traits = root_traits(mask, clean=clean)
    return traits["tips"], traits["branch_points"], traits["connected_roots"]


T_ROOT = drawn(((50, 100), (250, 100), 7), ((150, 100), (150, 250), 5))
LINE = drawn(((40, 150), (260, 150), 5))


def test_drawn_shapes_keep_their_exact_traits_under_the_defaults() -> None:
    shapes = {
        "T": (T_ROOT, (3, 1, 1)),
        "line": (LINE, (2, 0, 1)),
        "X": (drawn(((50, 150), (250, 150), 6), ((150, 50), (150, 250), 6)), (4, 1, 1)),
        "two": (drawn(((40, 60), (260, 80), 5), ((40, 220), (260, 240), 7)), (4, 0, 2)),
    }
    for name, (mask, expected) in shapes.items():
        assert topology(mask, DEFAULTS) == expected, name
        assert root_traits(mask, clean=DEFAULTS)["length_px"] == root_traits(mask)["length_px"], name


def test_generated_images_keep_their_exact_tips_branch_points_and_length() -> None:
    """The generator's truth (roots that touch only at forks, no end near the border): the defaults give the
    true tips and branch points, and the same length as the raw measurement within 1 %."""
    samples = [generate_sample(seed, (256, 256)) for seed in range(40)]
    clean = [s for s in samples if not s.truth["touching"] and s.truth["near_border"] == 0]
    assert len(clean) >= 10
    for sample in clean:
        traits = root_traits(sample.root_mask, clean=DEFAULTS)
        assert (traits["tips"], traits["branch_points"]) == (sample.truth["tips"], sample.truth["branch_points"])
        assert traits["length_px"] == pytest.approx(root_traits(sample.root_mask)["length_px"], rel=0.01)


def test_small_components_are_dropped_and_large_ones_kept() -> None:
    specks = LINE.copy()
    specks[30:33, 30:33] = True  # 9 px: 1 root more raw, none with the defaults
    specks[250:257, 40:47] = True  # 49 px: kept (a short root piece)
    assert topology(specks, RAW)[2] == 3
    assert topology(specks, DEFAULTS)[2] == 2
    assert topology(specks, Cleaning(min_component_px=50))[2] == 1
    assert root_traits(specks, clean=DEFAULTS)["projected_area_px2"] == LINE.sum() + 49


def test_hole_filling_is_a_setting() -> None:
    holed = drawn(((40, 150), (260, 150), 9))
    holed[149:151, 150:152] = False  # a 4 px hole: a loop, two false branch points
    assert topology(holed, Cleaning(max_hole_px=4))[1] == 0
    assert topology(holed, Cleaning(max_hole_px=3))[1] == 2


def test_spurs_shorter_than_the_diameter_plus_n_are_pruned_and_laterals_kept() -> None:
    bump = LINE | drawn(((150, 150), (150, 145), 5))  # 5 px from the centre of a 7 px wide root: a bump
    lateral = LINE | drawn(((150, 150), (150, 110), 5))  # 40 px: a lateral
    assert topology(bump, RAW) == (3, 1, 1)
    assert topology(bump, DEFAULTS) == (2, 0, 1)
    assert topology(bump, Cleaning(prune_px=None)) == (3, 1, 1)
    assert topology(lateral, DEFAULTS) == (3, 1, 1)
    assert topology(lateral, Cleaning(prune_px=40)) == (2, 0, 1)


def test_facing_ends_across_a_small_gap_are_joined() -> None:
    broken = drawn(((40, 150), (140, 150), 5), ((150, 150), (260, 150), 5))  # 4 px between the caps
    assert topology(broken, RAW) == (4, 0, 2)
    assert topology(broken, DEFAULTS) == (2, 0, 1)
    assert root_traits(broken, clean=DEFAULTS)["length_px"] == pytest.approx(root_traits(LINE)["length_px"], abs=2)
    far = drawn(((40, 150), (120, 150), 5), ((160, 150), (260, 150), 5))
    assert topology(far, DEFAULTS) == (4, 0, 2)  # 40 px apart: two roots
    side = drawn(((40, 150), (140, 150), 5), ((130, 158), (260, 158), 5))
    assert topology(side, DEFAULTS) == (4, 0, 2)  # ends 13 px apart, side by side: they do not face
    assert topology(broken, Cleaning(bridge_gap_px=0)) == (4, 0, 2)
    canvas = np.zeros(SIZE, np.uint8)
    cv2.ellipse(canvas, (150, 150), (60, 60), 0, 5, 355, 1, thickness=5)  # a root curled round, ends facing
    assert topology(canvas.astype(bool), DEFAULTS) == (2, 0, 1)  # one root's ends are never joined: no loop


def test_a_junction_broken_by_the_segmentation_is_joined_again() -> None:
    broken = junctions(T_ROOT, 0.05, np.random.default_rng(0))
    assert broken.sum() < T_ROOT.sum() and topology(broken, RAW)[2] == 3
    assert topology(broken, DEFAULTS) == (3, 1, 1)


def test_a_border_band_is_left_out() -> None:
    framed = LINE | drawn(((0, 298), (299, 298), 2))  # a line drawn along the bottom edge
    traits = root_traits(framed, clean=Cleaning(border_px=3))
    assert traits["connected_roots"] == 1
    assert traits["image_area_px"] == (300 - 6) ** 2
    assert traits["projected_area_px2"] == LINE.sum()


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"min_component_px": -1}, "clean.min_component_px"),
        ({"max_hole_px": math.nan}, "clean.max_hole_px"),
        ({"prune_px": -2}, "clean.prune_px"),
        ({"bridge_gap_px": math.inf}, "clean.bridge_gap_px"),
        ({"border_px": 2.5}, "clean.border_px"),
        ({"min_component_px": True}, "clean.min_component_px"),
        ({"bridge_gap": 3}, "clean.bridge_gap"),
    ],
)
def test_bad_settings_are_one_line_errors_naming_the_key(values: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key) as error:
        Cleaning.from_mapping(values)
    assert "\n" not in str(error.value)


def test_settings_that_cannot_fit_the_image_are_errors() -> None:
    with pytest.raises(ValueError, match="clean.bridge_gap_px=500 is longer than the image"):
        root_traits(LINE, clean=Cleaning(bridge_gap_px=500))
    with pytest.raises(ValueError, match="clean.border_px=150"):
        root_traits(LINE, clean=Cleaning(border_px=150))


def test_commands_read_clean_from_their_config(compose) -> None:
    for command in ("predict", "eval"):
        cfg = compose(command, ["clean.prune_px=5", "clean.border_px=2"])
        assert resolve_traits(cfg).clean == Cleaning(prune_px=5, border_px=2)
        assert resolve_traits(compose(command, ["clean=null"])).clean is None
    assert resolve_traits({}).clean == DEFAULTS  # a command without the keys measures with the defaults
    with pytest.raises(ValueError, match="clean.prune_px"):
        resolve_traits(OmegaConf.create({"clean": {"prune_px": "nan"}}))
    assert json.loads(json.dumps(DEFAULTS.__dict__)) == DEFAULTS.__dict__


@pytest.mark.slow
@pytest.mark.realdata
def test_defaults_barely_move_the_traits_of_undamaged_annotations(segroot) -> None:
    """On SegRoot's train annotations (every 4th of 39, full size) the defaults change the median length by at
    most 1 % and tips and branch points by at most the issue's 10 % (plus 2 points for the subsample)."""
    from rootseg.io.masks import read_binary_mask

    names = json.loads((segroot / "split.json").read_text())["train"][::4]
    change = {"length_px": [], "tips": [], "branch_points": []}
    for name in names:
        mask = read_binary_mask(segroot / "masks" / f"{name}-mask.jpg") == 1
        raw, clean = root_traits(mask), root_traits(mask, clean=DEFAULTS)
        for key, values in change.items():
            values.append(abs(clean[key] - raw[key]) / max(raw[key], 1))
    assert np.median(change["length_px"]) <= 0.01
    assert np.median(change["tips"]) <= 0.12 and np.median(change["branch_points"]) <= 0.12
