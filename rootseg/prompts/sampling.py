"""Point prompts for RootSAM: training clicks from masks, correction clicks, prompt-free point sets.

Coordinates are float32 (x, y) in pixels of the array they were drawn from (column, row), as SAM takes them;
labels are 1 (positive), 0 (negative) and -1 (padding, ignored by SAM's prompt encoder).

RootSAM (Parth et al.) samples positive points per root object with probability proportional to the
object's Euclidean distance transform: points fall on root centre lines far more often than on edges,
without collapsing onto one centre pixel (as `argmax`) or vanishing on one-pixel roots (as erosion).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    return rng if rng is not None else np.random.default_rng()


def _check_mask(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"{name} must be 2-D (H, W), got shape {mask.shape}")
    return mask.astype(bool, copy=False)


def label_objects(mask: np.ndarray, min_object_area: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """8-connected components of `mask` with at least `min_object_area` pixels.

    Returns (labels int32 [H, W] with 0 for background and dropped specks, ids of the kept objects, and
    their areas), both sorted by decreasing area (ties by id).
    """
    labels, n = ndimage.label(_check_mask(mask), structure=_EIGHT_CONNECTED)
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    ids = np.arange(1, n + 1)
    keep = areas >= max(min_object_area, 1)
    ids, areas = ids[keep], areas[keep]
    order = np.lexsort((ids, -areas))
    if not keep.all():
        labels = np.where(np.isin(labels, ids), labels, 0).astype(np.int32)
    return labels.astype(np.int32, copy=False), ids[order], areas[order]


def sample_points(
    mask: np.ndarray,
    points_per_object: int = 1,
    max_objects: int = 16,
    negative_points: int = 0,
    *,
    rng: np.random.Generator | None = None,
    min_object_area: int = 10,
    select: Literal["largest", "random"] = "largest",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prompts for each root object of a binary mask.

    Each 8-connected component of `mask` with >= `min_object_area` pixels is an object. Per object,
    `points_per_object` positive points are drawn i.i.d. (with replacement) with probability proportional to
    the Euclidean distance transform of the mask, and `negative_points` uniformly from the background
    (pixels outside every root; padding -1 where the tile has none).

    Objects beyond `max_objects`: `select="largest"` (default) keeps the largest objects, which carry most
    root pixels and are stable from epoch to epoch; `"random"` keeps a uniformly random subset, to visit
    small objects over many epochs. Objects are returned largest first in both cases.

    Returns coords float32 [N_obj, K, 2] (x, y), labels int32 [N_obj, K] and object_masks bool
    [N_obj, H, W], with K = points_per_object + negative_points and N_obj = 0 for a mask without root.
    """
    if points_per_object < 1:
        raise ValueError("points_per_object must be >= 1")
    if max_objects < 0 or negative_points < 0:
        raise ValueError("max_objects and negative_points must be >= 0")
    rng = _rng(rng)
    mask = _check_mask(mask)
    height, width = mask.shape
    labels, ids, areas = label_objects(mask, min_object_area)
    if len(ids) > max_objects:
        if select == "largest":
            ids = ids[:max_objects]
        elif select == "random":
            chosen = np.sort(rng.choice(len(ids), size=max_objects, replace=False))
            ids = ids[chosen]  # ids are sorted by area, so sorted indices keep largest first
        else:
            raise ValueError(f"select must be 'largest' or 'random', not {select!r}")
    k = points_per_object + negative_points
    coords = np.zeros((len(ids), k, 2), dtype=np.float32)
    point_labels = np.full((len(ids), k), -1, dtype=np.int32)
    object_masks = np.zeros((len(ids), height, width), dtype=bool)
    if len(ids) == 0:
        return coords, point_labels, object_masks

    # 8-connected components never touch, so the EDT of the whole mask equals each object's own EDT
    # inside that object; one transform serves every object.
    distance = ndimage.distance_transform_edt(mask)
    background = np.flatnonzero(~mask)
    for i, object_id in enumerate(ids):
        object_mask = labels == object_id
        object_masks[i] = object_mask
        flat = np.flatnonzero(object_mask)
        weights = distance.ravel()[flat]
        picks = flat[rng.choice(len(flat), size=points_per_object, p=weights / weights.sum())]
        coords[i, :points_per_object, 0] = picks % width
        coords[i, :points_per_object, 1] = picks // width
        point_labels[i, :points_per_object] = 1
        if negative_points and len(background):
            negatives = background[rng.integers(0, len(background), size=negative_points)]
            coords[i, points_per_object:, 0] = negatives % width
            coords[i, points_per_object:, 1] = negatives // width
            point_labels[i, points_per_object:] = 0
    return coords, point_labels, object_masks


def soil_points(mask: np.ndarray, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Up to `n` distinct clicks drawn uniformly from the labelled soil (`mask == 0`) of a {0, 1, 255} mask.

    SAM's negative objects: a click on soil whose target is an empty mask, so a prompt-free grid click that
    misses every root learns to return nothing (and a low predicted IoU). Returns float32 [m, 2] (x, y),
    m = min(n, soil pixels).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    soil = np.flatnonzero(mask.ravel() == 0)
    m = min(max(int(n), 0), len(soil))
    if m == 0:
        return np.zeros((0, 2), np.float32)
    picks = soil[_rng(rng).choice(len(soil), size=m, replace=False)]
    return np.stack([picks % mask.shape[1], picks // mask.shape[1]], axis=1).astype(np.float32)


def correction_points(
    pred: np.ndarray,
    target: np.ndarray,
    rng: np.random.Generator | None = None,
    method: Literal["center", "uniform"] = "center",
) -> tuple[np.ndarray, np.ndarray]:
    """One corrective click for a prediction, as sam2's training (`get_next_point`) and micro-sam do.

    False negatives (root missed) call for a positive click, false positives for a negative one.
    `"center"` (RITM / `sample_one_point_from_error_center`): the error pixel farthest from the boundary of
    its error region (a 1 px zero border counts as boundary); the sign comes from whichever region, FN or
    FP, reaches deeper; ties are broken at random. `"uniform"` (`sample_random_points_from_errors`): a
    uniformly random error pixel, so FN vs FP in proportion to their areas. A perfect prediction gets a
    negative click on background (or a positive one on root if the tile is all root).

    Returns coords float32 [1, 2] (x, y) and labels int32 [1].
    """
    rng = _rng(rng)
    pred, target = _check_mask(pred, "pred"), _check_mask(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred {pred.shape} and target {target.shape} differ in shape")
    width = target.shape[1]
    false_neg = target & ~pred
    false_pos = pred & ~target

    def point(index: int, label: int) -> tuple[np.ndarray, np.ndarray]:
        xy = np.array([[index % width, index // width]], dtype=np.float32)
        return xy, np.array([label], dtype=np.int32)

    if not false_neg.any() and not false_pos.any():
        region, label = (~target, 0) if (~target).any() else (target, 1)
        flat = np.flatnonzero(region)
        return point(int(flat[rng.integers(len(flat))]), label)
    if method == "uniform":
        errors = np.flatnonzero(false_neg | false_pos)
        index = int(errors[rng.integers(len(errors))])
        return point(index, int(false_neg.ravel()[index]))
    if method != "center":
        raise ValueError(f"method must be 'center' or 'uniform', not {method!r}")
    depth_fn = ndimage.distance_transform_edt(np.pad(false_neg, 1))[1:-1, 1:-1]
    depth_fp = ndimage.distance_transform_edt(np.pad(false_pos, 1))[1:-1, 1:-1]
    best_fn, best_fp = depth_fn.max(), depth_fp.max()
    positive = best_fn > best_fp or (best_fn == best_fp and rng.random() < 0.5)
    depth, best = (depth_fn, best_fn) if positive else (depth_fp, best_fp)
    candidates = np.flatnonzero(depth.ravel() == best)
    return point(int(candidates[rng.integers(len(candidates))]), int(positive))


def grid_points(height: int, width: int, n_per_side: int) -> np.ndarray:
    """An n x n grid of points at cell centres (SAM's `build_point_grid`), float32 [n*n, 2] (x, y).

    For prompt-free use each point is its own object: `coords[:, None, :]` with labels all 1.
    """
    if n_per_side < 1:
        raise ValueError("n_per_side must be >= 1")
    offsets = (np.arange(n_per_side) + 0.5) / n_per_side
    xs, ys = np.meshgrid(offsets * width, offsets * height)
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)


def skeleton_points(
    prob_map: np.ndarray,
    threshold: float = 0.5,
    n: int = 32,
    min_object_area: int = 10,
) -> np.ndarray:
    """Up to `n` points spread along the skeleton of `prob_map > threshold` (e.g. a U-Net's root map).

    For prompt-free RootSAM: every root component (largest first) first gets its most confident skeleton
    pixel; the remaining points go by farthest-point sampling (each next point is the skeleton pixel farthest
    from all chosen so far), so long roots get points along their length. Components under
    `min_object_area` pixels are ignored. Deterministic. Each point prompts its own object.

    Returns float32 [m, 2] (x, y), m <= n (m = 0 when nothing exceeds the threshold).
    """
    from skimage.morphology import skeletonize

    prob_map = np.asarray(prob_map, dtype=np.float32)
    if prob_map.ndim != 2:
        raise ValueError(f"prob_map must be 2-D (H, W), got shape {prob_map.shape}")
    labels, ids, _ = label_objects(prob_map > threshold, min_object_area)
    skeleton = skeletonize(labels > 0)
    rows, cols = np.nonzero(skeleton)
    if len(rows) == 0 or n < 1:
        return np.zeros((0, 2), dtype=np.float32)
    points = np.stack([cols, rows], axis=1).astype(np.float32)
    if len(points) <= n:
        return points
    confidence = prob_map[rows, cols]
    owner = labels[rows, cols]
    chosen: list[int] = []
    for object_id in ids[:n]:  # largest components first
        members = np.flatnonzero(owner == object_id)
        if len(members):
            chosen.append(int(members[np.argmax(confidence[members])]))
    nearest = np.full(len(points), np.inf)
    for index in chosen:
        nearest = np.minimum(nearest, np.linalg.norm(points - points[index], axis=1))
    while len(chosen) < n:
        index = int(np.argmax(nearest))
        chosen.append(index)
        nearest = np.minimum(nearest, np.linalg.norm(points - points[index], axis=1))
    return points[chosen]
