"""Masks in any encoding a user brings -> uint8 {0 background, 1 root, 255 unlabelled}, and image/mask pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rootseg.io.images import ImageReadError, LazyImage, _load_array, open_image, read_image, to_uint8
from rootseg.io.rootpainter import decode_rootpainter_annotation, is_rootpainter_colours


def decode_mask(array: np.ndarray, threshold: int = 127, path: Path | str = "<array>") -> np.ndarray:
    """Turn any mask encoding into uint8 {0 background, 1 root, 255 unlabelled}.

    Handles boolean, 0/1, 0/255, grey or RGB JPEG (thresholded, lossy edges) and RootPainter RGBA
    annotations (red = root, green = background, transparent = unlabelled). An annotation is recognised
    by transparency (any alpha < 255) or, when every pixel is opaque (a fully painted annotation, or one
    saved without alpha), by its colours (`is_rootpainter_colours`); any other RGB mask is read by its
    brightest channel, so white root on black, grey and JPEG masks keep their meaning.
    """
    if array.dtype == bool:
        return array.astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 4 and (array[:, :, 3] < 255).any():
        return decode_rootpainter_annotation(array)
    if is_rootpainter_colours(array):
        if array.shape[2] == 3:
            array = np.dstack([array, np.full(array.shape[:2], 255, np.uint8)])
        return decode_rootpainter_annotation(array)
    if array.ndim == 3:
        array = array[:, :, :3].max(axis=2)
    if array.ndim != 2:
        raise ImageReadError(f"{path}: a mask must be 2-D or RGB(A), got shape {array.shape}")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise ImageReadError(f"{path}: mask holds NaN or infinite values")
    top = array.max(initial=0)
    if top <= 1:
        return (array > 0).astype(np.uint8)
    if array.dtype != np.uint8:
        array = to_uint8(array, path)
    return (array > threshold).astype(np.uint8)


def read_mask(path: Path | str, threshold: int = 127) -> np.ndarray:
    """Read a mask file as uint8 {0, 1, 255}; see `decode_mask` for the encodings understood."""
    return decode_mask(_load_array(Path(path)), threshold=threshold, path=path)


#: share of an image's pixels that may be mid-grey (32-223) in a mask read as binary (JPEG edges); a photo has most
MAX_MID_GREY_SHARE = 0.10


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
