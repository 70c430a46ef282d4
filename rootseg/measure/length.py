"""Root length and root intensity from masks: the quantities root scientists compare against.

Two length estimators over the skeleton of a mask:

- ``method="pixels"``: the skeleton pixel count, as Smith et al. (2020) measured it. A diagonal run of n
  pixels spans n * sqrt(2), so diagonal roots are under-estimated by up to 29 %.
- ``method="corrected"`` (default): Kimura et al. (1999) applied to every unbranched skeleton segment
  (junction pixels split the skeleton; their own links count 1 or sqrt(2)). Plain 8-neighbour step
  counting (1 per orthogonal, sqrt(2) per diagonal link) over-estimates lines near 22.5 deg by up to 8 %
  (the chain-code bias); Kimura's formula removes most of it. Applying the formula to the whole skeleton
  at once would mix orientations (a 0 deg and a 45 deg root together come out 5 % short), hence
  per segment.

Measured on lines drawn with ``cv2.line`` (round caps) at 0-90 deg in 5 deg steps, widths 3-9 px and
lengths 200-600 px, plus arcs, a sine curve and a 7-branch star: the corrected estimate is within
+3.4 % / -1.5 % of the drawn centre-line length (arcs within 1.4 %, sine +2 %, star +1.9 %); the
pixel count is 10-29 % short on anything not axis-aligned.

Ends: scikit-image's skeleton runs into a rounded root tip to within ~1-2 px of its apex, and to within
~w/2 - 1 px of an image border, so no end correction is applied by default: adding the tip radius from
the distance transform (``tips=True``) measures tip-to-tip (including the round caps) and over-estimates
the drawn centre line by up to ~8 % on short thick lines. Use it when roots are thick relative to their
length and you want the apex-to-apex length.
"""

from __future__ import annotations

import numpy as np

from rootseg.measure.diameter import edge_distances
from rootseg.measure.skeleton import SkeletonGraph, skeletonize_mask

# skeleton_length methods: orientation-corrected (Kimura et al. 1999, the default) or Smith's pixel count
LENGTH_METHODS: tuple[str, ...] = ("corrected", "pixels")


def as_mask(mask: np.ndarray) -> np.ndarray:
    """Boolean root mask from bool, 0/1 or {0, 1, 255 unlabelled}: integer masks are labels, 1 = root.

    A 0/255 image file must go through `rootseg.io.masks.read_mask` (or be passed as `mask > 0`) first.
    """
    return root_and_labelled(mask)[0]


def root_and_labelled(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Root pixels and labelled pixels of a bool mask (all labelled) or an integer label mask (255 unlabelled)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    if mask.dtype == bool:
        return mask, np.ones(mask.shape, bool)
    if not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(f"expected a boolean or integer label mask, got {mask.dtype}; threshold it first")
    values = np.unique(mask)
    if not np.isin(values, (0, 1, 255)).all():
        raise ValueError(f"label mask values must be 0, 1 or 255 (unlabelled), got {values[:10].tolist()}")
    return mask == 1, mask != 255


def _tip_radii(mask: np.ndarray, graph: SkeletonGraph) -> float:
    """The root's radius (centre to nearest background pixel centre) summed over the skeleton's ends."""
    ends = graph.neighbours() == 1
    return float(edge_distances(mask, graph.ys[ends], graph.xs[ends])[1].sum())


def skeleton_length(
    mask: np.ndarray,
    method: str = "corrected",
    mm_per_pixel: float | None = None,
    tips: bool = False,
) -> float:
    """Total root length of a mask (px, or mm when `mm_per_pixel` is given); see the module notes.

    `mask` is boolean, 0/1, or {0, 1, 255} with 255 unlabelled (not counted as root).
    """
    if method not in LENGTH_METHODS:
        raise ValueError(f"method must be one of {LENGTH_METHODS}, got {method!r}")
    mask = as_mask(mask)
    if not mask.any():
        return 0.0
    graph = SkeletonGraph.from_skeleton(skeletonize_mask(mask))
    length = float(graph.size) if method == "pixels" else graph.corrected_length()
    if tips:
        length += _tip_radii(mask, graph)
    return length * mm_per_pixel if mm_per_pixel is not None else length
