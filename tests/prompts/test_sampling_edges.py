"""Point prompts at the edges of their rules, through the public functions (issue 27's hand mutants): the area
limit, soil clicks, correction clicks at the image border and on ties, skeleton points per root."""

from __future__ import annotations

import numpy as np
import pytest

from rootseg.prompts.sampling import correction_points, label_objects, sample_points, skeleton_points, soil_points


def test_an_object_of_exactly_min_object_area_is_kept_and_one_pixel_less_is_not() -> None:
    mask = np.zeros((20, 20), bool)
    mask[2:4, 2:7] = True  # 10 px
    mask[10:13, 10:13] = True  # 9 px
    labels, ids, areas = label_objects(mask, min_object_area=10)
    assert areas.tolist() == [10] and set(np.unique(labels)) == {0, int(ids[0])}
    assert label_objects(mask, min_object_area=9)[2].tolist() == [10, 9]
    _, _, masks = sample_points(mask, 1, 4, rng=np.random.default_rng(0), min_object_area=10)
    assert len(masks) == 1 and masks[0].sum() == 10


def test_objects_of_one_area_come_in_label_order() -> None:
    mask = np.zeros((10, 30), bool)
    for left in (2, 12, 22):
        mask[3:5, left : left + 3] = True  # three 6 px objects, labelled left to right
    mask[8, 0:8] = True  # an 8 px one, labelled last
    labels, ids, areas = label_objects(mask)
    assert areas.tolist() == [8, 6, 6, 6]
    assert [int(labels[3, left]) for left in (2, 12, 22)] == ids[1:].tolist()


def test_soil_points_are_distinct_clicks_on_labelled_soil_only() -> None:
    mask = np.full((12, 16), 255, np.uint8)
    mask[2:10, 3:13] = 0  # 80 px of labelled soil
    mask[5, 4:12] = 1  # a root across it: 72 px of soil left
    rng = np.random.default_rng(0)
    points = soil_points(mask, 50, rng)
    assert points.shape == (50, 2) and points.dtype == np.float32
    xs, ys = points[:, 0].astype(int), points[:, 1].astype(int)
    assert (mask[ys, xs] == 0).all() and len(set(zip(xs.tolist(), ys.tolist()))) == 50
    every = soil_points(mask, 1000, rng)  # more than there is: each soil pixel once
    assert every.shape == (72, 2) and len({tuple(p) for p in every.tolist()}) == 72
    assert soil_points(mask, 0, rng).shape == soil_points(mask, -3, rng).shape == (0, 2)
    assert soil_points(np.ones((4, 4), np.uint8), 5, rng).shape == (0, 2)
    with pytest.raises(ValueError, match="2-D"):
        soil_points(np.zeros((2, 4, 4), np.uint8), 1, rng)


def test_a_missed_block_at_the_image_edge_is_clicked_at_its_centre() -> None:
    """The frame counts as the error region's boundary: a 10 px wide miss along the left edge is clicked on its
    centre columns (4 or 5), not at the edge."""
    target = np.zeros((20, 20), bool)
    target[:, :10] = True
    for seed in range(5):
        coords, labels = correction_points(np.zeros_like(target), target, np.random.default_rng(seed))
        x, y = coords[0].astype(int)
        assert labels.tolist() == [1] and 4 <= x <= 5 and 4 <= y <= 15, (x, y)


def test_equally_deep_misses_and_false_alarms_are_clicked_at_random() -> None:
    target = np.zeros((20, 30), bool)
    target[5:10, 2:7] = True  # missed: 5 x 5
    pred = np.zeros_like(target)
    pred[5:10, 20:25] = True  # false alarm: 5 x 5, as deep
    labels = {int(correction_points(pred, target, np.random.default_rng(seed))[1][0]) for seed in range(30)}
    assert labels == {0, 1}


def test_every_root_gets_a_skeleton_point_before_any_root_gets_a_second() -> None:
    """Two roots, n = 2: one point each, although the long root's far end lies farther from its first point than
    the short root does."""
    prob = np.zeros((40, 90), np.float32)
    prob[5:9, 5:85] = np.linspace(0.99, 0.6, 80)[None, :]  # most confident at its left end
    prob[15:30, 10:13] = 0.8  # a short root near that end
    points = skeleton_points(prob, 0.5, n=2)
    ys = points[:, 1].astype(int)
    assert sorted((ys >= 15).tolist()) == [False, True], points


def test_a_probability_equal_to_the_threshold_is_not_root() -> None:
    prob = np.zeros((20, 40), np.float32)
    prob[8:12, 5:35] = 0.5
    assert skeleton_points(prob, 0.5, n=4).shape == (0, 2)
    assert skeleton_points(prob, 0.49, n=4).shape == (4, 2)
