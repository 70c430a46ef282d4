"""Root length's tip correction and the line-intersect counts against independent computations: scipy's distance
transform at the skeleton's ends, and a plain loop over the grid lines (issue 27: mutants that no test killed)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import ndimage as ndi

from rootseg.measure.intersect import line_intersect_counts, root_intensity, tennant_length
from rootseg.measure.length import skeleton_length
from rootseg.measure.skeleton import skeletonize_mask


def _tip_radii_by_transform(mask: np.ndarray) -> float:
    """Centre-to-centre distance to the background (the frame counts as background) summed over the skeleton
    pixels that have exactly one 8-neighbour, by convolution and scipy's Euclidean distance transform."""
    skeleton = skeletonize_mask(mask)
    neighbours = ndi.convolve(skeleton.astype(int), np.ones((3, 3), int), mode="constant") - 1
    ends = skeleton & (neighbours == 1)
    distance = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    return float(distance[ends].sum())


@pytest.mark.parametrize("width", [5, 6, 7])
def test_tips_add_the_root_radius_at_each_end_of_a_bar(width: int) -> None:
    """A bar `width` px wide has two ends; each adds its distance to the nearest background pixel centre, at
    most (width + 1) / 2 (from the bar's middle row), less where the thinning ends near the bar's end."""
    mask = np.zeros((40, 160), bool)
    mask[10 : 10 + width, 20:140] = True
    added = skeleton_length(mask, tips=True) - skeleton_length(mask)
    assert added == pytest.approx(_tip_radii_by_transform(mask), abs=1e-9)
    assert 1 <= added / 2 <= (width + 1) / 2
    assert skeleton_length(mask, tips=True, mm_per_pixel=0.5) == pytest.approx(0.5 * skeleton_length(mask, tips=True))


def test_tips_add_the_radius_at_every_end_of_a_branched_root() -> None:
    mask = np.zeros((120, 120), bool)
    mask[55:62, 10:110] = True
    mask[58:112, 40:45] = True  # a lateral to the bottom
    mask[8:58, 80:84] = True  # and one to the top
    added = skeleton_length(mask, tips=True) - skeleton_length(mask)
    assert added == pytest.approx(_tip_radii_by_transform(mask), abs=1e-9)
    assert added > 4 * 2


def _grid(size: int, spacing: float) -> list[int]:
    """Pixel of each grid line at (k + 1/2) spacing, in exact decimal arithmetic (5.6 px is 5.6, not its float)."""
    step, positions, k = Fraction(str(spacing)), [], 0
    while step * (k + Fraction(1, 2)) < size:
        positions.append(math.floor(step * (k + Fraction(1, 2))))
        k += 1
    return positions


def _count_by_loop(mask: np.ndarray, valid: np.ndarray, spacing: float) -> tuple[int, int]:
    """(intersections, grid length in px): walk every grid line pixel by pixel; a crossing starts where root
    begins (the first pixel of a line included)."""
    crossings = length = 0
    lines = [[(r, x) for x in range(mask.shape[1])] for r in _grid(mask.shape[0], spacing)]
    lines += [[(y, c) for y in range(mask.shape[0])] for c in _grid(mask.shape[1], spacing)]
    for pixels in lines:
        before = False
        for pixel in pixels:
            here = bool(mask[pixel] and valid[pixel])
            crossings += here and not before
            length += bool(valid[pixel])
            before = here
    return crossings, length


@pytest.mark.parametrize("seed", range(3))
def test_line_intersects_equal_a_loop_over_the_grid_at_any_spacing(seed: int) -> None:
    """Random masks (roots touching every edge), random valid regions, spacings with fractions: every count
    equals the loop's, including grid lines in the image's last pixel row or column and lines on a pixel
    boundary."""
    rng = np.random.default_rng(seed)
    for _ in range(20):
        height, width = rng.integers(12, 40, size=2)
        mask = rng.random((height, width)) < 0.35
        valid = rng.random((height, width)) < 0.8 if rng.random() < 0.5 else np.ones((height, width), bool)
        spacing = int(rng.integers(13, 90)) / 10  # 1.3-8.9 px in tenths: some lines fall on pixel boundaries
        result = line_intersect_counts(mask, spacing, mm_per_pixel=0.2, valid=valid)
        crossings, length = _count_by_loop(mask, valid, spacing)
        assert (result["intersections"], result["grid_length_px"]) == (crossings, length), (height, width, spacing)
        assert result["intensity_per_m"] == pytest.approx(crossings / (length * 0.2 / 1000))


def test_grid_lines_in_the_last_row_and_column_and_roots_on_the_first() -> None:
    """At 5.6 px on 20 px the last grid line lies at 19.6, in pixel 19 (floor): a root pixel there counts. A root
    touching the top or left edge along a grid line is one crossing."""
    mask = np.zeros((20, 20), bool)
    mask[19, 5] = True
    assert line_intersect_counts(mask, 5.6)["intersections"] == 1  # the row at 19.6
    mask = np.zeros((20, 20), bool)
    mask[2, 0:2] = True  # along the first grid row (2.8 -> 2), from the left edge to before the column at 2
    mask[0:2, 14] = True  # down the grid column at 14, from the top edge to before the row at 2
    assert _count_by_loop(mask, np.ones_like(mask), 5.6) == (2, 4 * 20 + 4 * 20)
    assert line_intersect_counts(mask, 5.6)["intersections"] == 2
    mask = np.zeros((120, 120), bool)
    mask[115, 2] = True  # 9.2 x 12.5 = 115 exactly; 9.2 * 12.5 = 114.99999999999999 in floating point
    assert _count_by_loop(mask, np.ones_like(mask), 9.2) == (1, 2 * 13 * 120)
    assert line_intersect_counts(mask, 9.2)["intersections"] == 1


@pytest.mark.parametrize("spacing", [0, -4.0, math.nan])
def test_a_grid_spacing_that_is_not_positive_is_refused(spacing: float) -> None:
    with pytest.raises(ValueError, match="spacing_px must be positive"):
        line_intersect_counts(np.ones((10, 10), bool), spacing)


def test_a_grid_wider_than_the_image_and_bad_counts_are_refused() -> None:
    """A 40 mm grid on a 10 x 10 px image at 0.1 mm/px has no line in it: no intensity, a clear error."""
    with pytest.raises(ValueError, match="leaves no grid line"):
        root_intensity(np.ones((10, 10), bool), mm_per_pixel=0.1, spacing_mm=40.0)
    assert root_intensity(np.ones((10, 10), bool), mm_per_pixel=0.1, spacing_mm=0.5) > 0
    for intersections, spacing, message in ((3, 0.0, "spacing"), (3, -1.0, "spacing"), (-1, 2.0, "intersections")):
        with pytest.raises(ValueError, match=message):
            tennant_length(intersections, spacing)
    assert tennant_length(7, 1.0) == pytest.approx(5.5)
