"""Predictions drawn over the photo, in the colours of `rootseg.figures.colours`.

Prediction only: root tinted cyan. Against a ground truth: true positives white, false positives red, false
negatives green; true negatives and unlabelled ground truth (value 255) keep the photo (an unlabelled pixel
predicted as root is tinted cyan, as without a truth).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rootseg.figures import colours
from rootseg.io.arrays import IGNORE_INDEX, as_mask, to_numpy
from rootseg.io.atomic import write_image


def _as_truth(truth, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth -> (root, labelled) boolean masks; integers are {0, 1, 255 = unlabelled}."""
    truth = to_numpy(truth)
    if truth.shape != shape:
        raise ValueError(f"truth has shape {truth.shape} but the prediction has shape {shape}")
    if truth.dtype == bool:
        return truth, np.ones(shape, dtype=bool)
    if not np.issubdtype(truth.dtype, np.integer):
        raise ValueError(f"truth must be boolean or integer {{0, 1, 255 = unlabelled}}, got dtype {truth.dtype}")
    labelled = truth != IGNORE_INDEX
    return labelled & (truth != 0), labelled


def overlay(image_rgb, mask, truth=None, alpha: float = 0.6) -> np.ndarray:
    """Prediction (and, with `truth`, its errors) drawn over the photo: (H, W, 3) uint8.

    Args:
        image_rgb: (H, W, 3) uint8 photo ((H, W) grey is accepted).
        mask: (H, W) predicted root, boolean or integer (non-zero = root).
        truth: optional (H, W) ground truth, boolean or integer {0, 1, 255 = unlabelled}. With it, true
            positives are white, false positives red and false negatives green; true negatives and
            unlabelled pixels keep the photo (an unlabelled pixel predicted as root is cyan).
        alpha: opacity of the colours, 1 paints them solid.
    """
    image = to_numpy(image_rgb)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image_rgb must be (H, W, 3) RGB, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"image_rgb must be uint8 (0-255), got dtype {image.dtype}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    mask = as_mask(mask)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask has shape {mask.shape} but the image is {image.shape[:2]} (H, W)")

    layers: list[tuple[np.ndarray, tuple[int, int, int]]]
    if truth is None:
        layers = [(mask, colours.PREDICTED)]
    else:
        root, labelled = _as_truth(truth, mask.shape)
        layers = [
            (mask & ~labelled, colours.PREDICTED),
            (mask & root, colours.TRUE_POSITIVE),
            (mask & labelled & ~root, colours.FALSE_POSITIVE),
            (~mask & root, colours.FALSE_NEGATIVE),
        ]
    out = image.astype(np.float32)
    for where, colour in layers:
        out[where] = (1.0 - alpha) * out[where] + alpha * np.asarray(colour, dtype=np.float32)
    return np.rint(out).astype(np.uint8)


def write_overlay(
    path: Path | str, image_rgb, mask, truth=None, alpha: float = 0.6, rows: int = 1024, **save_kwargs
) -> Path:
    """Write `overlay(...)` atomically (PNG, or JPEG with e.g. quality=90), drawn `rows` image rows at a time:
    no float32 copy of a whole scan (1.3 GB at 12000 x 9000); a LazyImage is read block by block."""
    mask = as_mask(mask)
    out = np.empty((*mask.shape, 3), np.uint8)
    for start in range(0, mask.shape[0], rows):
        stop = min(start + rows, mask.shape[0])
        block_truth = None if truth is None else to_numpy(truth)[start:stop]
        out[start:stop] = overlay(np.asarray(image_rgb[start:stop]), mask[start:stop], block_truth, alpha)
    return write_image(path, out, **save_kwargs)
