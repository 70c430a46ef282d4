"""Exact truth for the synthetic generator: what each image's roots hold, from their geometry.

`rootseg.synthetic.generator` draws roots as polylines with a width per segment; from those polylines this
module records per image the true centreline length, each root's drawn diameter, tips, branch points and the
grid's line-intersect counts, with the two conditions under which a mask cannot show tips and branch points
exactly (roots that touch, and ends at the image border). It imports nothing from rootseg.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import cv2
import numpy as np

__all__ = ["TRUTH_GRID_SPACINGS_PX", "clipped_segments", "drawn_width", "root_truth", "thickness"]

_SHIFT = 4  # cv2 fixed-point bits, as the generator draws
_ONE = 1 << _SHIFT


class RootLike(Protocol):
    points: np.ndarray  # N x 2 (x, y) centreline
    widths: np.ndarray  # N-1 segment widths in px
    parent: int  # index of the root it branches from, -1 for a primary


def clipped_segments(points: np.ndarray, h: int, w: int) -> np.ndarray:
    """Length of each segment of a polyline inside the image rectangle (Liang-Barsky)."""
    p0, d = points[:-1], np.diff(points, axis=0)
    t0, t1 = np.zeros(len(d)), np.ones(len(d))
    for axis, hi in ((0, w - 0.5), (1, h - 0.5)):
        for p, q in ((-d[:, axis], p0[:, axis] + 0.5), (d[:, axis], hi - p0[:, axis])):
            with np.errstate(divide="ignore", invalid="ignore"):
                r = q / p
            parallel_out = (p == 0) & (q < 0)
            t1 = np.where(parallel_out, -1.0, t1)
            t0 = np.where((p < 0) & ~parallel_out, np.maximum(t0, r), t0)
            t1 = np.where((p > 0) & ~parallel_out, np.minimum(t1, r), t1)
    frac = np.clip(t1 - t0, 0, None)
    return frac * np.hypot(d[:, 0], d[:, 1])


TRUTH_GRID_SPACINGS_PX: tuple[int, ...] = (32, 64)


def thickness(width: float) -> int:
    """The cv2 line thickness `_draw_roots` uses for a segment of nominal `width`."""
    return max(2, int(round(width)))


def drawn_width(t: int) -> float:
    """Width (px) of the mask (coverage > 1/2) of an anti-aliased cv2 line of `thickness`, as the generator draws.

    cv2 draws a polygon of half-width ceil(t/2) whose anti-aliased edge adds about a pixel each side; measured
    over 0-90 deg: t + 1.85 for even t, t + 2.5 for odd t (tests/test_synthetic_truth.py checks it).
    """
    return t + (2.5 if t % 2 else 1.85)


def _grid_lines(size: int, spacing: float) -> np.ndarray:
    """Grid rows or columns where `rootseg.measure.intersect.line_intersect_counts` puts them (first at spacing / 2)."""
    return np.floor(np.arange(spacing / 2.0, size, spacing)).astype(int)


def _crossings(points: np.ndarray, h: int, w: int, spacing: float) -> int:
    """Crossings of a centreline with the grid's pixel-centre lines inside the image."""
    count = 0
    for axis, size, across in ((1, h, w), (0, w, h)):  # rows (y = const), then columns (x = const)
        a0, a1 = points[:-1, axis, None], points[1:, axis, None]
        b0, b1 = points[:-1, 1 - axis, None], points[1:, 1 - axis, None]
        lines = _grid_lines(size, spacing)[None, :]
        hit = (a0 < lines) != (a1 < lines)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = b0 + (lines - a0) / (a1 - a0) * (b1 - b0)
        count += int(np.count_nonzero(hit & (at >= -0.5) & (at <= across - 0.5)))
    return count


def _ends(roots: Sequence[RootLike]) -> list[tuple[str, np.ndarray, float]]:
    """(kind, point, radius) of every tip and branch point: primaries end twice, a lateral once and joins once."""
    ends = []
    for root in roots:
        ends.append(("tip", root.points[-1], drawn_width(thickness(root.widths[-1])) / 2))
        if root.parent < 0:
            ends.append(("tip", root.points[0], drawn_width(thickness(root.widths[0])) / 2))
        else:
            parent = roots[root.parent]
            i = min(int(np.argmin(np.hypot(*(parent.points - root.points[0]).T))), len(parent.widths) - 1)
            ends.append(("branch", root.points[0], drawn_width(thickness(parent.widths[i])) / 2))
    return ends


def _own_mask(canvas: np.ndarray, root: RootLike) -> np.ndarray:
    """One root's pixels, drawn as the generator draws its coverage (anti-aliased, kept where > 1/2)."""
    canvas[:] = 0
    ipts = np.round(root.points * _ONE).astype(np.int64)
    for a, c, width in zip(ipts[:-1], ipts[1:], root.widths):
        cv2.line(canvas, (int(a[0]), int(a[1])), (int(c[0]), int(c[1])), 255, thickness(width), cv2.LINE_AA, _SHIFT)
    return canvas > 127


def _touching(roots: Sequence[RootLike], ends: list[tuple[str, np.ndarray, float]], shape: tuple[int, int]) -> bool:
    """Whether any root overlaps another beyond where a lateral leaves its parent (or two laterals leave together).

    Where a lateral leaves, it may overlap its parent within 2 (r_parent + r_lateral) + 2 px of its start.
    """
    h, w = shape
    owner = np.full((h, w), -1, np.int32)
    zones = np.zeros((h, w), np.uint8)
    canvas = np.zeros((h, w), np.uint8)
    branch_radii = iter(radius for kind, _, radius in ends if kind == "branch")
    for index, root in enumerate(roots):
        own = _own_mask(canvas, root)
        allowed = np.zeros((h, w), bool)
        if root.parent >= 0:
            radius = 2 * (next(branch_radii) + drawn_width(thickness(root.widths[0])) / 2) + 2
            if np.hypot(*(root.points[-1] - root.points[0])) <= radius:
                return True  # the lateral ends inside its own junction: no branch to see
            canvas[:] = 0
            start = (int(round(root.points[0][0] * _ONE)), int(round(root.points[0][1] * _ONE)))
            cv2.circle(canvas, start, int(radius * _ONE), 1, -1, cv2.LINE_8, _SHIFT)
            if (zones & canvas).any():
                return True
            zones |= canvas
            allowed = (canvas > 0) & (owner == root.parent)
        if (own & (owner >= 0) & ~allowed).any():
            return True
        owner[own & (owner < 0)] = index
    return False


def root_truth(roots: Sequence[RootLike], shape: tuple[int, int], length: float) -> dict:
    """Exact truth for an image: what the roots' geometry holds, before any mask or skeleton.

    Tips and branch points count those inside the image; `near_border` counts those within a root radius + 2 px
    of its edge (inside or out), where a mask cannot tell a tip from a root leaving the image. `touching` says
    roots overlap beyond their own junctions (crossings add junctions and merge roots): counts of tips and
    branch points are comparable with a skeleton only when neither is the case. Diameters are the drawn widths
    (`drawn_width`) weighted by length inside the image; intersections count centreline crossings of the
    grid lines that `rootseg.measure.intersect.line_intersect_counts` lays for each spacing in px.
    """
    h, w = shape
    ends = _ends(roots)
    counts = {"tip": 0, "branch": 0}
    near_border = 0
    for kind, (x, y), radius in ends:
        inside = -0.5 <= x <= w - 0.5 and -0.5 <= y <= h - 0.5
        counts[kind] += int(inside)
        outside = math.hypot(max(-0.5 - x, 0.0, x - w + 0.5), max(-0.5 - y, 0.0, y - h + 0.5))
        edge = min(x + 0.5, w - 0.5 - x, y + 0.5, h - 0.5 - y) if inside else outside
        near_border += int(edge < radius + 2)
    per_root, weighted, total = [], 0.0, 0.0
    for root in roots:
        inside = clipped_segments(root.points, h, w)
        widths = np.array([drawn_width(thickness(width)) for width in root.widths])
        seen = float(inside.sum())
        diameter = float((inside * widths).sum() / seen) if seen > 0 else None
        per_root.append({"parent": root.parent, "length_px": seen, "diameter_px": diameter})
        weighted, total = weighted + float((inside * widths).sum()), total + seen
    return {
        "centreline_length_px": float(length),
        "tips": counts["tip"],
        "branch_points": counts["branch"],
        "near_border": near_border,
        "touching": _touching(roots, ends, shape),
        "diameter_mean_px": weighted / total if total > 0 else None,
        "line_intersections": {
            str(s): sum(_crossings(root.points, h, w, s) for root in roots) for s in TRUTH_GRID_SPACINGS_PX
        },
        "roots": per_root,
    }
