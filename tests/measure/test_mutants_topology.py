"""Tips and border ends at every edge of the frame, and the pinholes `fill_pinholes` closes, against drawn truth
(issue 27: mutants of `topology.at_border` and `skeleton.fill_pinholes` that no test killed)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from test_traits import capsule, line

from rootseg.measure.skeleton import SkeletonGraph, fill_pinholes
from rootseg.measure.topology import at_border, branch_points
from rootseg.measure.traits import root_traits

SHAPE = (160, 160)


def _eight_views(mask: np.ndarray) -> list[np.ndarray]:
    """The mask turned and mirrored so that a root leaving through one edge leaves through each of the four."""
    turns = [np.rot90(mask, k) for k in range(4)]
    return [np.ascontiguousarray(view) for turn in turns for view in (turn, turn.T)]


def _random_roots(seed: int, count: int) -> list[tuple[np.ndarray, tuple[int, int]]]:
    """Straight roots 3-9 px wide with their apex inside and (tips, border ends) known by construction: leaving
    through the top edge (1, 1), or ending with their apex 2 px inside it (2, 0)."""
    rng = np.random.default_rng(seed)
    roots = []
    for _ in range(count):
        width = rng.uniform(3, 9)
        apex = (rng.uniform(30, 130), rng.uniform(60, 120))
        out = (rng.uniform(10, 150), -rng.uniform(3, 30))  # beyond the top edge
        near = (rng.uniform(20, 140), width / 2 + 2)  # the round cap ends 2 px below the top edge's pixels
        roots.append((capsule(apex, out, width, SHAPE), (1, 1)))
        roots.append((capsule(apex, near, width, SHAPE), (2, 0)))
    return roots


@pytest.mark.parametrize("seed", range(2))
def test_roots_leaving_through_each_edge_end_at_the_border_and_near_ones_in_a_tip(seed: int) -> None:
    """Four roots leaving the frame and four ending 2 px short of it, seen through all four edges: an end within the
    root's radius of any edge is a cut root, not a tip; 2 px inside the edge it is a tip."""
    for mask, expected in _random_roots(seed, 4):
        for k, view in enumerate(_eight_views(mask)):
            traits = root_traits(view)
            assert (traits["tips"], traits["border_ends"]) == expected, (seed, k)
            assert traits["branch_points"] == 0 and traits["connected_roots"] == 1


def test_a_root_crossing_the_frame_top_to_bottom_has_two_border_ends() -> None:
    for view in _eight_views(capsule((70.3, -10), (95.6, 175), 6, SHAPE)):
        traits = root_traits(view)
        assert (traits["tips"], traits["border_ends"]) == (0, 2)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6, 9])
def test_holes_of_at_most_max_hole_px_are_filled_exactly(size: int) -> None:
    """A hole of `size` pixels (a row of them) in a 9 px root: filled when size <= max_hole_px (4), kept above;
    `max_hole_px=size` fills it and `size - 1` does not. A filled hole leaves a plain line (no branch point)."""
    mask = line(0, 120, 9, (80, 80.4))
    ys, xs = np.nonzero(mask)
    hole = np.zeros_like(mask)
    hole[int(np.median(ys)), 70 : 70 + size] = True
    mask &= ~hole
    root_area = int(mask.sum())
    for limit in (size - 1, size, 4):
        assert np.array_equal(fill_pinholes(mask, limit), mask | hole if size <= limit else mask), (size, limit)
    traits = root_traits(mask)
    assert traits["branch_points"] == (0 if size <= 4 else 2), size
    assert traits["projected_area_px2"] == root_area + size * (size <= 4)


def test_soil_notches_at_the_frame_are_not_holes() -> None:
    """A one-pixel notch of soil where a root meets each edge is open soil, not a hole: never filled. The same
    pixel one row inside is a hole and is."""
    base = np.zeros((40, 50), bool)
    base[:, 20:27] = True  # a vertical root crossing the frame, top to bottom
    for view in _eight_views(base):
        ys, xs = np.nonzero(view)
        edge_pixels = [(y, x) for y, x in zip(ys, xs) if y in (0, view.shape[0] - 1) or x in (0, view.shape[1] - 1)]
        inner = [(y, x) for y, x in edge_pixels if ndi.binary_erosion(view, border_value=1)[y, x]]
        assert inner, "the root must cover edge pixels away from its sides"
        for y, x in inner:
            notched = view.copy()
            notched[y, x] = False
            assert np.array_equal(fill_pinholes(notched, 4), notched), (y, x)
            dy = 1 if y == 0 else -1 if y == view.shape[0] - 1 else 0
            dx = 1 if x == 0 else -1 if x == view.shape[1] - 1 else 0
            holed = view.copy()
            holed[y + dy, x + dx] = False
            assert np.array_equal(fill_pinholes(holed, 4), view), (y, x)


def test_a_pinhole_in_a_root_that_fills_the_frame_is_filled() -> None:
    """The only background is the hole: one background component, and it is not open soil."""
    root = np.ones((20, 20), bool)
    root[9:11, 10] = False
    assert fill_pinholes(root).all()
    assert not fill_pinholes(root, 1).all()
    assert fill_pinholes(np.ones((5, 5), bool)).all() and not fill_pinholes(np.zeros((5, 5), bool)).any()


def test_an_end_is_at_the_border_within_the_roots_radius_of_each_edge_and_not_one_pixel_farther() -> None:
    """`at_border`: a skeleton pixel d px from the nearest edge pixel row or column is a cut end when d <= reach."""
    shape = (30, 40)
    for reach in (0, 1, 3, 6):
        for d in (reach, reach + 1):
            pixels = np.zeros(shape, bool)
            pixels[d, 20] = pixels[shape[0] - 1 - d, 21] = pixels[15, d] = pixels[16, shape[1] - 1 - d] = True
            graph = SkeletonGraph.from_skeleton(pixels)
            near = at_border(graph, np.full(graph.size, float(reach)))
            assert near.tolist() == [d <= reach] * 4, (reach, d)


def test_junctions_closer_than_the_larger_radius_are_one_branch_point() -> None:
    """Two forks 5 px apart on a line: one branch point when either fork's root radius reaches the other (6 px at
    the first), two when neither does (2 px at both)."""
    pixels = np.zeros((21, 31), bool)
    pixels[10, :] = True
    pixels[:10, 10] = True  # a lateral up at column 10
    pixels[11:, 15] = True  # and one down at column 15
    graph = SkeletonGraph.from_skeleton(pixels)
    ends, junctions = graph.ends_and_junctions()
    assert junctions.max() == 2 and ends.sum() == 4
    reach = np.full(graph.size, 2.0)
    assert branch_points(graph, junctions, reach) == 2
    reach[(graph.ys == 10) & (graph.xs == 10)] = 6.0
    assert branch_points(graph, junctions, reach) == 1
    reach[:] = 2.0
    reach[(graph.ys == 10) & (graph.xs == 15)] = 6.0
    assert branch_points(graph, junctions, reach) == 1


def test_an_isolated_skeleton_pixel_is_neither_an_end_nor_a_junction() -> None:
    pixels = np.zeros((9, 9), bool)
    pixels[2, 2] = True
    pixels[6, 1:8] = True
    graph = SkeletonGraph.from_skeleton(pixels)
    ends, junctions = graph.ends_and_junctions()
    assert ends.sum() == 2 and not ends[(graph.ys == 2) & (graph.xs == 2)].any() and junctions.max() == 0
