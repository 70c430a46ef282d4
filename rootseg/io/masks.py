"""Masks in any encoding a user brings -> uint8 {0 background, 1 root, 255 unlabelled}, and image/mask pairs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from rootseg.io.arrays import IGNORE_INDEX
from rootseg.io.images import ImageReadError, LazyImage, _load_array, open_image, read_image, to_uint8
from rootseg.io.rootpainter import decode_rootpainter_annotation, is_red_strokes, is_rootpainter_colours


def decode_mask(array: np.ndarray, threshold: int = 127, path: Path | str = "<array>") -> np.ndarray:
    """Turn any mask encoding into uint8 {0 background, 1 root, 255 unlabelled}, by these rules (README,
    "Train on your own images"); what none of them reads unambiguously is refused with the rule:

    1. boolean: True is root.
    2. with transparency (grey+alpha or RGBA, some pixel not opaque; palettes become their colours):
       RootPainter's colours (`is_rootpainter_colours`; or red strokes alone): red root, green background,
       transparent unlabelled. Otherwise a root layer: painted pixels that are all bright or all dark (one
       colour on transparency) are root where at least half as opaque as the most opaque, the rest is
       background. Bright and dark painted pixels together with transparency: refused (is transparent
       background, or unlabelled?).
    3. opaque (alpha dropped): RootPainter's colours as above, else the brightest channel as grey levels.
    4. grey levels (`decode_levels`): two levels, one of them 0, make the other root whatever its value;
       integer 0/1 masks are read as they are; otherwise root where > `threshold` after scaling to 0-255
       (16-bit by bit depth, floats in [0, 1] x 255). Negative, NaN and float values above 255 are refused.
    """
    array = np.asarray(array)
    if array.dtype == bool:
        return array.astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return decode_levels(array, threshold, path)
    if array.ndim != 3 or array.shape[2] not in (2, 3, 4):
        raise ImageReadError(f"{path}: a mask must be grey, grey+alpha, RGB or RGBA, got shape {array.shape}")
    if array.dtype != np.uint8:
        _check_range(array, path)
        array = to_uint8(array, path)  # 16-bit or float colour: scaled as images are
    if array.shape[2] in (2, 4):
        if (array[:, :, -1] < 255).any():
            return _decode_transparent(array, threshold, path)
        array = array[:, :, :-1]
    if array.shape[2] == 3 and is_rootpainter_colours(array):
        return decode_rootpainter_annotation(np.dstack([array, np.full(array.shape[:2], 255, np.uint8)]))
    return decode_levels(array.max(axis=2), threshold, path)


def _check_range(array: np.ndarray, path: Path | str) -> None:
    """NaN, infinite and negative values have no reading as a mask."""
    if array.dtype == bool or np.issubdtype(array.dtype, np.unsignedinteger):
        return
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise ImageReadError(f"{path}: mask holds NaN or infinite values")
    low = array.min(initial=0)
    if low < 0:
        raise ImageReadError(
            f"{path}: mask holds negative values (down to {low:g}): logits or a signed difference, not a mask; "
            "save root probabilities in [0, 1], or root 1 (or 255) and background 0"
        )


def decode_levels(array: np.ndarray, threshold: int = 127, path: Path | str = "<array>") -> np.ndarray:
    """A grey (or brightest-channel) mask -> {0, 1}: two levels, one of them 0, make the other root (a dark
    root colour stays root); integer 0/1 as it is; else root where > threshold of 0-255 (`decode_mask`, 4)."""
    _check_range(array, path)
    high = array.max(initial=0)
    if high > 0 and array.min() == 0 and not ((array != 0) & (array != high)).any():
        return (array != 0).astype(np.uint8)  # {0, v}: v is root, whatever v
    if np.issubdtype(array.dtype, np.integer) and high <= 1:
        return (array > 0).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating) and high > 255:
        raise ImageReadError(
            f"{path}: float mask with values up to {high:g}: rootseg reads float masks as probabilities in [0, 1] "
            "or grey levels in [0, 255] (root where > threshold), or two levels 0 and v (v is root)"
        )
    if array.dtype != np.uint8:
        array = to_uint8(array, path)
    return (array > threshold).astype(np.uint8)


def _decode_transparent(array: np.ndarray, threshold: int, path: Path | str) -> np.ndarray:
    """A uint8 grey+alpha or RGBA mask with transparent pixels (`decode_mask`, rule 2)."""
    alpha = array[:, :, -1]
    if array.shape[2] == 4 and (is_rootpainter_colours(array) or is_red_strokes(array)):
        return decode_rootpainter_annotation(array)
    if not alpha.any():
        return np.full(alpha.shape, IGNORE_INDEX, np.uint8)  # nothing painted: nothing labelled
    solid = alpha > alpha.max() // 2
    bright = array[:, :, :-1].max(axis=2) > threshold
    n_bright = int(np.count_nonzero(solid & bright))
    n_dark = int(np.count_nonzero(solid & ~bright))
    if n_bright and n_dark:
        raise ImageReadError(
            f"{path}: ambiguous mask: it has transparent pixels, and {n_bright} bright and {n_dark} dark painted "
            "pixels, so transparent could mean background or unlabelled. rootseg reads transparency by rule: "
            "RootPainter's colours (red root, green background, transparent unlabelled), or one colour on "
            "transparency (painted = root, transparent = background). Save the mask without alpha (root white, "
            "background black) or in RootPainter's colours"
        )
    return solid.astype(np.uint8)


def read_mask(path: Path | str, threshold: int = 127) -> np.ndarray:
    """Read a mask file as uint8 {0, 1, 255}; see `decode_mask` for the encodings understood."""
    return decode_mask(_load_array(Path(path)), threshold=threshold, path=path)


#: share of an image's pixels that may be mid-grey (32-223) in a mask read as binary (JPEG edges); a photo has most
MAX_MID_GREY_SHARE = 0.10


def grey_level(threshold: float) -> int:
    """The grey level a mask pixel must exceed to be root, for a probability `threshold`: grey / 255 >= threshold,
    the rule predict thresholds its probabilities by (0.5 gives 127, the usual cut of a JPEG mask)."""
    return math.ceil(round(255 * threshold, 6)) - 1


def read_binary_mask(path: Path | str, threshold: int = 127) -> np.ndarray:
    """`read_mask` for a file that must be a binary mask (0/255, 0/1, JPEG of one, RootPainter's formats): a
    photo, an overlay or a grey image (more than 10 % of its pixels between 32 and 223) is refused by name, as
    thresholding it would measure noise."""
    array = _load_array(Path(path))
    painted = array.ndim == 3 and array.shape[2] == 4 and (array[:, :, 3] < 255).any()
    if not (array.dtype == bool or painted or is_rootpainter_colours(array)):
        grey = array[:, :, :3].max(axis=2) if array.ndim == 3 else array
        grey = to_uint8(grey, path) if grey.dtype != np.uint8 and grey.max(initial=0) > 1 else grey
        share = float(np.count_nonzero((grey > 32) & (grey < 224))) / max(grey.size, 1)
        if share > MAX_MID_GREY_SHARE:
            raise ImageReadError(
                f"{path}: not a binary mask ({share:.0%} of its pixels are mid-grey); a photo, an overlay or a "
                "probability map? Give masks: 0/255 or 0/1 images, RootPainter annotations or segmentations"
            )
    return decode_mask(array, threshold=threshold, path=path)


def read_pair(
    image_path: Path | str, mask_path: Path | str, threshold: int = 127, lazy: bool = False
) -> tuple[np.ndarray | LazyImage, np.ndarray]:
    """Read an image and its mask and check they describe the same pixels; `lazy`: an uncompressed TIFF image
    stays on disk (`open_image`), read tile by tile by the sliding window."""
    image = open_image(image_path) if lazy else read_image(image_path)
    mask = read_mask(mask_path, threshold)
    if image.shape[:2] != mask.shape:
        raise ImageReadError(
            f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} (WxH) but its image {image_path} is "
            f"{image.shape[1]}x{image.shape[0]}; masks must have the image's size"
        )
    return image, mask
