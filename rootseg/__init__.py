"""rootseg: segment plant roots in soil images with RootSAM (SAM 2.1) and the Smith et al. 2020 U-Net."""

import os
import warnings

# albumentations otherwise asks PyPI for a newer version on import (2 s, or a hang without network)
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

# Lightning 2.6 on torch 2.13 warns about its own pytree use on every run; nothing a user can act on
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")

__version__ = "0.1.0"
