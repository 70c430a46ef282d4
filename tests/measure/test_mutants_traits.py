"""Connected roots, `valid=` regions and diameter class edges of `root_traits` against drawn truth (issue 27:
mutants that no test killed)."""

from __future__ import annotations

import numpy as np
import pytest
from test_traits import capsule, line

from rootseg.measure.length import skeleton_length
from rootseg.measure.skeleton import fill_pinholes
from rootseg.measure.traits import TraitSettings, check_edges, diameter_class_columns, pixel_traits, root_traits


def test_a_one_pixel_diagonal_root_is_one_connected_root() -> None:
    """8-connected, as RhizoVision Explorer counts: an 80 px diagonal one pixel wide is one root (4-connected: 80);
    a second diagonal ending 10 px from it is a second root, one touching it at a corner is not."""
    index = np.arange(10, 90)
    mask = np.zeros((100, 100), bool)
    mask[index, index] = True
    assert root_traits(mask)["connected_roots"] == 1
    separate, touching = mask.copy(), mask.copy()
    separate[index[:30], 99 - index[:30]] = True  # rows 10-39, ending at column 60, 21 columns from the first
    touching[index[:40], 99 - index[:40]] = True  # rows 10-49, ending at (49, 50) beside (49, 49)
    assert root_traits(separate)["connected_roots"] == 2
    assert root_traits(touching)["connected_roots"] == 1


def test_valid_limits_length_and_area_to_the_labelled_part() -> None:
    """A 300 px root 5 px wide of which only the left part (x < 200, 150 px of centre line from x = 50) is
    labelled: area is the drawn pixels there, length about 150 px (not 300), image area the labelled pixels."""
    mask = line(0, 300, 5, (200, 200.4))
    valid = np.zeros(mask.shape, bool)
    valid[:, :200] = True
    traits = root_traits(mask, valid=valid)
    assert traits["projected_area_px2"] == int(mask[:, :200].sum())
    assert traits["length_px"] == pytest.approx(150, abs=5)
    assert traits["image_area_px"] == int(valid.sum())
    labels = mask.astype(np.uint8)
    labels[:, 200:] = 255
    assert root_traits(labels)["projected_area_px2"] == int(mask[:, :200].sum())
    assert root_traits(labels)["length_px"] == pytest.approx(150, abs=5)


def test_valid_removes_a_whole_root_outside_it() -> None:
    mask = line(0, 150, 5, (100, 100)) | line(90, 150, 7, (300, 200))
    valid = np.zeros(mask.shape, bool)
    valid[:, :200] = True  # the vertical root at x = 300 lies wholly outside
    traits = root_traits(mask, valid=valid)
    assert (traits["connected_roots"], traits["tips"]) == (1, 2)
    assert traits["projected_area_px2"] == int(line(0, 150, 5, (100, 100)).sum())
    assert traits["diameter_median_px"] == pytest.approx(5, abs=0.6)


@pytest.mark.parametrize("edges", [(0.5, 0.5, 1.0), (1.0, 1.0), (0.5, 2.0, 2.0), (1.0, 0.5), (0.0, 1.0), (-1.0,), ()])
def test_duplicate_unsorted_or_non_positive_class_edges_are_refused(edges: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        check_edges(edges)
    with pytest.raises(ValueError, match="strictly increasing"):
        root_traits(np.zeros((4, 4), bool), diameter_edges_mm=edges)
    with pytest.raises(ValueError, match="strictly increasing"):
        TraitSettings(diameter_edges_mm=edges)


def test_class_edges_accepted_as_numbers_and_named_in_columns() -> None:
    assert check_edges([1, "2.5", np.float32(4)]) == [1.0, 2.5, 4.0]
    assert diameter_class_columns((0.3,)) == ["length_mm_d0-0.3", "length_mm_d0.3-inf"]
    for bad in ("abc", None, [float("inf")], [float("nan")], ["x"]):
        with pytest.raises(ValueError, match="strictly increasing"):
            check_edges(bad)


def test_a_root_and_a_separate_crossing_read_as_two_roots() -> None:
    mask = capsule((20, 20), (180, 30), 5, (200, 200)) | capsule((100, 60), (110, 190), 5, (200, 200))
    assert root_traits(mask)["connected_roots"] == 2


@pytest.mark.parametrize("depth", [0.0, -1.0, float("nan"), float("inf")])
def test_a_depth_of_field_that_is_not_a_positive_number_is_refused(depth: float) -> None:
    with pytest.raises(ValueError, match="depth_of_field_mm must be a positive number"):
        TraitSettings(depth_of_field_mm=depth)
    with pytest.raises(ValueError, match="depth_of_field_mm"):
        root_traits(np.zeros((4, 4), bool), depth_of_field_mm=depth)


def test_valid_and_unlabelled_pixels_both_limit_the_image() -> None:
    """A label mask with 255 in its top rows and `valid` on its left half: the image is what both label."""
    labels = line(0, 300, 5, (200, 200.4)).astype(np.uint8)
    labels[:100] = 255
    valid = np.zeros(labels.shape, bool)
    valid[:, :200] = True
    traits = root_traits(labels, valid=valid)
    assert traits["image_area_px"] == int(((labels != 255) & valid).sum()) == 300 * 200


def test_root_length_px_measures_the_mask_as_it_is_where_a_pinhole_was_filled() -> None:
    """`pixel_traits(..., length_method=)` reports `root_length_px` of the mask as given (a pinhole thins into a
    loop: longer), `length_px` of the mask with its pinholes filled."""
    mask = line(0, 300, 9)
    mask[200, 150] = False
    pixels = pixel_traits(mask, length_method="corrected")
    assert pixels["root_length_px"] == pytest.approx(skeleton_length(mask), rel=1e-12)
    assert pixels["length_px"] == pytest.approx(skeleton_length(fill_pinholes(mask)), rel=1e-12)
    assert pixels["root_length_px"] > pixels["length_px"] + 5
