"""Gap bridging: skeleton ends of two different roots that face each other across a small gap are joined.

A segmentation that misses a junction, or a thin stretch of root, breaks one root into pieces whose skeleton
ends point at each other: each piece adds tips and a connected root and the junction's branch point is lost.
An end's direction is from the mean of its own skeleton pixels within `_REACH` px to the end. Two ends of
different connected roots at most `gap_px` plus the wider root's width apart (a skeleton stops about a
radius short of a cut end) are joined when each points at the other within `_CONE_DEG`
(60 deg lets the three ends round a missed junction join up); of two roots only their closest such pair
(a flat cut end thins into a fork of two ends). The join is drawn into the mask as a line as
wide as the narrower of the two roots near their ends, so the skeleton, length and diameters are measured
from one mask.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from rootseg.measure.diameter import diameter_map
from rootseg.measure.skeleton import SkeletonGraph

_REACH = 10.0  # px: the end's own skeleton pixels within this distance give its direction and width
_CONE_DEG = 60.0
_EIGHT = np.ones((3, 3), dtype=bool)


def _end_geometry(root: np.ndarray, graph: SkeletonGraph, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per end: the unit direction it points in, and the root's diameter just behind it (px)."""
    from scipy.spatial import cKDTree

    points = np.column_stack([graph.ys, graph.xs]).astype(np.float64)
    near = cKDTree(points).query_ball_point(points[ends], _REACH)
    diameters = diameter_map(root)[graph.ys, graph.xs]
    directions = np.zeros((ends.size, 2))
    widths = np.zeros(ends.size)
    for i, (end, around) in enumerate(zip(ends, near)):
        vector = points[end] - points[around].mean(axis=0)
        norm = float(np.hypot(*vector))
        directions[i] = vector / norm if norm > 0 else 0.0
        widths[i] = float(np.median(diameters[around]))
    return directions, widths


def _facing_pairs(
    points: np.ndarray, directions: np.ndarray, widths: np.ndarray, roots: np.ndarray, gap_px: float
) -> np.ndarray:
    """Pairs (i, j) of ends on different roots at most `gap_px` plus the wider root's width apart that point at
    each other."""
    from scipy.spatial import cKDTree

    pairs = cKDTree(points).query_pairs(gap_px + float(widths.max()), output_type="ndarray")
    if not len(pairs):
        return pairs
    i, j = pairs[:, 0], pairs[:, 1]
    between = points[j] - points[i]
    distance = np.hypot(between[:, 0], between[:, 1])
    between = between / np.maximum(distance, 1e-9)[:, None]
    cone = np.cos(np.deg2rad(_CONE_DEG))
    facing = ((directions[i] * between).sum(1) >= cone) & ((directions[j] * -between).sum(1) >= cone)
    close = distance <= gap_px + np.maximum(widths[i], widths[j])
    keep = np.flatnonzero(facing & close & (roots[i] != roots[j]) & (distance > 0))
    keep = keep[np.argsort(distance[keep], kind="stable")]
    two = np.sort(np.column_stack([roots[i[keep]], roots[j[keep]]]), axis=1)
    _, first = np.unique(two, axis=0, return_index=True)  # the closest pair of ends of each two roots
    return pairs[keep[np.sort(first)]]


def bridge_gaps(root: np.ndarray, skeleton: np.ndarray, gap_px: float) -> np.ndarray:
    """The mask with facing ends of different roots at most `gap_px` apart joined (the input array itself when
    no gap was bridged); see the module notes."""
    import cv2

    if gap_px <= 0:
        return root
    graph = SkeletonGraph.from_skeleton(skeleton)
    ends = np.flatnonzero(graph.branches() == 1)
    if ends.size < 2:
        return root
    labels, _ = ndi.label(root, structure=_EIGHT)
    points = np.column_stack([graph.ys[ends], graph.xs[ends]]).astype(np.float64)
    directions, widths = _end_geometry(root, graph, ends)
    pairs = _facing_pairs(points, directions, widths, labels[graph.ys[ends], graph.xs[ends]], gap_px)
    if not len(pairs):
        return root
    canvas = root.astype(np.uint8)
    for i, j in pairs:
        thickness = max(1, int(round(min(widths[i], widths[j]))) - 1)
        start, stop = (int(graph.xs[ends[i]]), int(graph.ys[ends[i]])), (int(graph.xs[ends[j]]), int(graph.ys[ends[j]]))
        cv2.line(canvas, start, stop, 1, thickness=thickness, lineType=cv2.LINE_8)
    return canvas.astype(bool)
