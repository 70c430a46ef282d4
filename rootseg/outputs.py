"""What predictions become on disk: RootPainter segmentation PNGs, probability maps and overlays.

RootPainter's segmentation format (Abe404/root_painter, `trainer/trainer.py`, `Trainer.segment_file`)::

    seg_alpha = np.zeros((h, w, 4)); seg_alpha[segmented > 0] = [0, 1.0, 1.0, 0.7]
    seg_alpha = (seg_alpha * 255).astype(np.uint8)   # saved as PNG

so root pixels are cyan (0, 255, 255) with alpha 178 (0.7 * 255 = 178.5, truncated) and every other pixel is
(0, 0, 0, 0). This differs from RootPainter *annotations* (red = root, green = background, transparent =
unlabelled), which `rootseg.data.io.decode_rootpainter_annotation` reads. A segmentation PNG is read back
by its alpha channel (`decode_rootpainter_segmentation`), as RootPainter's own root-length code does.

Overlay colours (`overlay`): prediction only: root tinted cyan (RootPainter's segmentation colour). Against
a ground truth: true positives yellow, false positives red, false negatives green, true negatives and
unlabelled ground truth (value 255) left as the photo (unlabelled pixels predicted as root are tinted cyan,
as without a truth).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rootseg.data.io import IGNORE_INDEX, write_image

ROOTPAINTER_SEGMENTATION_ROOT = (0, 255, 255, 178)  # RGBA of a root pixel in a RootPainter segmentation
ROOTPAINTER_SEGMENTATION_BACKGROUND = (0, 0, 0, 0)

PREDICTED_COLOUR = (0, 255, 255)  # cyan, root predicted (no truth, or truth unlabelled there)
TRUE_POSITIVE_COLOUR = (255, 255, 0)  # yellow
FALSE_POSITIVE_COLOUR = (255, 0, 0)  # red
FALSE_NEGATIVE_COLOUR = (0, 255, 0)  # green


def _to_numpy(array) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


def _as_mask(mask, name: str = "mask") -> np.ndarray:
    """A 2-D boolean root mask from bool or integer input (non-zero = root)."""
    mask = _to_numpy(mask)
    if mask.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) array, got shape {mask.shape}")
    if mask.dtype == bool:
        return mask
    if not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(
            f"{name} must be boolean or integer (non-zero = root), got dtype {mask.dtype}; "
            "threshold probabilities first, e.g. probs > 0.5"
        )
    return mask != 0


def _as_truth(truth, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth -> (root, labelled) boolean masks; integers are {0, 1, 255 = unlabelled}."""
    truth = _to_numpy(truth)
    if truth.shape != shape:
        raise ValueError(f"truth has shape {truth.shape} but the prediction has shape {shape}")
    if truth.dtype == bool:
        return truth, np.ones(shape, dtype=bool)
    if not np.issubdtype(truth.dtype, np.integer):
        raise ValueError(f"truth must be boolean or integer {{0, 1, 255 = unlabelled}}, got dtype {truth.dtype}")
    labelled = truth != IGNORE_INDEX
    return labelled & (truth != 0), labelled


def rootpainter_segmentation_rgba(mask) -> np.ndarray:
    """(H, W) root mask -> (H, W, 4) uint8 RootPainter segmentation: root (0, 255, 255, 178), else 0."""
    mask = _as_mask(mask)
    rgba = np.zeros((*mask.shape, 4), dtype=np.uint8)
    rgba[mask] = ROOTPAINTER_SEGMENTATION_ROOT
    return rgba


def decode_rootpainter_segmentation(rgba) -> np.ndarray:
    """RootPainter segmentation (H, W, 4) -> boolean root mask (alpha > 0), as RootPainter reads it."""
    rgba = _to_numpy(rgba)
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"a RootPainter segmentation is (H, W, 4) RGBA, got shape {rgba.shape}")
    return rgba[:, :, 3] > 0


def write_rootpainter_segmentation(path: Path | str, mask) -> Path:
    """Write a root mask as a RootPainter segmentation PNG (atomically)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: RootPainter segmentations are PNG files (RGBA), not {path.suffix!r}")
    return write_image(path, rootpainter_segmentation_rgba(mask))


def probability_to_uint8(probs) -> np.ndarray:
    """(H, W) probabilities in [0, 1] -> uint8 0-255 (rounded), for a grey probability PNG."""
    probs = _to_numpy(probs).astype(np.float32, copy=False)
    if probs.ndim != 2:
        raise ValueError(f"probabilities must be a 2-D (H, W) array, got shape {probs.shape}")
    if not np.isfinite(probs).all():
        raise ValueError("probabilities hold NaN or infinite values")
    return np.rint(np.clip(probs, 0.0, 1.0) * 255).astype(np.uint8)


def overlay(image_rgb, mask, truth=None, alpha: float = 0.6) -> np.ndarray:
    """Prediction (and, with `truth`, its errors) drawn over the photo: (H, W, 3) uint8.

    Args:
        image_rgb: (H, W, 3) uint8 photo ((H, W) grey is accepted).
        mask: (H, W) predicted root, boolean or integer (non-zero = root).
        truth: optional (H, W) ground truth, boolean or integer {0, 1, 255 = unlabelled}. With it, true
            positives are yellow, false positives red and false negatives green; true negatives and
            unlabelled pixels keep the photo (an unlabelled pixel predicted as root is cyan).
        alpha: opacity of the colours, 1 paints them solid.
    """
    image = _to_numpy(image_rgb)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image_rgb must be (H, W, 3) RGB, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"image_rgb must be uint8 (0-255), got dtype {image.dtype}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    mask = _as_mask(mask)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask has shape {mask.shape} but the image is {image.shape[:2]} (H, W)")

    layers: list[tuple[np.ndarray, tuple[int, int, int]]]
    if truth is None:
        layers = [(mask, PREDICTED_COLOUR)]
    else:
        root, labelled = _as_truth(truth, mask.shape)
        layers = [
            (mask & ~labelled, PREDICTED_COLOUR),
            (mask & root, TRUE_POSITIVE_COLOUR),
            (mask & labelled & ~root, FALSE_POSITIVE_COLOUR),
            (~mask & root, FALSE_NEGATIVE_COLOUR),
        ]
    out = image.astype(np.float32)
    for where, colour in layers:
        out[where] = (1.0 - alpha) * out[where] + alpha * np.asarray(colour, dtype=np.float32)
    return np.rint(out).astype(np.uint8)


def write_overlay(path: Path | str, image_rgb, mask, truth=None, alpha: float = 0.6, **save_kwargs) -> Path:
    """Write `overlay(...)` atomically (PNG, or JPEG with e.g. quality=90)."""
    return write_image(path, overlay(image_rgb, mask, truth, alpha), **save_kwargs)
