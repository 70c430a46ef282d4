"""rootseg: segment plant roots in soil images with RootSAM (SAM 2.1) and the Smith et al. 2020 U-Net."""

import os

# albumentations otherwise asks PyPI for a newer version on import (2 s, or a hang without network)
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"
