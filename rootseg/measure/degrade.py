"""Named segmentation failures, each applied to a mask until it has lost a chosen Dice: what a trait measurement
must survive (benchmarks/trait_robustness.py; tests/measure/test_degrade.py).

- `dilation` / `erosion`: boundary layers (Euclidean distance) added / removed, the last partial layer in
  random patches about `_PATCH_PX` across (a model over- or under-confident along stretches of root); thin
  roots break first under erosion;
- `dropout`: the thinnest skeleton branches (between junctions and ends) lose all their pixels, thinnest
  first (a model that misses fine roots);
- `junctions`: at every branch point a disc one pixel wider than the root is cleared (a model that misses
  forks); not calibrated, its loss is what it is;
- `speckle`: isolated false root pixels scattered over the background;
- `blobs`: false discs of 3-8 px radius scattered over the image (some touch roots).

`degrade(mask, failure, loss, seed)` returns the damaged mask and the Dice loss it reached: the continuous
failures are calibrated by bisection, the counted ones by adding until the target is reached: speckle within
a pixel's share of the target, blobs and dropout above it by at most the last disc's or branch's share (on a
256 px generated image up to 0.015; a mask too small to lose that much reaches less).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage as ndi

from rootseg.measure.diameter import diameter_map
from rootseg.measure.prune import branch_links
from rootseg.measure.skeleton import SkeletonGraph, _components, skeletonize_mask

FAILURES: tuple[str, ...] = ("dilation", "erosion", "dropout", "junctions", "speckle", "blobs")
_PATCH_PX = 16.0  # size of the patches in which a partial boundary layer changes


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean masks (1 when both are empty)."""
    total = int(np.count_nonzero(a)) + int(np.count_nonzero(b))
    return 1.0 if total == 0 else 2.0 * int(np.count_nonzero(a & b)) / total


def _bisect(make: Callable[[float], np.ndarray], mask: np.ndarray, loss: float, lo: float, hi: float) -> np.ndarray:
    """The damaged mask at the level in [lo, hi] whose Dice loss is closest to `loss` (loss grows with level)."""
    best, best_gap = mask, abs(loss)
    for _ in range(30):
        level = 0.5 * (lo + hi)
        damaged = make(level)
        reached = 1.0 - dice(mask, damaged)
        if abs(reached - loss) < best_gap:
            best, best_gap = damaged, abs(reached - loss)
        lo, hi = (level, hi) if reached < loss else (lo, level)
    return best


def _field(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A smooth random field with values spread evenly over [0, 1): where a partial layer changes first."""
    import cv2

    noise = cv2.GaussianBlur(rng.random(shape, dtype=np.float32), (0, 0), _PATCH_PX)
    ranks = np.empty(noise.size, np.float32)
    ranks[np.argsort(noise, axis=None)] = np.arange(noise.size, dtype=np.float32) / noise.size
    return ranks.reshape(shape)


def _layers(distance: np.ndarray, field: np.ndarray, level: float) -> np.ndarray:
    """Pixels `level` layers deep: every pixel at distance <= floor(level), and of the next layer those where
    the field is below the fraction (whole patches of boundary, not scattered pixels)."""
    whole = np.floor(level)
    return (distance <= whole) | ((distance <= whole + 1) & (field < level - whole))


def dilation(mask: np.ndarray, loss: float, rng: np.random.Generator) -> np.ndarray:
    """Boundaries grown outwards, layer by layer, the last layer in patches."""
    outside, field = ndi.distance_transform_edt(~mask), _field(mask.shape, rng)
    return _bisect(lambda level: mask | _layers(outside, field, level), mask, loss, 0.0, 12.0)


def erosion(mask: np.ndarray, loss: float, rng: np.random.Generator) -> np.ndarray:
    """Boundaries worn inwards, layer by layer, the last layer in patches; thin roots break first."""
    inside, field = ndi.distance_transform_edt(mask), _field(mask.shape, rng)
    return _bisect(lambda level: mask & ~_layers(inside, field, level), mask, loss, 0.0, 12.0)


def _runs(mask: np.ndarray) -> tuple[SkeletonGraph, np.ndarray, np.ndarray]:
    """The skeleton, each skeleton pixel's branch (junction pixels: -1) and junction cluster (0: none)."""
    graph = SkeletonGraph.from_skeleton(skeletonize_mask(mask))
    _, clusters = graph.ends_and_junctions()
    junction = clusters > 0
    free = ~junction[graph.a] & ~junction[graph.b] & branch_links(graph)
    runs = _components(graph.size, graph.a[free], graph.b[free])
    return graph, np.where(junction, -1, runs), clusters


def dropout(mask: np.ndarray, loss: float, rng: np.random.Generator) -> np.ndarray:
    """Whole branches, thinnest first, until `loss` (each root pixel belongs to its nearest skeleton pixel)."""
    graph, runs, _ = _runs(mask)
    if not graph.size:
        return mask
    owner = np.full(mask.shape, -1, np.int64)
    owner[graph.ys, graph.xs] = runs
    _, (iy, ix) = ndi.distance_transform_edt(owner < 0, return_indices=True)
    pixel_run = np.where(mask, owner[iy, ix], -1)
    count = int(runs.max()) + 1
    if count <= 0:
        return mask
    keep = runs >= 0
    width = np.bincount(runs[keep], diameter_map(mask)[graph.ys, graph.xs][keep], count)
    width /= np.maximum(np.bincount(runs[keep], minlength=count), 1)
    sizes = np.bincount(pixel_run[pixel_run >= 0], minlength=count)
    area = int(np.count_nonzero(mask))
    wanted = 2.0 * area * loss / (1.0 + loss)  # Dice loss of removing n of A pixels: n / (2A - n)
    order = np.lexsort((rng.random(count), width))
    taken = order[: int(np.searchsorted(np.cumsum(sizes[order]), wanted)) + 1]
    drop = np.zeros(count + 1, bool)
    drop[taken] = True
    return mask & ~drop[pixel_run]  # pixel_run -1 indexes the extra False


def junctions(mask: np.ndarray, loss: float, rng: np.random.Generator) -> np.ndarray:
    """Every branch point cleared: a disc one pixel wider than the root's radius at each junction cluster."""
    import cv2

    graph, _, clusters = _runs(mask)
    if not clusters.any():
        return mask
    radius = diameter_map(mask)[graph.ys, graph.xs] / 2.0
    canvas = mask.astype(np.uint8)
    for cluster in range(1, int(clusters.max()) + 1):
        at = np.flatnonzero(clusters == cluster)
        y, x = int(round(graph.ys[at].mean())), int(round(graph.xs[at].mean()))
        cv2.circle(canvas, (x, y), int(np.ceil(radius[at].max())) + 1, 0, thickness=-1)
    return canvas.astype(bool)


def speckle(mask: np.ndarray, loss: float, rng: np.random.Generator) -> np.ndarray:
    """n isolated false pixels on the background, n = 2 A loss / (1 - loss) (Dice loss of n false positives)."""
    background = np.flatnonzero(~mask.ravel())
    wanted = int(round(2.0 * np.count_nonzero(mask) * loss / (1.0 - loss)))
    out = mask.copy().ravel()
    out[rng.choice(background, size=min(wanted, background.size), replace=False)] = True
    return out.reshape(mask.shape)


def blobs(mask: np.ndarray, loss: float, rng: np.random.Generator) -> np.ndarray:
    """False discs of 3-8 px radius at random places until their new pixels reach the Dice loss."""
    import cv2

    height, width = mask.shape
    wanted = 2.0 * np.count_nonzero(mask) * loss / (1.0 - loss)
    canvas = mask.astype(np.uint8)
    added = 0
    for _ in range(100_000):
        if added >= wanted:
            break
        y, x, radius = int(rng.integers(height)), int(rng.integers(width)), int(rng.integers(3, 9))
        window = np.s_[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1]
        before = int(np.count_nonzero(canvas[window]))
        cv2.circle(canvas, (x, y), radius, 1, thickness=-1)
        added += int(np.count_nonzero(canvas[window])) - before
    return canvas.astype(bool)


_FUNCTIONS: dict[str, Callable[[np.ndarray, float, np.random.Generator], np.ndarray]] = {
    "dilation": dilation,
    "erosion": erosion,
    "dropout": dropout,
    "junctions": junctions,
    "speckle": speckle,
    "blobs": blobs,
}


def degrade(mask: np.ndarray, failure: str, loss: float, seed: int = 0) -> tuple[np.ndarray, float]:
    """The mask damaged by `failure` (one of `FAILURES`) to about Dice loss `loss`, and the loss reached."""
    if failure not in _FUNCTIONS:
        raise ValueError(f"unknown failure {failure!r}; the failures are {list(FAILURES)}")
    if not 0 < loss < 1:
        raise ValueError(f"a Dice loss must lie in (0, 1), got {loss}")
    mask = np.asarray(mask, dtype=bool)
    damaged = _FUNCTIONS[failure](mask, loss, np.random.default_rng(seed))
    return damaged, 1.0 - dice(mask, damaged)
