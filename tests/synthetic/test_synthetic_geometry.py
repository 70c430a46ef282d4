"""The synthetic mask and root length against the geometry they come from, computed here independently.

The generator draws each root as thick anti-aliased line segments (cv2) and hides parts of them under soil
ellipses; the mask is "root drawn and not hidden". Here the same roots and ellipses (captured as the generator
draws them) are rasterised with plain numpy geometry: distance of each pixel centre to each segment, and the
ellipse equation. Away from the one-pixel anti-aliased edges the two must agree exactly.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from rootseg.synthetic import generator


def _distance_to_segments(h: int, w: int, segments: list[tuple[np.ndarray, np.ndarray, float]]) -> np.ndarray:
    """Per pixel, min over segments of (distance from the pixel centre to the segment - its half thickness)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    best = np.full((h, w), np.inf)
    for a, b, radius in segments:
        d = b - a
        length2 = float(d @ d)
        t = np.zeros_like(xx) if length2 == 0 else np.clip(((xx - a[0]) * d[0] + (yy - a[1]) * d[1]) / length2, 0, 1)
        dist = np.hypot(xx - (a[0] + t * d[0]), yy - (a[1] + t * d[1]))
        best = np.minimum(best, dist - radius)
    return best


def _ellipse_level(h: int, w: int, ellipses: list[tuple[float, float, float, float, float]]) -> np.ndarray:
    """Per pixel, min over ellipses of (normalised radius - 1) times the smaller semi-axis: < 0 inside, ~px."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    best = np.full((h, w), np.inf)
    for cx, cy, a, b, angle in ellipses:
        c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
        u, v = (xx - cx) * c + (yy - cy) * s, -(xx - cx) * s + (yy - cy) * c
        best = np.minimum(best, (np.sqrt((u / a) ** 2 + (v / b) ** 2) - 1) * min(a, b))
    return best


def _capture(monkeypatch, seed: int, size: tuple[int, int]):
    """Generate a sample, recording the roots drawn and the occluding ellipses (the 2-D uint8 canvas)."""
    roots, ellipses = [], []
    draw, ellipse = generator._draw_roots, cv2.ellipse

    def draw_roots(found, shape):
        roots.extend(found)
        return draw(found, shape)

    def record_ellipse(canvas, centre, axes, angle, *args, **kwargs):
        if canvas.ndim == 2 and canvas.dtype == np.uint8:
            one = generator._ONE
            ellipses.append((centre[0] / one, centre[1] / one, axes[0] / one, axes[1] / one, angle))
        return ellipse(canvas, centre, axes, angle, *args, **kwargs)

    monkeypatch.setattr(generator, "_draw_roots", draw_roots)
    monkeypatch.setattr(cv2, "ellipse", record_ellipse)
    sample = generator.generate_sample(seed, size)
    return sample, roots, ellipses


@pytest.mark.parametrize("seed", [0, 5, 11])
def test_mask_is_the_drawn_roots_minus_the_occluding_soil(monkeypatch, seed):
    h, w = 160, 192
    sample, roots, ellipses = _capture(monkeypatch, seed, (h, w))
    assert roots and ellipses
    segments = []
    for root in roots:
        # cv2 draws at the fixed-point end points with thickness max(2, round(width)), round caps
        points = np.round(root.points * generator._ONE) / generator._ONE
        for a, b, width in zip(points[:-1], points[1:], root.widths):
            segments.append((a, b, max(2, int(round(width))) / 2))
    root_level = _distance_to_segments(h, w, segments)
    soil_level = _ellipse_level(h, w, ellipses)
    # cv2's anti-aliased thick lines reach up to ~1.5 px beyond half their thickness (measured: 1.36-1.51 px
    # for these seeds) and the ellipses' anti-aliased rims about one pixel: the bands between are undecided
    surely_root = (root_level <= -0.5) & (soil_level >= 0.75)
    surely_not = (root_level >= 1.75) | (soil_level <= -0.75)
    mask = sample.mask.astype(bool)
    assert mask[surely_root].all(), f"{(~mask[surely_root]).sum()} pixels inside a visible root are not in the mask"
    assert not mask[surely_not].any(), f"{mask[surely_not].sum()} mask pixels lie off every root or under soil"
    edge = ~(surely_root | surely_not)
    assert surely_root.sum() > 0.4 * mask.sum() and edge.sum() < 2 * mask.sum()  # the edges do not decide it
    # the occlusion really hides root: without it, the mask would be larger
    assert ((root_level <= -0.5) & (soil_level <= -0.75)).any()


def _length_by_sampling(points: np.ndarray, h: int, w: int, per_segment: int = 4000) -> float:
    """Polyline length inside [-0.5, w - 0.5] x [-0.5, h - 0.5]: each segment's length times the share of
    evenly spaced points along it that fall inside (no clipping algebra)."""
    total = 0.0
    for a, b in zip(points[:-1], points[1:]):
        t = (np.arange(per_segment) + 0.5) / per_segment
        x, y = a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])
        inside = (x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)
        total += float(np.hypot(*(b - a))) * inside.mean()
    return total


@pytest.mark.parametrize("seed", [0, 3])
def test_centreline_length_is_the_clipped_polyline_length(monkeypatch, seed):
    h, w = 96, 128
    sample, roots, _ = _capture(monkeypatch, seed, (h, w))
    expected = sum(_length_by_sampling(root.points, h, w) for root in roots)
    assert expected > 50
    assert sample.centreline_length == pytest.approx(expected, rel=1e-3)


def test_clipped_length_of_known_lines():
    square = np.array([[-10.0, 5.0], [20.0, 5.0]])  # crosses a 10-wide image: 10 px inside
    assert generator._clipped_length(square, 8, 10) == pytest.approx(10.0)
    diagonal = np.array([[-0.5, -0.5], [9.5, 7.5], [30.0, 7.5]])
    assert generator._clipped_length(diagonal, 8, 10) == pytest.approx(np.hypot(10, 8))
    outside = np.array([[-5.0, -5.0], [-5.0, 40.0]])  # parallel to an edge, outside it
    assert generator._clipped_length(outside, 8, 10) == 0.0
