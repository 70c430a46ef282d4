"""Point prompts: distance-transform sampling (RootSAM), correction clicks, grid and skeleton points."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage, stats

from rootseg.prompts.sampling import correction_points, grid_points, label_objects, sample_points, skeleton_points


def three_roots() -> np.ndarray:
    mask = np.zeros((40, 60), np.uint8)
    mask[5:35, 5:10] = 1  # 150 px
    mask[10:13, 20:55] = 1  # 105 px
    mask[30:33, 30:34] = 1  # 12 px
    mask[38, 58] = 1  # a speck below min_object_area
    return mask


def in_object(coords: np.ndarray, labels: np.ndarray, masks: np.ndarray, label: int = 1) -> bool:
    for obj in range(len(coords)):
        for (x, y), lab in zip(coords[obj], labels[obj]):
            if lab == label and not masks[obj, int(y), int(x)]:
                return False
    return True


def test_every_positive_point_lies_in_its_object():
    mask = three_roots()
    coords, labels, masks = sample_points(mask, 5, 10, rng=np.random.default_rng(0))
    assert coords.shape == (3, 5, 2) and coords.dtype == np.float32
    assert labels.shape == (3, 5) and (labels == 1).all()
    assert masks.shape == (3, 40, 60) and masks.dtype == bool
    assert [m.sum() for m in masks] == [150, 105, 12]  # largest first, speck dropped
    assert in_object(coords, labels, masks)
    assert not (masks[0] & masks[1]).any()
    assert (masks.sum(0) <= mask).all()


def test_negative_points_on_background_and_object_caps():
    mask = three_roots()
    rng = np.random.default_rng(1)
    coords, labels, masks = sample_points(mask, 2, 2, negative_points=3, rng=rng)
    assert coords.shape == (2, 5, 2) and [m.sum() for m in masks] == [150, 105]
    assert (labels[:, :2] == 1).all() and (labels[:, 2:] == 0).all()
    for x, y in coords[:, 2:].reshape(-1, 2):
        assert mask[int(y), int(x)] == 0
    seen = set()
    for seed in range(30):
        _, _, masks = sample_points(mask, 1, 1, rng=np.random.default_rng(seed), select="random")
        seen.add(int(masks[0].sum()))
    assert seen == {150, 105, 12}
    # an all-root tile has no background: negatives become padding
    _, labels, _ = sample_points(np.ones((8, 8)), 1, 1, negative_points=2, rng=rng)
    assert labels.tolist() == [[1, -1, -1]]


def test_empty_mask_gives_no_objects():
    coords, labels, masks = sample_points(np.zeros((16, 16)), 2, 4, negative_points=1)
    assert coords.shape == (0, 3, 2) and labels.shape == (0, 3) and masks.shape == (0, 16, 16)
    with pytest.raises(ValueError):
        sample_points(np.zeros((2, 16, 16)), 1, 1)


def test_diagonal_pixels_are_one_object():
    mask = np.eye(12, dtype=np.uint8)
    labels, ids, areas = label_objects(mask)
    assert len(ids) == 1 and areas[0] == 12 and labels.max() == 1


def test_point_frequencies_follow_the_distance_transform():
    """20 000 draws on a filled rectangle: counts fit EDT-proportional probabilities, not uniform ones."""
    mask = np.zeros((15, 25), np.uint8)
    mask[2:13, 2:23] = 1  # 11 x 21: EDT from 1 at the border to 6 on the centre line
    n = 20_000
    coords, _, _ = sample_points(mask, n, 1, rng=np.random.default_rng(42), min_object_area=1)
    xs, ys = coords[0, :, 0].astype(int), coords[0, :, 1].astype(int)
    counts = np.zeros(mask.shape)
    np.add.at(counts, (ys, xs), 1)
    inside = mask.astype(bool)
    assert counts[~inside].sum() == 0
    distance = ndimage.distance_transform_edt(mask)[inside]
    observed = counts[inside]
    expected = distance / distance.sum() * n
    assert stats.chisquare(observed, expected).pvalue > 1e-3
    assert stats.pearsonr(observed, expected).statistic > 0.95
    uniform = np.full_like(expected, n / inside.sum())
    assert stats.chisquare(observed, uniform).pvalue < 1e-12
    # centre-line pixels are drawn about 6x as often as border pixels
    ratio = observed[distance == distance.max()].mean() / observed[distance == 1].mean()
    assert 4.5 < ratio < 8


def test_correction_click_center_method():
    target = np.zeros((30, 30), bool)
    target[5:25, 5:25] = True
    pred = target.copy()
    pred[5:25, 15:25] = False  # a 20 x 10 false-negative block
    pred[0:3, 0:3] = True  # a small false-positive corner
    coords, labels = correction_points(pred, target, np.random.default_rng(0))
    assert coords.shape == (1, 2) and labels.tolist() == [1]
    x, y = coords[0].astype(int)
    assert target[y, x] and not pred[y, x]
    assert 19 <= x <= 20 and 9 <= y <= 20  # on the centre line of the missed block (ties broken at random)
    # the false positive region dominates: a negative click inside it
    coords, labels = correction_points(target | np.pad(np.ones((10, 29), bool), ((20, 0), (1, 0))), target)
    x, y = coords[0].astype(int)
    assert labels.tolist() == [0] and not target[y, x]


def test_correction_click_uniform_and_perfect_prediction():
    rng = np.random.default_rng(3)
    target = np.zeros((20, 20), bool)
    target[5:15, 5:15] = True
    pred = np.zeros_like(target)
    pred[0:2, :] = True
    for _ in range(20):
        coords, labels = correction_points(pred, target, rng, method="uniform")
        x, y = coords[0].astype(int)
        assert (labels[0] == 1) == (target[y, x] and not pred[y, x])
        assert labels[0] == 1 or (pred[y, x] and not target[y, x])
    coords, labels = correction_points(target, target, rng)
    x, y = coords[0].astype(int)
    assert labels.tolist() == [0] and not target[y, x]
    with pytest.raises(ValueError, match="method"):
        correction_points(pred, target, rng, method="edge")


def test_grid_points():
    points = grid_points(100, 200, 4)
    assert points.shape == (16, 2) and points.dtype == np.float32
    assert points[:, 0].min() == pytest.approx(25) and points[:, 0].max() == pytest.approx(175)
    assert points[:, 1].min() == pytest.approx(12.5) and points[:, 1].max() == pytest.approx(87.5)


def test_skeleton_points_cover_each_root():
    prob = np.zeros((50, 80), np.float32)
    prob[10:14, 5:75] = 0.9  # a long horizontal root
    prob[20:48, 40:43] = 0.7  # a vertical root
    prob[2, 2] = 0.99  # a speck (ignored)
    points = skeleton_points(prob, 0.5, n=6)
    assert points.shape == (6, 2)
    xs, ys = points[:, 0].astype(int), points[:, 1].astype(int)
    assert (prob[ys, xs] > 0.5).all()
    assert ((ys >= 10) & (ys < 14)).sum() >= 1 and ((xs >= 40) & (xs < 43) & (ys >= 20)).sum() >= 1
    assert len({(x, y) for x, y in zip(xs, ys)}) == 6
    assert np.ptp(xs[(ys >= 10) & (ys < 14)]) > 30  # spread along the long root
    assert skeleton_points(prob, 0.95).shape == (0, 2)
    assert len(skeleton_points(prob, 0.5, n=1000)) < 1000  # all skeleton pixels when fewer than n
