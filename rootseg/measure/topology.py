"""Tips and branch points of a skeleton (`rootseg.measure.skeleton.SkeletonGraph`), counted as skan and
RhizoVision Explorer count them: ends of one branch, junctions of three or more."""

from __future__ import annotations

import numpy as np

from rootseg.measure.skeleton import SkeletonGraph


def branch_points(graph: SkeletonGraph, junctions: np.ndarray, reach: np.ndarray) -> int:
    """Junction clusters (`SkeletonGraph.ends_and_junctions`), merging those closer than the root's radius
    there (`reach`, px, per skeleton pixel): thinning splits one fork of a thick root into two or three
    junctions a few pixels apart (and a crossing into two, scikit-image issue 6828)."""
    count = int(junctions.max()) if junctions.size else 0
    if count <= 1:
        return count
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    at = np.flatnonzero(junctions)
    ys, xs, labels, near_reach = graph.ys[at], graph.xs[at], junctions[at] - 1, reach[at]
    pairs = cKDTree(np.column_stack([ys, xs])).query_pairs(float(near_reach.max()), output_type="ndarray")
    if len(pairs):
        near = np.hypot(ys[pairs[:, 0]] - ys[pairs[:, 1]], xs[pairs[:, 0]] - xs[pairs[:, 1]])
        pairs = pairs[near <= np.maximum(near_reach[pairs[:, 0]], near_reach[pairs[:, 1]])]
    graph_ = coo_matrix((np.ones(len(pairs)), (labels[pairs[:, 0]], labels[pairs[:, 1]])), shape=(count, count))
    return int(connected_components(graph_, directed=False)[0])


def at_border(graph: SkeletonGraph, reach: np.ndarray) -> np.ndarray:
    """Per skeleton pixel: within the root's radius (`reach`) of the image edge, where an end is a root cut by
    the frame, not a tip."""
    height, width = graph.shape
    to_border = np.minimum.reduce([graph.ys, graph.xs, height - 1 - graph.ys, width - 1 - graph.xs])
    return to_border <= reach
