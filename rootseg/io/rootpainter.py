"""RootPainter's two file formats, read and written as RootPainter does (Abe404/root_painter).

Annotations (what a person paints): RGBA, red = root, green = background, transparent = unlabelled.
Segmentations (what RootPainter's model writes, `Trainer.segment_file`): root (0, 255, 255, 178), everything
else (0, 0, 0, 0); read back by alpha, as RootPainter's own root-length code does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rootseg.io.arrays import IGNORE_INDEX, as_mask, to_numpy
from rootseg.io.atomic import write_image

#: RGBA of a root and a background pixel in a RootPainter annotation, as RootPainter paints them and as the
#: annotate app saves them; alpha 0 is unlabelled
ANNOTATION_ROOT = (255, 0, 0, 255)
ANNOTATION_BACKGROUND = (0, 255, 0, 255)
#: share of painted pixels allowed to be neither red, green nor dark in a RootPainter annotation (blended
#: brush edges); an ordinary white-on-black or grey mask has far more (all its root pixels)
ROOTPAINTER_OFF_COLOUR_TOLERANCE = 0.01


def encode_rootpainter_annotation(mask: np.ndarray) -> np.ndarray:
    """{0, 1, 255} mask -> (H, W, 4) uint8 RootPainter annotation: root red, background green, unlabelled
    transparent; `decode_rootpainter_annotation` reads it back exactly."""
    mask = np.asarray(mask)
    rgba = np.zeros((*mask.shape, 4), np.uint8)
    rgba[mask == 0] = ANNOTATION_BACKGROUND
    rgba[mask == 1] = ANNOTATION_ROOT
    return rgba


def colour_classes(array: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(red, green, dark) pixels of a uint8 RGB(A) array, the one rule for RootPainter's colours: red is
    R > 127 >= G, B (root), green G > 127 >= R, B (background), dark R, G, B <= 127; alpha is not looked at."""
    high = array[:, :, :3] > 127
    high_r, high_g, high_b = high[:, :, 0], high[:, :, 1], high[:, :, 2]
    return high_r & ~high_g & ~high_b, high_g & ~high_r & ~high_b, ~high.any(axis=2)


def is_red_strokes(rgba: np.ndarray) -> bool:
    """RootPainter root strokes alone: every painted pixel (alpha > 0) red or dark, some red."""
    painted = rgba[:, :, 3] > 0
    red, _, dark = colour_classes(rgba)
    return bool(np.any(painted & red)) and not np.any(painted & ~red & ~dark)


def is_rootpainter_colours(array: np.ndarray) -> bool:
    """Whether a uint8 RGB(A) mask is painted in RootPainter's annotation colours, whatever its alpha.

    Among painted pixels (alpha > 0; every pixel without alpha) a pixel is red if R > 127 >= G, B (root),
    green if G > 127 >= R, B (background), dark if R, G, B <= 127 (unlabelled, as transparent). It is a
    RootPainter annotation when green is present, at most `ROOTPAINTER_OFF_COLOUR_TOLERANCE` of the
    painted pixels are anything else (white, grey, yellow...), and red is present too unless (nearly) no
    pixel is dark (a fully painted annotation of an image without root is all green). So white root on
    black, grey, JPEG and red-on-black masks are not annotations (no green, or white pixels), nor is a
    green-on-black mask (dark pixels and no red): those are read by their brightest channel.
    """
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] not in (3, 4):
        return False
    painted = array[:, :, 3] > 0 if array.shape[2] == 4 else np.ones(array.shape[:2], bool)
    n_painted = int(np.count_nonzero(painted))
    red, green, dark = colour_classes(array)
    n_green = int(np.count_nonzero(painted & green))
    if n_painted == 0 or n_green == 0:
        return False
    n_red = int(np.count_nonzero(painted & red))
    n_dark = int(np.count_nonzero(painted & dark))
    tolerance = ROOTPAINTER_OFF_COLOUR_TOLERANCE * n_painted
    if n_painted - n_green - n_red - n_dark > tolerance:
        return False
    return n_red > 0 or n_dark <= tolerance


def decode_rootpainter_annotation(rgba: np.ndarray) -> np.ndarray:
    """RootPainter annotation PNG -> {0, 1, 255}: red = root, green = background, else unlabelled.

    A RootPainter *segmentation* (cyan root, transparent elsewhere) is recognised too: root where
    alpha > 0, background elsewhere, as RootPainter reads its own segmentations back.
    """
    alpha = rgba[:, :, 3] > 0
    painted = rgba[alpha]
    if painted.size and (painted[:, 0] <= 127).all() and (painted[:, 2] > 127).all():
        return alpha.astype(np.uint8)
    root = alpha & (rgba[:, :, 0] > 127)
    background = alpha & (rgba[:, :, 1] > 127) & ~root
    mask = np.full(rgba.shape[:2], IGNORE_INDEX, dtype=np.uint8)
    mask[background] = 0
    mask[root] = 1
    return mask


ROOTPAINTER_SEGMENTATION_ROOT = (0, 255, 255, 178)  # RGBA of a root pixel in a RootPainter segmentation


ROOTPAINTER_SEGMENTATION_BACKGROUND = (0, 0, 0, 0)


def rootpainter_segmentation_rgba(mask) -> np.ndarray:
    """(H, W) root mask -> (H, W, 4) uint8 RootPainter segmentation: root (0, 255, 255, 178), else 0."""
    mask = as_mask(mask)
    rgba = np.zeros((*mask.shape, 4), dtype=np.uint8)
    rgba[mask] = ROOTPAINTER_SEGMENTATION_ROOT
    return rgba


def decode_rootpainter_segmentation(rgba) -> np.ndarray:
    """RootPainter segmentation (H, W, 4) -> boolean root mask (alpha > 0), as RootPainter reads it."""
    rgba = to_numpy(rgba)
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"a RootPainter segmentation is (H, W, 4) RGBA, got shape {rgba.shape}")
    return rgba[:, :, 3] > 0


def write_rootpainter_segmentation(path: Path | str, mask) -> Path:
    """Write a root mask as a RootPainter segmentation PNG (atomically)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: RootPainter segmentations are PNG files (RGBA), not {path.suffix!r}")
    return write_image(path, rootpainter_segmentation_rgba(mask))
