"""How unsure a model is about an image, from its root probability map: the order a person should annotate in.

Corrective annotation (Smith et al. 2022, RootPainter) pays off most on the images the model gets wrong, and a
model is usually wrong where it hesitates. Two pure scores, each a share of the image's pixels in [0, 1]:

- `ambiguous_fraction`: pixels whose probability lies within `margin` of the threshold (|p - t| < margin).
  It estimates how many pixels a person may have to paint, so it follows annotation effort rather than
  root area: an image of confidently segmented thick roots scores low, one of faint fine roots high.
- `flip_disagreement`: pixels whose thresholded class differs between predictions of the same image
  (the image and its flips, each flipped back, as test-time augmentation makes them). It catches confident
  but unstable decisions that the first score misses, at the cost of one more prediction per flip.

`uncertainty_score` is the first, or the mean of both when flipped predictions are given (predict writes it
to results.csv and ranked.csv; the annotate app orders its queue by it);
`rank_by_uncertainty` orders images most uncertain first. Nothing here reads files or runs a model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

#: half-width of the "ambiguous" band around the threshold: with t = 0.5, probabilities in (0.25, 0.75)
DEFAULT_MARGIN = 0.25
_BLOCK_VALUES = 1 << 22


def _check_probs(probs: np.ndarray, what: str = "probabilities") -> np.ndarray:
    array = np.asarray(probs)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"{what} must be a non-empty (H, W) map, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{what} must be floats in [0, 1], got dtype {array.dtype} (divide 0-255 maps by 255)")
    low, high = array.min(), array.max()  # NaN propagates into both: no full-size copy for the check
    if not (low >= 0.0 and high <= 1.0):
        raise ValueError(f"{what} must be finite and in [0, 1] (got min {low}, max {high})")
    return array


def _check_threshold(threshold: float) -> float:
    if not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    return float(threshold)


def ambiguous_fraction(probs: np.ndarray, threshold: float = 0.5, margin: float = DEFAULT_MARGIN) -> float:
    """Share of pixels with |p - threshold| < margin: the pixels the model could easily have called either way."""
    array = _check_probs(probs)
    threshold = _check_threshold(threshold)
    if not 0.0 < float(margin) <= 0.5:
        raise ValueError(f"margin must be in (0, 0.5], got {margin}")
    rows = max(1, _BLOCK_VALUES // array.shape[1])  # row blocks: a gigapixel map gets no float copy
    count = sum(
        int(np.count_nonzero(np.abs(array[start : start + rows] - threshold) < margin))
        for start in range(0, array.shape[0], rows)
    )
    return count / array.size


def flip_disagreement(maps: Sequence[np.ndarray], threshold: float = 0.5) -> float:
    """Share of pixels where the masks `p >= threshold` of aligned predictions (flips flipped back) differ."""
    if len(maps) < 2:
        raise ValueError(f"flip_disagreement needs at least two aligned probability maps, got {len(maps)}")
    threshold = _check_threshold(threshold)
    masks = [_check_probs(m, f"map {i}") >= threshold for i, m in enumerate(maps)]
    shape = masks[0].shape
    if any(m.shape != shape for m in masks):
        raise ValueError(f"the maps must share one shape, got {[m.shape for m in masks]}")
    stack = np.stack(masks)
    return float(np.count_nonzero(stack.any(0) & ~stack.all(0)) / stack[0].size)


def uncertainty_score(
    probs: np.ndarray,
    threshold: float = 0.5,
    margin: float = DEFAULT_MARGIN,
    flips: Sequence[np.ndarray] | None = None,
) -> float:
    """`ambiguous_fraction(probs)`; with `flips` (aligned predictions of flipped copies) the mean of it and
    `flip_disagreement([probs, *flips])`. In [0, 1]; higher = a person should look at the image sooner."""
    score = ambiguous_fraction(probs, threshold, margin)
    if flips:
        score = 0.5 * (score + flip_disagreement([probs, *flips], threshold))
    return score


def rank_by_uncertainty(scores: Mapping[str, float | None]) -> list[str]:
    """Names most uncertain first; ties by name; names without a score (None or NaN: not scored yet) last."""

    def key(name: str) -> tuple[int, float, str]:
        score = scores[name]
        missing = score is None or math.isnan(score)
        return (1 if missing else 0, 0.0 if missing else -float(score), name)

    return sorted(scores, key=key)
