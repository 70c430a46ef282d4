"""Masks RhizoVision Explorer reads as they are: 8-bit grey, root black (0), background white (255).

RhizoVision Explorer (Seethepalli et al. 2021; predictivephenomics/RhizoVisionExplorer) counts pixels darker
than its threshold (default 200, MainUI.h) as root. RootPainter's `convert_seg_to_rve`
(Abe404/root_painter, painter/src/main/python/convert_seg.py) writes `img_as_ubyte(seg[:, :, 2] == 0)`: the
same polarity. Lossless PNG or TIFF only: JPEG would blur the edges into grey.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rootseg.io.arrays import as_mask
from rootseg.io.atomic import write_image

RVE_SUFFIXES = (".png", ".tif", ".tiff")


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
