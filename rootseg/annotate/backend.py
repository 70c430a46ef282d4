"""The one place the annotation app touches rootseg's internals (files, RootPainter projects, models).

Keeping every import of them in this adapter means a move inside rootseg changes this file only; the rest of
`rootseg.annotate` speaks plain numpy arrays, paths and the small `Model` below. Predictions and RootSAM's
click masks both come from `rootseg.inference.predictor.Predictor`, the object `rootseg.predict` and
`rootseg.eval` use, so the app shows exactly the masks predict writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from rootseg.figures.colours import ANNOTATE_PREDICTED
from rootseg.inference.predictor import Predictor
from rootseg.inference.settings import InferenceSettings
from rootseg.inference.uncertainty import rank_by_uncertainty, uncertainty_score
from rootseg.io.arrays import IGNORE_INDEX
from rootseg.io.atomic import atomic_path
from rootseg.io.atomic import write_text as write_text_atomically
from rootseg.io.images import IMAGE_SUFFIXES, ImageReadError, read_image
from rootseg.io.masks import read_mask
from rootseg.io.rootpainter import ANNOTATION_BACKGROUND, ANNOTATION_ROOT
from rootseg.metrics.pixels import confusion, scores
from rootseg.sources.base import DataLayoutError, files_by_stem
from rootseg.sources.rootpainter import ANNOTATION_SPLITS, RootPainterSource
from rootseg.tasks.checkpoints import checkpoint_file, read_checkpoint, stored_config

__all__ = [
    "ANNOTATION_BACKGROUND",
    "ANNOTATION_ROOT",
    "ANNOTATE_PREDICTED",
    "ANNOTATION_SPLITS",
    "IGNORE_INDEX",
    "IMAGE_SUFFIXES",
    "DataLayoutError",
    "ImageReadError",
    "Model",
    "ProjectLocation",
    "checkpoint_summary",
    "click_mask",
    "confusion",
    "list_images",
    "load_model",
    "locate_project",
    "predict_probs",
    "rank_by_uncertainty",
    "read_image",
    "read_labels",
    "scores",
    "uncertainty_score",
    "write_png_atomically",
    "write_text_atomically",
]


@dataclass(frozen=True)
class ProjectLocation:
    project_file: Path  # <name>.seg_proj
    project_dir: Path  # holds annotations/train, annotations/val
    dataset_dir: Path  # the images


def locate_project(project: str | Path, dataset_dir: str | Path | None = None) -> ProjectLocation:
    """Find a RootPainter project's file, folder and image folder as `data=rootpainter` will."""
    path = Path(project).expanduser()
    if not path.exists():
        raise DataLayoutError(f"project={path}: no such folder or file; give a RootPainter project folder")
    if path.is_dir() and not any(path.glob("*.seg_proj")):
        raise DataLayoutError(
            f"project={path}: no <name>.seg_proj file in this folder. annotate works on a RootPainter project: "
            'a folder with <name>.seg_proj (JSON: {"dataset": "<folder under <sync>/datasets>", "file_names": '
            "[...]}) and annotations/; add dataset_dir=DIR when the images are elsewhere"
        )
    source = RootPainterSource(path, dataset_dir=dataset_dir)
    images = source.dataset_dir
    if not images.is_dir():
        raise DataLayoutError(
            f"{images}: the image folder of {source.project_file} does not exist; pass dataset_dir=DIR "
            "(annotate) where the images are"
        )
    return ProjectLocation(source.project_file, source.project_dir, images)


def list_images(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """Images of `folder` by stem (the key annotations are matched by) and one line per duplicated stem."""
    return files_by_stem(folder, "image")


def read_labels(path: Path) -> np.ndarray:
    """An annotation PNG as rootseg reads it: uint8 {0 background, 1 root, 255 unlabelled}."""
    return read_mask(path)


def write_png_atomically(path: Path, array: np.ndarray) -> Path:
    """Write a PNG through rootseg's atomic rename, flushed to disk first, so neither a killed server nor a
    power cut leaves a torn file: readers see the old annotation or the new one, whole."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        Image.fromarray(array).save(handle, format="PNG")
        handle.flush()
        os.fsync(handle.fileno())
    try:  # the rename itself survives a power cut once the folder is synced (not supported everywhere)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
    return path


# ------------------------------------------------------------------------------------------------ models
@dataclass
class Model:
    """A loaded checkpoint: rootseg's Predictor, the model kind ("unet", "rootsam", "frangi") and its file."""

    predictor: Any
    kind: str
    path: Path

    @property
    def takes_clicks(self) -> bool:
        return self.kind == "rootsam"


def load_model(path: str | Path, device: str = "cpu", threshold: float | None = None) -> Model:
    """Load a rootseg training checkpoint with predict's default settings on `device` (auto: the GPU when there
    is one; threshold None: the checkpoint's); a file that is not a checkpoint raises a one-paragraph
    ValueError."""
    settings = InferenceSettings(device=device or "auto", threshold=threshold)
    predictor = Predictor.from_checkpoint(path, settings)
    return Model(predictor=predictor, kind=str(predictor.kind), path=checkpoint_file(path).resolve())


def checkpoint_summary(path: str | Path) -> dict[str, Any]:
    """The model kind and resolved run config stored in a checkpoint (what a fine-tune run must rebuild)."""
    return {"kind": read_checkpoint(path)["rootseg"].get("kind"), "config": stored_config(path)}


def predict_probs(model: Model, image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 image -> (H, W) float32 root probability, exactly as `rootseg.predict` computes it (the
    U-Net's blended sliding window, RootSAM's prompt-free grid, Frangi)."""
    return model.predictor.probabilities(image)


def click_mask(model: Model, image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """RootSAM's mask of the one root the clicks `points` (P, 3: x, y in image pixels, label 1 root or 0 not
    root) prompt, through the same Predictor (one tile centred on the positive clicks); (H, W) bool."""
    if not model.takes_clicks:
        raise ValueError(f"{model.path}: a {model.kind!r} checkpoint takes no clicks; give a RootSAM checkpoint")
    probs = model.predictor.probabilities(image, clicks=np.asarray(points, np.float32).reshape(-1, 3))
    return model.predictor.mask(probs)
