"""Robust measurement: what a mask's typical segmentation errors do to its traits, undone before measuring.

RhizoVision Explorer (Seethepalli et al. 2021) filters small non-root objects, fills small holes and prunes
skeleton tips shorter than the local root diameter plus a few pixels; rootseg does the same, and also joins
skeleton ends that face each other across a small gap (a root broken by a missed junction or a thin eroded
stretch) and may leave out a band along the image border (a frame drawn into some annotations). The order:

1. the border band becomes unlabelled (`border_px`);
2. 8-connected components under `min_component_px` pixels are dropped (speckle, small blobs);
3. enclosed background up to `max_hole_px` pixels is filled (`rootseg.measure.skeleton.fill_pinholes`);
4. facing skeleton ends at most `bridge_gap_px` apart are joined in the mask (`rootseg.measure.bridge`);
5. skeleton spurs shorter than the diameter at their junction plus `prune_px` are cut
   (`rootseg.measure.prune`; None: none).

`Cleaning()` holds rootseg's defaults (`conf/measure/default.yaml` `clean:`), chosen on SegRoot's 39 train
masks so that on undamaged masks they change length by under 1 % and tips and branch points by under 10 %
(benchmarks/trait_robustness.py, benchmarks/RESULTS.md). `RAW` leaves a mask as it is but for pinholes
(the library's `pixel_traits` default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from rootseg.measure.skeleton import DEFAULT_MAX_HOLE_PX, fill_pinholes

_EIGHT = np.ones((3, 3), dtype=bool)


def _check_size(key: str, value: Any, allow_none: bool = False) -> float | None:
    """A setting in pixels: a finite number >= 0 (or None where that switches the step off)."""
    if value is None and allow_none:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    if not ok:
        off = " or null (off)" if allow_none else ""
        raise ValueError(f"clean.{key} must be a number of pixels >= 0{off}, got {value!r}")
    return value


@dataclass(frozen=True)
class Cleaning:
    """The robust-measurement settings (px); see the module notes. 0 switches a step off (None for pruning)."""

    min_component_px: int = 30
    max_hole_px: int = DEFAULT_MAX_HOLE_PX
    prune_px: float | None = 2.0
    bridge_gap_px: float = 8.0
    border_px: int = 0

    def __post_init__(self) -> None:
        for field in fields(self):
            _check_size(field.name, getattr(self, field.name), allow_none=field.name == "prune_px")
        for key in ("min_component_px", "max_hole_px", "border_px"):
            if int(getattr(self, key)) != getattr(self, key):
                raise ValueError(f"clean.{key} must be a whole number of pixels, got {getattr(self, key)!r}")

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None) -> Cleaning:
        """From `clean:` of a config (missing keys keep the defaults); unknown keys are refused by name."""
        values = dict(values or {})
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown setting clean.{unknown[0]}; the clean settings are {sorted(known)}")
        return cls(**values)

    def check_image(self, shape: tuple[int, int]) -> None:
        """Settings that cannot fit an image of this size are errors, not silent no-ops."""
        height, width = shape
        if self.bridge_gap_px > math.hypot(height, width):
            raise ValueError(
                f"clean.bridge_gap_px={self.bridge_gap_px} is longer than the image ({height} x {width} px); "
                "give a gap of a few pixels"
            )
        if 2 * self.border_px >= min(height, width):
            raise ValueError(
                f"clean.border_px={self.border_px} leaves nothing of the image ({height} x {width} px); "
                "give a band narrower than half the image"
            )


RAW = Cleaning(min_component_px=0, prune_px=None, bridge_gap_px=0.0, border_px=0)


def border_band(shape: tuple[int, int], border_px: int) -> np.ndarray:
    """True inside the image less a band of `border_px` pixels along each edge."""
    inside = np.ones(shape, dtype=bool)
    if border_px > 0:
        inside[:border_px] = inside[-border_px:] = False
        inside[:, :border_px] = inside[:, -border_px:] = False
    return inside


def drop_small(root: np.ndarray, min_component_px: int) -> np.ndarray:
    """The mask without 8-connected components of fewer than `min_component_px` pixels."""
    if min_component_px <= 1 or not root.any():
        return root
    labels, count = ndi.label(root, structure=_EIGHT)
    keep = np.bincount(labels.ravel(), minlength=count + 1) >= min_component_px
    keep[0] = False
    return keep[labels]


def clean_root(root: np.ndarray, labelled: np.ndarray, cleaning: Cleaning) -> tuple[np.ndarray, np.ndarray]:
    """Steps 1-3 of the module notes: (root, labelled) without the border band and small components, holes
    filled. Returns the input arrays themselves where nothing changed."""
    cleaning.check_image(root.shape)
    if cleaning.border_px > 0:
        labelled = labelled & border_band(root.shape, cleaning.border_px)
        root = root & labelled
    root = drop_small(root, int(cleaning.min_component_px))
    return fill_pinholes(root, int(cleaning.max_hole_px)), labelled


def robust_root(
    root: np.ndarray, labelled: np.ndarray, cleaning: Cleaning
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every step of the module notes: (cleaned root, its skeleton, labelled pixels)."""
    from rootseg.measure.bridge import bridge_gaps
    from rootseg.measure.prune import prune_spurs
    from rootseg.measure.skeleton import skeletonize_mask

    root, labelled = clean_root(root, labelled, cleaning)
    skeleton = skeletonize_mask(root)
    bridged = bridge_gaps(root, skeleton, float(cleaning.bridge_gap_px))
    if bridged is not root:
        root = fill_pinholes(bridged & labelled, int(cleaning.max_hole_px))
        skeleton = skeletonize_mask(root)
    if cleaning.prune_px is not None:
        skeleton = prune_spurs(skeleton, root, float(cleaning.prune_px))
    return root, skeleton, labelled
