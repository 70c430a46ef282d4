"""Folders derived from ../shared/datasets/segroot for the SegRoot study, written under logs/ (never the repo).

- `val_images/`: symlinks to the 13 val images (input for `rootseg-predict`);
- `dilated1/`: images symlinked, masks widened by one pixel (3x3 dilation of root = grey > 127), split.json
  copied: the masks SegRoot's own evaluation scores against (`binarize_crop.py --dilate 1`), so a Dice
  comparable with its published 0.6441 can be reported beside the one on the masks as shipped.

    python experiments/segroot/derived_sets.py logs/segroot
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
SEGROOT = Path(os.environ.get("ROOTSEG_SHARED", REPO.parent / "shared")) / "datasets" / "segroot"


def _link(target: Path, link: Path) -> None:
    if not link.exists():
        link.symlink_to(target.resolve())


def write(out: Path, segroot: Path = SEGROOT) -> None:
    split = json.loads((segroot / "split.json").read_text())
    val_images = out / "val_images"
    val_images.mkdir(parents=True, exist_ok=True)
    for stem in split["val"]:
        _link(segroot / "images" / f"{stem}.jpg", val_images / f"{stem}.jpg")

    dilated = out / "dilated1"
    (dilated / "images").mkdir(parents=True, exist_ok=True)
    (dilated / "masks").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(segroot / "split.json", dilated / "split.json")
    kernel = np.ones((3, 3), np.uint8)
    for image in sorted((segroot / "images").glob("*.jpg")):
        _link(image, dilated / "images" / image.name)
        mask_out = dilated / "masks" / f"{image.stem}-mask.png"
        if mask_out.exists():
            continue
        grey = cv2.imread(str(segroot / "masks" / f"{image.stem}-mask.jpg"), cv2.IMREAD_GRAYSCALE)
        root = (grey > 127).astype(np.uint8)
        cv2.imwrite(str(mask_out), cv2.dilate(root, kernel, iterations=1) * 255)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    write(parser.parse_args().out)
