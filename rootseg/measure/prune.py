"""Spur pruning, as RhizoVision Explorer prunes: a skeleton tip shorter than the root's diameter where it
leaves its parent, plus `extra_px`, is a bump of the root's edge (a dilated or noisy boundary), not a lateral.

A spur is a run of skeleton pixels from an end to a junction (`SkeletonGraph.branches` >= 3); its length is
the length its pixels carry (`SkeletonGraph.pixel_lengths`), and the diameter is the root's width at the junction
(`rootseg.measure.diameter.diameter_map`). A run with two ends is a whole root and is
never pruned. Each pass cuts at most the shortest spur of each junction (a fork of two short spurs at a thick
root's end keeps one as the root's end); passes repeat until nothing changes (`_PASSES` at most), which also
takes the one-pixel stubs a cut junction may leave.
"""

from __future__ import annotations

import numpy as np

from rootseg.measure.diameter import diameter_map
from rootseg.measure.skeleton import SkeletonGraph, _components

_PASSES = 4


def branch_links(graph: SkeletonGraph) -> np.ndarray:
    """Per link: whether it is a branch (`SkeletonGraph.branches`'s rule): a diagonal link whose two pixels share
    a 4-neighbour is a shortcut past that pixel (past a junction, it would join a spur to its parent)."""
    height, width = graph.shape
    flat = graph.ys.astype(np.int64) * width + graph.xs
    ay, ax, by, bx = graph.ys[graph.a], graph.xs[graph.a], graph.ys[graph.b], graph.xs[graph.b]

    def present(ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        target = ys.astype(np.int64) * width + xs
        found = np.minimum(np.searchsorted(flat, target), flat.size - 1)
        return flat[found] == target

    shared = present(ay, bx) | present(by, ax)
    return ~(graph.diagonal & shared)


def _spurs(graph: SkeletonGraph, diameters: np.ndarray, extra_px: float) -> np.ndarray:
    """Per skeleton pixel: whether it lies on a spur to cut in this pass."""
    ends, clusters = graph.ends_and_junctions()
    junction = clusters > 0
    if not junction.any() or not ends.any():
        return np.zeros(graph.size, bool)
    a, b = graph.a, graph.b
    free = ~junction[a] & ~junction[b] & branch_links(graph)
    runs = _components(graph.size, a[free], b[free])
    count = int(runs.max()) + 1
    length = np.bincount(runs, graph.pixel_lengths(), count)
    has_end = np.bincount(runs, ends, count) == 1
    touch = junction[a] ^ junction[b]
    run_side = np.where(junction[a], b, a)[touch]
    junction_side = np.where(junction[a], a, b)[touch]
    diameter = np.zeros(count)
    np.maximum.at(diameter, runs[run_side], diameters[graph.ys[junction_side], graph.xs[junction_side]])
    at_cluster = np.zeros(count, np.int64)
    at_cluster[runs[run_side]] = clusters[junction_side]
    spur = np.flatnonzero(has_end & (at_cluster > 0) & (length < diameter + extra_px))
    if not spur.size:
        return np.zeros(graph.size, bool)
    spur = spur[np.argsort(length[spur], kind="stable")]
    _, first = np.unique(at_cluster[spur], return_index=True)  # the shortest spur of each junction
    cut = np.zeros(count, bool)
    cut[spur[first]] = True
    return cut[runs] & ~junction


def prune_spurs(skeleton: np.ndarray, root: np.ndarray, extra_px: float) -> np.ndarray:
    """The skeleton without spurs shorter than the local diameter plus `extra_px` (see the module notes); the
    input array itself when nothing was cut."""
    diameters = diameter_map(root)
    for _ in range(_PASSES):
        graph = SkeletonGraph.from_skeleton(skeleton)
        cut = _spurs(graph, diameters, extra_px)
        if not cut.any():
            break
        skeleton = skeleton.copy()
        skeleton[graph.ys[cut], graph.xs[cut]] = False
    return skeleton
