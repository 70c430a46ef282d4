"""Synthetic minirhizotron images with exact masks and true root length, so everything runs without real data.

The scans imitate a CI-600 image: dark brown soil with reddish aggregates, dark pores, white mineral specks,
specular glints on the tube and uneven illumination; roots are light tan, curved, tapering and branching,
2-15 px wide, some dim, some partly hidden behind soil grains. Bright specks, pale grains and short glints
are deliberate distractors, so a model has to use shape as well as brightness.

Ground truth is exact for what is *visible*: the mask is the anti-aliased root coverage thresholded at one
half, minus every pixel a soil grain covers. The centreline length is the *true* length: the summed length
of every root's centreline polyline clipped to the image, whether or not parts are occluded (a root behind
a grain still grows there, and that is what line-intersect and skeleton length estimate).

Image i of a set comes from `SeedSequence(seed, spawn_key=(i,))`, so it is the same whatever n is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from rootseg.synthetic.truth import clipped_segments, root_truth, thickness

GENERATOR_VERSION = "rootseg-synthetic-1"


_SHIFT = 4  # cv2 fixed-point bits: sub-pixel line end points


_ONE = 1 << _SHIFT


_REF = 512.0  # densities and lengths are tuned at 512 px and scale with the image side


# Colours in RGB, 0-255, taken by eye from SegRoot CI-600 scans.
_SOIL = np.array([74.0, 62.0, 57.0])


_AGGREGATE = np.array([122.0, 86.0, 74.0])


_PORE = np.array([34.0, 30.0, 30.0])


_SPECK = np.array([215.0, 205.0, 185.0])


_ROOT = np.array([162.0, 145.0, 126.0])


@dataclass
class SyntheticSample:
    image: np.ndarray  # H x W x 3 uint8 RGB
    mask: np.ndarray  # H x W uint8 in {0, 1}: visible root
    centreline_length: float  # pixels, all roots' centrelines clipped to the image
    truth: dict = field(default_factory=dict)  # exact truth per image: `rootseg.synthetic.truth.root_truth`
    root_mask: np.ndarray | None = None  # H x W bool: every root pixel, hidden behind soil grains or not


@dataclass
class _Root:
    points: np.ndarray  # N x 2 (x, y) float centreline
    widths: np.ndarray  # N-1 segment widths in px
    brightness: float
    parent: int = -1  # index of the root it branches from, -1 for a primary


def _as_seed_sequence(seed: int | np.random.SeedSequence) -> np.random.SeedSequence:
    return seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(int(seed))


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Zero-mean unit-sd noise with features about `scale` px: cheap at any size via a small grid + resize."""
    h, w = shape
    gh, gw = max(2, int(math.ceil(h / scale)) + 2), max(2, int(math.ceil(w / scale)) + 2)
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    big = cv2.resize(grid, (int(gw * scale), int(gh * scale)), interpolation=cv2.INTER_CUBIC)
    oy, ox = rng.integers(0, max(1, big.shape[0] - h)), rng.integers(0, max(1, big.shape[1] - w))
    out = big[oy : oy + h, ox : ox + w]
    return (out - out.mean()) / (out.std() + 1e-6)


def _blobs(
    rng: np.random.Generator,
    canvas: np.ndarray,
    count: int,
    radius: tuple[float, float],
    values: np.ndarray | float,
    centres: np.ndarray | None = None,
    aspect: tuple[float, float] = (0.4, 1.0),
    grow: float = 0.0,
) -> None:
    """Draw grains (random ellipses) into `canvas`, one value per blob; `grow` px widens every blob.

    cv2 anti-aliases only uint8 canvases; float canvases get hard edges, softened later by a blur.
    """
    h, w = canvas.shape[:2]
    if count <= 0:
        return
    if centres is None:
        centres = np.column_stack([rng.uniform(0, w, count), rng.uniform(0, h, count)])
    radii = np.exp(rng.uniform(np.log(radius[0]), np.log(radius[1]), count))
    ratios = rng.uniform(*aspect, count)
    angles = rng.uniform(0, 180, count)
    vals = np.broadcast_to(np.asarray(values, dtype=np.float64), (count,) + np.shape(values)[-1:])
    for (cx, cy), r, q, a, v in zip(centres, radii, ratios, angles, vals):
        colour = tuple(float(c) for c in np.atleast_1d(v))
        axes = (max(1, int((r + grow) * _ONE)), max(1, int((r * q + grow) * _ONE)))
        cv2.ellipse(canvas, (int(cx * _ONE), int(cy * _ONE)), axes, float(a), 0, 360, colour, -1, cv2.LINE_AA, _SHIFT)


def _jitter(rng: np.random.Generator, base: np.ndarray, n: int, lum: tuple[float, float], hue: float) -> np.ndarray:
    """n colours around `base`: mostly brightness changes, a little hue, as soil colours vary."""
    cols = base[None, :] * rng.uniform(*lum, (n, 1)) + rng.normal(0, hue, (n, 1)) * np.array([1.0, 0.2, -0.6])
    return np.clip(cols, 0, 255).astype(np.float32)


def _soil(rng: np.random.Generator, shape: tuple[int, int], k: float) -> np.ndarray:
    """Soil texture: fine grain noise, reddish crumbs, dark pores and pale grains, softly focused."""
    h, w = shape
    area = h * w / _REF**2
    tone = _jitter(rng, _SOIL, 1, (0.85, 1.15), 4)[0]
    lum = (
        0.16 * _smooth_noise(rng, shape, 1.2)
        + 0.10 * _smooth_noise(rng, shape, 4 * k)
        + 0.05 * _smooth_noise(rng, shape, 40 * k)
    )
    img = tone[None, None, :] * (1 + lum[..., None])
    # Redder and darker patches tens of px across, as crumbs and organic matter cluster.
    patches = _smooth_noise(rng, shape, 30 * k)[..., None]
    img *= 1 + 0.06 * patches * np.array([1.2, 1.0, 0.9], np.float32)
    # Crumbs: irregular shapes from thresholded noise, each crumb field in its own tone.
    for scale, level in ((4.0 * k, 1.1), (9.0 * k, 1.2)):
        field = _smooth_noise(rng, shape, scale)
        colour = _jitter(rng, _AGGREGATE, 1, (0.7, 1.0), 5)[0]
        shade = _smooth_noise(rng, shape, 2.0)
        inside = field > level  # crumbs cover a few % of pixels: blend only there
        crumb = np.minimum((field[inside] - level) * 3, 1)[:, None]
        img[inside] += (colour * (1 + 0.15 * shade[inside])[:, None] - img[inside]) * crumb
    n_agg = int(rng.uniform(150, 400) * area)
    _blobs(rng, img, n_agg, (1.5 * k, 6 * k), _jitter(rng, _AGGREGATE, n_agg, (0.55, 1.05), 6), aspect=(0.3, 1))
    n_pore = int(rng.uniform(200, 500) * area)
    _blobs(rng, img, n_pore, (1.0 * k, 4 * k), _jitter(rng, _PORE, n_pore, (0.7, 1.5), 2))
    # Pale sand grains: root-coloured but round, the main brightness distractor.
    n_pale = int(rng.uniform(80, 250) * area)
    _blobs(rng, img, n_pale, (1.2 * k, 6.0 * k), _jitter(rng, _ROOT, n_pale, (0.55, 1.05), 5))
    img = cv2.GaussianBlur(img, (0, 0), 1.1 * k)
    img *= (1 + 0.10 * _smooth_noise(rng, shape, 1.0))[..., None]  # grain survives the blur
    return img


def _specks(rng: np.random.Generator, img: np.ndarray, k: float) -> None:
    """Bright mineral specks and specular glints drawn on top of everything (they sit on the tube wall)."""
    h, w = img.shape[:2]
    area = h * w / _REF**2
    n = int(rng.uniform(80, 300) * area)
    _blobs(rng, img, n, (0.7, 2.2 * k), _jitter(rng, _SPECK, n, (0.6, 1.15), 4), aspect=(0.5, 1.0))
    # Glints: very bright short streaks, like light on wet grains or scratches on the tube.
    n_glint = int(rng.uniform(2, 10) * area)
    for _ in range(n_glint):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        ang, length = rng.uniform(0, np.pi), rng.uniform(3, 12) * k
        dx, dy = math.cos(ang) * length / 2, math.sin(ang) * length / 2
        p0 = (int((x - dx) * _ONE), int((y - dy) * _ONE))
        p1 = (int((x + dx) * _ONE), int((y + dy) * _ONE))
        cv2.line(img, p0, p1, (245.0, 245.0, 240.0), int(rng.integers(1, 4)), cv2.LINE_8, _SHIFT)


def _walk(
    rng: np.random.Generator,
    start: np.ndarray,
    angle: float,
    length: float,
    down: float,
    step: float = 2.0,
    wiggle: float = 0.012,
) -> np.ndarray:
    """A gently curved centreline: the heading is a smoothed random walk pulled towards `down`."""
    n = max(2, int(length / step) + 1)
    noise = cv2.GaussianBlur(rng.standard_normal((1, n)).astype(np.float32), (0, 0), 8).ravel()
    noise = noise / (noise.std() + 1e-6)
    turns = wiggle * noise + rng.normal(0, wiggle * 0.7, n)
    headings = np.empty(n)
    heading, pull = angle, rng.uniform(0.0, 0.006)
    for i in range(n):  # n is a few hundred: a Python loop is fast enough and keeps the pull exact
        heading += turns[i] + pull * math.sin(down - heading)
        headings[i] = heading
    steps = step * np.column_stack([np.cos(headings), np.sin(headings)])
    return start[None, :] + np.vstack([np.zeros((1, 2)), np.cumsum(steps[:-1], axis=0)])


def _roots(rng: np.random.Generator, shape: tuple[int, int], k: float) -> list[_Root]:
    """Primary roots entering the window, each with laterals (and rarely second-order laterals)."""
    h, w = shape
    side = math.sqrt(h * w) / _REF
    down = rng.uniform(0, 2 * np.pi)  # the tube's "down" in this image
    n_primary = int(np.clip(rng.poisson(rng.uniform(0.8, 3.0) * side), 1, max(1, round(5 * side))))
    roots: list[_Root] = []
    for _ in range(n_primary):
        # Each primary passes through a random point of the window, so every image holds root.
        through = np.array([rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h])
        angle = down + rng.normal(0, 0.9)
        length = rng.uniform(0.6, 1.6) * _REF * max(1.0, side * 0.9)
        back = rng.uniform(0.2, 0.8) * length
        behind = _walk(rng, through, angle + math.pi, back, down + math.pi)[::-1]
        ahead = _walk(rng, through, angle, length - back, down)
        pts = np.vstack([behind[:-1], ahead])
        w0 = math.exp(rng.uniform(math.log(3.0), math.log(12.0)))
        bright = rng.uniform(0.7, 1.0)
        taper = np.linspace(1.0, rng.uniform(0.55, 0.85), len(pts) - 1)
        roots.append(_Root(pts, w0 * taper, bright))
        _laterals(rng, roots, pts, w0 * taper, bright, down, order=1)
    return roots


def _laterals(
    rng: np.random.Generator,
    roots: list[_Root],
    parent: np.ndarray,
    parent_w: np.ndarray,
    bright: float,
    down: float,
    order: int,
) -> None:
    parent_index = len(roots) - 1  # the parent was appended just before this call (no random draw)
    if rng.random() < (0.25 if order == 1 else 0.75):
        return
    seg = np.diff(parent, axis=0)
    arc = np.concatenate([[0], np.cumsum(np.hypot(seg[:, 0], seg[:, 1]))])
    spacing = rng.uniform(25, 110) * (1 if order == 1 else 1.8)
    s = rng.exponential(spacing)
    while s < arc[-1] - 10:
        i = int(np.searchsorted(arc, s)) - 1
        i = min(max(i, 0), len(seg) - 1)
        heading = math.atan2(seg[i, 1], seg[i, 0])
        angle = heading + rng.choice([-1, 1]) * rng.uniform(0.6, 1.5)
        width = max(2.0, min(parent_w[i] * rng.uniform(0.25, 0.6), 5.0))
        length = rng.uniform(20, 180) * (1 if order == 1 else 0.5)
        pts = _walk(rng, parent[i], angle, length, down, wiggle=0.014)
        widths = np.maximum(2.0, width * np.linspace(1.0, rng.uniform(0.6, 0.9), len(pts) - 1))
        b = bright * rng.uniform(0.7, 1.05)
        roots.append(_Root(pts, widths, b, parent_index))
        if order == 1 and width >= 3:
            _laterals(rng, roots, pts, widths, b, down, order=2)
        s += rng.exponential(spacing)


def _clipped_length(points: np.ndarray, h: int, w: int) -> float:
    """Length of a polyline inside the image rectangle [-0.5, W-0.5] x [-0.5, H-0.5] (Liang-Barsky)."""
    return float(np.sum(clipped_segments(points, h, w)))


def _draw_roots(roots: list[_Root], shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """Coverage (anti-aliased), brightness and opacity under it, and a core line for cylindrical shading."""
    h, w = shape
    cover = np.zeros((h, w), np.uint8)
    bright = np.zeros((h, w), np.uint8)
    opacity = np.zeros((h, w), np.uint8)
    core = np.zeros((h, w), np.uint8)
    for root in roots:
        ipts = np.round(root.points * _ONE).astype(np.int64)
        b = int(np.clip(root.brightness * 200, 1, 255))
        for a, c, width in zip(ipts[:-1], ipts[1:], root.widths):
            p, q, t = (int(a[0]), int(a[1])), (int(c[0]), int(c[1])), thickness(width)
            # Thin roots are partly translucent, so they show less contrast against the soil.
            o = int(255 * min(1.0, 0.55 + 0.09 * width))
            cv2.line(cover, p, q, 255, t, cv2.LINE_AA, _SHIFT)
            cv2.line(bright, p, q, b, t + 2, cv2.LINE_8, _SHIFT)
            cv2.line(opacity, p, q, o, t + 2, cv2.LINE_8, _SHIFT)
            cv2.line(core, p, q, 255, max(1, int(round(width * 0.35))), cv2.LINE_AA, _SHIFT)
    return cover, bright, opacity, core


def generate_sample(seed: int | np.random.SeedSequence, size: tuple[int, int] = (512, 512)) -> SyntheticSample:
    """One synthetic scan of `size` (H, W) with its visible-root mask and true centreline length."""
    h, w = int(size[0]), int(size[1])
    if h < 16 or w < 16:
        raise ValueError(f"size {size}: synthetic images need at least 16 x 16 pixels")
    rng = np.random.default_rng(_as_seed_sequence(seed))
    k = rng.uniform(0.8, 1.25)  # grain scale: finer or coarser soil
    soil = _soil(rng, (h, w), k)

    roots = _roots(rng, (h, w), k)
    length = sum(_clipped_length(r.points, h, w) for r in roots)
    cover, bright, opacity, core = _draw_roots(roots, (h, w))
    alpha = (cover.astype(np.float32) * opacity.astype(np.float32) / 255.0**2)[..., None]
    shade = cv2.GaussianBlur(core.astype(np.float32) / 255.0, (0, 0), 1.0)
    texture = 1 + 0.07 * _smooth_noise(rng, (h, w), 8) + 0.05 * _smooth_noise(rng, (h, w), 1.5)
    tint = _jitter(rng, _ROOT, 1, (0.9, 1.1), 5)[0]
    lum = (bright.astype(np.float32) / 200.0) * (0.8 + 0.3 * shade) * texture
    img = soil * (1 - alpha) + (tint[None, None, :] * lum[..., None]) * alpha

    # Occlusion: patches of soil lying over roots, centred on root pixels so they actually hide root.
    occ = np.zeros((h, w), np.uint8)
    ys, xs = np.nonzero(cover > 127)
    if len(xs):
        n_occ = int(max(1, len(xs) / 700 * rng.uniform(0.3, 1.5)))
        pick = rng.integers(0, len(xs), n_occ)
        centres = np.column_stack([xs[pick], ys[pick]]).astype(np.float64) + rng.uniform(-3, 3, (n_occ, 2))
        # A grain narrower than the root would punch a hole in it: make it at least as wide as the root.
        half = cv2.distanceTransform((cover > 127).astype(np.uint8), cv2.DIST_L2, 3)[ys[pick], xs[pick]]
        for (cx, cy), r0 in zip(centres, half):
            r = max(float(r0) * rng.uniform(1.1, 1.8) + 1.0, rng.uniform(2.0, 8.0) * k)
            axes = (int(r * _ONE), int(r * rng.uniform(0.6, 1.0) * _ONE))
            centre = (int(cx * _ONE), int(cy * _ONE))
            cv2.ellipse(occ, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1, cv2.LINE_AA, _SHIFT)
        oa = occ.astype(np.float32)[..., None] / 255.0
        img = img * (1 - oa) + soil * oa

    _specks(rng, img, k)

    # Uneven illumination: vignetting plus a broad gradient, then lens softness and sensor noise.
    cy, cx = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7)
    yy = ((np.arange(h, dtype=np.float32) / h - cy) ** 2)[:, None]
    xx = ((np.arange(w, dtype=np.float32) / w - cx) ** 2)[None, :]
    r2 = yy + xx
    illum = np.float32(1.15) - np.float32(rng.uniform(0.4, 0.9)) * r2
    illum += 0.08 * _smooth_noise(rng, (h, w), max(h, w) / 3)
    img *= illum[..., None]
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.6, 1.0))
    img += 2.5 * rng.standard_normal((h, w, 1), dtype=np.float32)
    img += 1.5 * rng.standard_normal(img.shape, dtype=np.float32)
    image = np.clip(np.rint(img), 0, 255).astype(np.uint8)

    mask = ((cover > 127) & (occ < 128)).astype(np.uint8)
    truth = root_truth(roots, (h, w), length)
    return SyntheticSample(image=image, mask=mask, centreline_length=length, truth=truth, root_mask=cover > 127)
