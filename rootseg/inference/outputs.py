"""The files predict writes for one image, each whole or not at all (`rootseg.io.atomic`).

- `<stem>.png`: the binary mask (0 background, 255 root), written last: it marks the image as done;
- `<stem>_rootpainter.png`: RootPainter's segmentation format (RGBA, cyan root), if `save_rootpainter`;
- `<stem>_overlay.jpg`: the prediction drawn over the photo, if `save_overlay`;
- `<stem>_prob.png` (grey 0-255) or `<stem>_prob.npy` (float32), if `save_probs` is png or npy;
- `<stem>_rve.png`: the mask as RhizoVision Explorer reads it (root black on white), if `rve`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rootseg.figures.overlay import write_overlay
from rootseg.io.atomic import write_image, write_npy
from rootseg.io.images import LazyImage, probability_to_uint8
from rootseg.io.masks import read_mask
from rootseg.io.rhizovision import write_rhizovision_mask
from rootseg.io.rootpainter import write_rootpainter_segmentation

SAVE_PROBS = ("none", "png", "npy")
#: what follows an image's stem in the names of its other outputs: an input named `<stem><suffix>.*` beside
#: `<stem>.*` would have its mask land on one of them (`rootseg.inference.jobs.check_output_names`)
EXTRA_SUFFIXES = ("_rootpainter", "_overlay", "_prob", "_rve")


def save_probs_mode(value: Any) -> str:
    mode = "none" if value in (None, False) else str(value).lower()
    if mode not in SAVE_PROBS:
        raise ValueError(f"save_probs must be one of {SAVE_PROBS}, got {value!r}")
    return mode


def output_paths(output: Path, stem: str, save_probs: str, rve: bool = False) -> dict[str, Path]:
    paths = {
        "mask": output / f"{stem}.png",
        "rootpainter": output / f"{stem}_rootpainter.png",
        "overlay": output / f"{stem}_overlay.jpg",
    }
    if save_probs != "none":
        paths["probs"] = output / f"{stem}_prob.{save_probs}"
    if rve:
        paths["rve"] = output / f"{stem}_rve.png"
    return paths


def write_extras(
    paths: dict[str, Path],
    image: np.ndarray | LazyImage,
    probs: np.ndarray,
    mask: np.ndarray,
    rootpainter: bool,
    overlay: bool,
) -> None:
    """Everything but the mask, which the caller writes last."""
    if "probs" in paths:
        if paths["probs"].suffix == ".npy":
            write_npy(paths["probs"], probs.astype(np.float32, copy=False))
        else:
            write_image(paths["probs"], probability_to_uint8(probs))
    if rootpainter:
        write_rootpainter_segmentation(paths["rootpainter"], mask)
    if overlay:
        write_overlay(paths["overlay"], image, mask, quality=90)
    if "rve" in paths:
        write_rhizovision_mask(paths["rve"], mask)


def write_rve_from_mask(paths: dict[str, Path]) -> None:
    """The RhizoVision Explorer mask of an image segmented earlier (`rve=true` added to a finished run)."""
    write_rhizovision_mask(paths["rve"], read_mask(paths["mask"]) == 1)


def write_mask(path: Path, mask: np.ndarray) -> None:
    write_image(path, mask.astype(np.uint8) * np.uint8(255))
