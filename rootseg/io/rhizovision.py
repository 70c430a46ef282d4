"""Masks RhizoVision Explorer reads as they are: 8-bit grey, root black (0), background white (255).

RhizoVision Explorer (Seethepalli et al. 2021; predictivephenomics/RhizoVisionExplorer) counts pixels darker
than its threshold (default 200, MainUI.h) as root. RootPainter's `convert_seg_to_rve`
(Abe404/root_painter, painter/src/main/python/convert_seg.py) writes `img_as_ubyte(seg[:, :, 2] == 0)`: the
same polarity. Lossless PNG or TIFF only: JPEG would blur the edges into grey.

Read back (`rootseg.measure` on predict's outputs), a file named `<stem>_rve.png|tif` is such a mask: root where
dark. Read as an ordinary mask (root bright) it would measure the background.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rootseg.io.arrays import as_mask
from rootseg.io.atomic import write_image
from rootseg.io.images import ImageReadError
from rootseg.io.masks import read_binary_mask

RVE_SUFFIXES = (".png", ".tif", ".tiff")
#: the end of the stem of predict's RhizoVision output, `<stem>_rve.png`
RVE_STEM_END = "_rve"


def rhizovision_mask(mask: np.ndarray) -> np.ndarray:
    """A boolean (or 0/1) root mask as RhizoVision Explorer reads it: uint8, root 0, background 255."""
    return np.where(as_mask(mask), np.uint8(0), np.uint8(255))


def write_rhizovision_mask(path: Path | str, mask: np.ndarray) -> Path:
    """Write `rhizovision_mask(mask)` atomically as a grey PNG or TIFF."""
    path = Path(path)
    if path.suffix.lower() not in RVE_SUFFIXES:
        raise ValueError(
            f"{path}: RhizoVision Explorer masks must be lossless; use a .png or .tif name, not {path.suffix!r}"
        )
    return write_image(path, rhizovision_mask(mask))


def is_rhizovision_name(path: Path | str) -> bool:
    """`a_rve.png`, `a_rve.tif`: the name predict gives its RhizoVision Explorer masks (root black on white)."""
    path = Path(path)
    return path.stem.endswith(RVE_STEM_END) and path.suffix.lower() in RVE_SUFFIXES


def read_rhizovision_mask(path: Path | str, threshold: int = 127) -> np.ndarray:
    """A RhizoVision Explorer mask (root dark, background white) -> uint8 {0 background, 1 root, 255 unlabelled}:
    `read_binary_mask`'s reading with root and background swapped.

    A file whose dark part would be most of the image is refused: roots cover a few per cent of a scan, so it is
    more likely an ordinary mask (root white) that only carries the name, and guessing either way measures the
    wrong part."""
    labels = read_binary_mask(path, threshold)
    labels = np.where(labels == 255, labels, 1 - labels).astype(np.uint8)
    labelled = int(np.count_nonzero(labels != 255))
    root = int(np.count_nonzero(labels == 1))
    if labelled and root * 2 > labelled:
        raise ImageReadError(
            f"{path}: named like a RhizoVision Explorer mask (a stem ending in {RVE_STEM_END}: root black on white), "
            f"but {100 * root / labelled:.0f} % of it is dark, and roots are rarely most of an image; if roots are "
            f"white in this file, rename it so its stem does not end in {RVE_STEM_END}"
        )
    return labels
