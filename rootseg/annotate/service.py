"""The model behind the app: each image's mask and uncertainty (cached on disk), the queue, RootSAM clicks.

Predicting a 2550 x 2273 scan takes seconds on a CPU, so each image's mask (p >= threshold, from the float
probabilities, exactly as predict thresholds them) and uncertainty score are kept under
`<work dir>/cache/<checkpoint, threshold and margin fingerprint>/` (`<stem>.png` 0/255 and `<stem>.json`),
and a background thread scores every image once, most uncertain first in the queue as scores arrive. One
lock serialises model calls (a LightningModule is not safe to run from two threads). Swapping the checkpoint
(after a better fine-tune) changes the fingerprint, so nothing predicted by the old model is ever shown for
the new one.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from rootseg.annotate import backend
from rootseg.annotate.project import NotFound, Project, RequestError

log = logging.getLogger(__name__)

SEGMENTATION_RGBA = (*backend.ANNOTATE_PREDICTED, 255)  # rootseg.figures.colours says why blue
RANKS = ("uncertainty", "name")


def fingerprint(path: Path, *settings: float) -> str:
    """Names a checkpoint file's content version (path, size, modification time) and the settings used."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{settings}"
    return hashlib.sha1(key.encode()).hexdigest()[:12]


def _read_cached(path: Path) -> tuple[np.ndarray, float] | None:
    """(mask, score) cached for one image, or None when absent or unreadable (then it is predicted again)."""
    if not (path.is_file() and path.with_suffix(".json").is_file()):
        return None
    try:
        score = float(json.loads(path.with_suffix(".json").read_text())["uncertainty"])
        return np.asarray(Image.open(path)) > 0, score
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("%s: unreadable cached prediction; predicting again", path)
        return None


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


class ModelService:
    """Masks, uncertainty scores and clicks of the current checkpoint (none: annotation without a model)."""

    def __init__(
        self,
        project: Project,
        ckpt_path: str | Path | None,
        cache_dir: Path,
        threshold: float | None = None,
        margin: float = 0.25,
        rank: str = "uncertainty",
        device: str = "cpu",
    ) -> None:
        if rank not in RANKS:
            raise ValueError(f"rank must be one of {RANKS}, got {rank!r}")
        if threshold is not None and not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"threshold must be in (0, 1) or null (the checkpoint's), got {threshold}")
        self.project = project
        self.cache_dir = cache_dir
        self.margin = float(margin)
        self.rank = rank
        self.device = device
        self.lock = threading.RLock()
        self.model: backend.Model | None = None
        self.threshold = None if threshold is None else float(threshold)
        if ckpt_path:
            self.model = self.load(Path(str(ckpt_path)))
        if self.threshold is None:  # the checkpoint's own, as predict and eval take it; kept for later models
            self.threshold = float(self.model.predictor.threshold) if self.model else 0.5
        self.scores: dict[str, float | None] = {}
        self.errors: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- predictions --------------------------------------------------------------------------------
    def _cache_path(self, model: backend.Model, stem: str) -> Path:
        return self.cache_dir / fingerprint(model.path, self.threshold, self.margin) / f"{stem}.png"

    def predict(self, stem: str, model: backend.Model | None = None) -> tuple[np.ndarray, float]:
        """(mask p >= threshold, uncertainty score) of an image, predicted once per model and cached."""
        model = model or self.model
        if model is None:
            raise NotFound("no checkpoint loaded (start with ckpt_path=CKPT to see a segmentation)")
        path = self._cache_path(model, stem)
        cached = _read_cached(path)
        if cached is not None:
            return cached
        image = self.project.read_image(stem)
        with self.lock:
            cached = _read_cached(path)  # the page and the scoring thread may ask for one image at once
            if cached is not None:
                return cached
            probs = backend.predict_probs(model, image)
            mask = probs >= self.threshold
            score = backend.uncertainty_score(probs, self.threshold, self.margin)
            path.parent.mkdir(parents=True, exist_ok=True)
            backend.write_png_atomically(path, mask.astype(np.uint8) * np.uint8(255))
            backend.write_text_atomically(path.with_suffix(".json"), json.dumps({"uncertainty": score}))
        return mask, score

    def mask(self, stem: str, model: backend.Model | None = None) -> np.ndarray:
        return self.predict(stem, model)[0]

    def segmentation_png(self, stem: str) -> bytes:
        """The model's mask (p >= threshold) as RGBA: blue root, transparent elsewhere (for display only)."""
        mask = self.mask(stem)
        rgba = np.zeros((*mask.shape, 4), np.uint8)
        rgba[mask] = SEGMENTATION_RGBA
        return png_bytes(rgba)

    def click_png(self, stem: str, points: Any) -> bytes:
        """RootSAM's proposal for clicks [[x, y, 1 root | 0 not root], ...] as a 0/255 grey PNG."""
        if self.model is None or not self.model.takes_clicks:
            kind = self.model.kind if self.model else "no"
            raise RequestError(f"clicks need a RootSAM checkpoint; this app runs {kind} model")
        try:
            array = np.asarray(points, np.float64).reshape(-1, 3)
        except (TypeError, ValueError) as error:
            raise RequestError(f"points must be [[x, y, label], ...] numbers ({error})") from error
        width, height = self.project.image_size(stem)
        inside = (array[:, 0] >= 0) & (array[:, 0] < width) & (array[:, 1] >= 0) & (array[:, 1] < height)
        if len(array) == 0 or not inside.all() or not np.isin(array[:, 2], (0, 1)).all():
            raise RequestError(f"give 1 to 64 clicks inside the {width}x{height} image, each labelled 1 or 0")
        if len(array) > 64 or not (array[:, 2] == 1).any():
            raise RequestError("give 1 to 64 clicks, at least one of them positive (label 1, root)")
        image = self.project.read_image(stem)
        with self.lock:
            mask = backend.click_mask(self.model, image, array.astype(np.float32))
        return png_bytes(mask.astype(np.uint8) * np.uint8(255))

    # --- uncertainty queue ------------------------------------------------------------------------------
    def score(self, stem: str) -> float:
        return self.predict(stem)[1]

    def start_scoring(self) -> None:
        """Score every image in a background thread (a no-op without a model or with rank=name)."""
        if self.model is None or self.rank != "uncertainty":
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._score_all, name="rootseg-annotate-scores", daemon=True)
        self._thread.start()

    def stop_scoring(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _score_all(self) -> None:
        for stem in sorted(self.project.images):
            if self._stop.is_set():
                return
            try:
                self.scores[stem] = self.score(stem)
            except (backend.ImageReadError, OSError) as error:
                self.errors[stem] = str(error)
                log.error("cannot score %s: %s", stem, error)

    def queue(self) -> dict[str, Any]:
        """The images in annotation order (most uncertain first under rank=uncertainty) and how many wait."""
        stems = sorted(self.project.images)
        scores = {stem: self.scores.get(stem) for stem in stems}
        order = backend.rank_by_uncertainty(scores) if self.rank == "uncertainty" else stems
        annotated = self.project.annotated()
        items = [
            {
                "id": stem,
                "name": self.project.images[stem].name,
                "score": scores[stem],
                "split": annotated.get(stem),
                "error": self.errors.get(stem),
            }
            for stem in order
        ]
        pending = 0
        if self.model is not None and self.rank == "uncertainty":
            pending = sum(s is None and stem not in self.errors for stem, s in scores.items())
        return {"images": items, "pending": pending, "rank": self.rank}

    # --- models ------------------------------------------------------------------------------------------
    def val_f1(self, model: backend.Model) -> float | None:
        """Pooled F1 (p >= threshold) of `model` on the labelled pixels of annotations/val, by eval's counts and
        rule (`rootseg.metrics.pixels`: nothing to find and nothing found scores 1.0); None without any."""
        counts = []
        stems = [stem for stem, split in self.project.annotated().items() if split == "val"]
        for stem in sorted(stems):
            labels = backend.read_labels(self.project.annotation_path(stem, "val"))
            predicted = self.mask(stem, model)
            if predicted.shape != labels.shape:
                log.warning("%s: annotation and image sizes differ; left out of the val F1", stem)
                continue
            counts.append(backend.confusion(predicted, labels))
        if not stems:
            return None
        pooled = {key: sum(image[key] for image in counts) for key in ("tp", "fp", "fn", "tn")}
        return backend.scores(**pooled)["f1"]

    def load(self, path: Path) -> backend.Model:
        return backend.load_model(path, self.device, self.threshold)

    def swap(self, model: backend.Model) -> None:
        """Make `model` the current one and score the queue again with it."""
        self.stop_scoring()
        with self.lock:
            self.model = model
            self.scores = {}
            self.errors = {}
        self.start_scoring()
        log.info("now segmenting with %s", model.path)
