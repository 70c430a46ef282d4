"""The one skeleton every rootseg measurement reads (length, traits), and its pixels as a graph.

- `skeletonize_mask` thins with scikit-image's default (Zhang) method, as RootPainter and Smith et al. measure,
  repaired where it fails: Zhang's thinning in scikit-image 0.26 deletes half of some roots near 45 deg, some
  wholly (issues 6321, 7704; 30 of 152 roots at 45 +- 0.5 deg lost over 10 %). Lee's thinning keeps them but
  reads roots cut by the frame or by soil grains about a width shorter (generated scans: 0.87 of the true
  length where Zhang reads 0.94; benchmarks/skeleton_method.py). So each connected root keeps Zhang's skeleton
  unless it holds fewer than `REPAIR_SHARE` of Lee's skeleton pixels there, where Zhang lost part of it: that
  root takes Lee's.
- `fill_pinholes` closes enclosed background of a few pixels, for the traits: a pinhole in a root
  (anti-aliasing at a fork, a speck in a prediction) thins into a loop, two false branch points.
- `SkeletonGraph` holds only the skeleton's pixels and their 8-neighbour links, found by binary search in the
  pixels' sorted flat indices, so lengths, ends and junctions cost time and memory in proportion to the
  skeleton (about 1 % of a scan), not to the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

SQRT2 = math.sqrt(2.0)
#: a connected root whose Zhang skeleton holds fewer pixels than this share of Lee's lost part of it
REPAIR_SHARE = 0.95
#: enclosed background up to this many pixels is filled before the traits' thinning (`fill_pinholes`); 0: none
DEFAULT_MAX_HOLE_PX = 4
_EIGHT = np.ones((3, 3), dtype=bool)
# (dy, dx) of the four forward neighbours: each link between two skeleton pixels is found exactly once
_FORWARD = ((0, 1), (1, 0), (1, 1), (1, -1))


def fill_pinholes(root: np.ndarray, max_hole_px: int = DEFAULT_MAX_HOLE_PX) -> np.ndarray:
    """Fill enclosed background of at most `max_hole_px` pixels (4-connected, not touching the image edge)."""
    if max_hole_px <= 0 or not root.any():
        return root
    holes, count = ndi.label(~root)
    if count == 0:
        return root  # (one component may be a hole: a root can cover the whole frame)
    small = np.bincount(holes.ravel(), minlength=count + 1) <= max_hole_px
    small[0] = False
    small[np.concatenate([holes[0], holes[-1], holes[:, 0], holes[:, -1]])] = False  # open soil, not a hole
    return root | small[holes] if small.any() else root


def skeletonize_mask(mask: np.ndarray) -> np.ndarray:
    """The one-pixel skeleton of a boolean mask: Zhang's, Lee's on connected roots where Zhang's lost pixels."""
    from skimage.morphology import skeletonize

    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.zeros(mask.shape, bool)
    zhang, lee = skeletonize(mask), skeletonize(mask, method="lee")
    if not (lee & ~ndi.binary_dilation(zhang, structure=_EIGHT)).any():
        return zhang  # Lee's skeleton runs within a pixel of Zhang's everywhere: nothing lost (the usual case)
    labels, count = ndi.label(mask, structure=_EIGHT)
    lost = np.bincount(labels[zhang], minlength=count + 1) < REPAIR_SHARE * np.bincount(
        labels[lee], minlength=count + 1
    )
    lost[0] = False
    if not lost.any():
        return zhang
    take = lost[labels]
    return (zhang & ~take) | (lee & take)


def kimura(orthogonal: np.ndarray, diagonal: np.ndarray) -> np.ndarray:
    """Kimura, Kikuchi & Yamasaki 1999 (Plant and Soil 216:117-127): L = sqrt(Nd^2 + (Nd + No/2)^2) + No/2."""
    return np.sqrt(diagonal**2 + (diagonal + orthogonal / 2.0) ** 2) + orthogonal / 2.0


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected component of each of n nodes joined by the links a-b."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(a.size, np.int8), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


@dataclass
class SkeletonGraph:
    """Skeleton pixels (`ys`, `xs`, in `np.nonzero` order) and every 8-neighbour link once (`a` -> `b`)."""

    shape: tuple[int, int]
    ys: np.ndarray
    xs: np.ndarray
    a: np.ndarray
    b: np.ndarray
    diagonal: np.ndarray  # per link: True for a diagonal step (sqrt 2), False for an orthogonal one

    @classmethod
    def from_skeleton(cls, skeleton: np.ndarray) -> SkeletonGraph:
        skeleton = np.asarray(skeleton, dtype=bool)
        ys, xs = np.nonzero(skeleton)
        parts = [cls._neighbours(skeleton.shape, ys, xs, dy, dx) for dy, dx in _FORWARD]
        a = np.concatenate([p[0] for p in parts])
        b = np.concatenate([p[1] for p in parts])
        diagonal = np.concatenate([np.full(p[0].size, dy != 0 and dx != 0) for p, (dy, dx) in zip(parts, _FORWARD)])
        return cls(skeleton.shape, ys, xs, a, b, diagonal)

    @staticmethod
    def _neighbours(shape: tuple[int, int], ys: np.ndarray, xs: np.ndarray, dy: int, dx: int) -> tuple:
        """(index of a pixel, index of its neighbour at (dy, dx)) for every pixel that has one."""
        height, width = shape
        flat = ys.astype(np.int64) * width + xs
        inside = (ys + dy >= 0) & (ys + dy < height) & (xs + dx >= 0) & (xs + dx < width)
        source = np.flatnonzero(inside)
        target = flat[source] + dy * width + dx
        found = np.searchsorted(flat, target)
        hit = found < flat.size
        hit[hit] = flat[found[hit]] == target[hit]
        return source[hit], found[hit]

    @property
    def size(self) -> int:
        return int(self.ys.size)

    def neighbours(self) -> np.ndarray:
        """Number of 8-neighbours of each skeleton pixel."""
        return np.bincount(self.a, minlength=self.size) + np.bincount(self.b, minlength=self.size)

    def _segments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Unbranched segments (pixels with more than two neighbours split them): per link whether it lies
        within a segment, the segment of each pixel, and orthogonal and diagonal link counts per segment."""
        core = self.neighbours() <= 2
        inside = core[self.a] & core[self.b]
        labels = _components(self.size, self.a[inside], self.b[inside])
        count = int(labels.max()) + 1 if self.size else 0
        within = labels[self.a[inside]]
        orthogonal = np.bincount(within[~self.diagonal[inside]], minlength=count).astype(np.float64)
        diagonal = np.bincount(within[self.diagonal[inside]], minlength=count).astype(np.float64)
        return inside, labels, orthogonal, diagonal

    def corrected_length(self) -> float:
        """Kimura's length of every unbranched segment plus the junctions' own links (1 or sqrt 2 each), px."""
        inside, _, orthogonal, diagonal = self._segments()
        junction = self.diagonal[~inside]
        return float(kimura(orthogonal, diagonal).sum() + np.count_nonzero(~junction) + SQRT2 * junction.sum())

    def pixel_lengths(self) -> np.ndarray:
        """The length each skeleton pixel carries: half of each of its links, links within a segment scaled by
        that segment's Kimura / chain-code ratio, so the sum is `corrected_length`."""
        inside, labels, orthogonal, diagonal = self._segments()
        chain = orthogonal + SQRT2 * diagonal
        factor = np.divide(kimura(orthogonal, diagonal), chain, out=np.ones_like(chain), where=chain > 0)
        half = 0.5 * np.where(self.diagonal, SQRT2, 1.0) * np.where(inside, factor[labels[self.a]], 1.0)
        return np.bincount(self.a, half, self.size) + np.bincount(self.b, half, self.size)

    def branches(self) -> np.ndarray:
        """Branches at each pixel: 8-neighbours, less a diagonal one that a shared 4-neighbour already joins
        (so a staircase corner is not a junction). Ends have one, junction pixels three or more."""
        count = np.zeros(self.size, np.int64)
        orthogonal = {}
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            has = np.zeros(self.size, bool)
            has[self._neighbours(self.shape, self.ys, self.xs, dy, dx)[0]] = True
            orthogonal[dy, dx] = has
            count += has
        for dy, dx in ((-1, -1), (-1, 1), (1, -1), (1, 1)):
            has = np.zeros(self.size, bool)
            has[self._neighbours(self.shape, self.ys, self.xs, dy, dx)[0]] = True
            count += has & ~(orthogonal[dy, 0] | orthogonal[0, dx])
        return count

    def ends_and_junctions(self) -> tuple[np.ndarray, np.ndarray]:
        """Per pixel: whether it is an end, and its junction cluster (touching junction pixels form one;
        0: not a junction, else 1..k)."""
        branches = self.branches()
        junction = branches >= 3
        both = junction[self.a] & junction[self.b]
        clusters = _components(self.size, self.a[both], self.b[both])
        labels = np.zeros(self.size, np.int64)
        if junction.any():
            _, labels[junction] = np.unique(clusters[junction], return_inverse=True)
            labels[junction] += 1
        return branches == 1, labels
