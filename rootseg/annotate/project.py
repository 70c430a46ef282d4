"""The project's files as the app may touch them: its images, and RootPainter annotations read and written whole.

Only files found when the app starts are served, looked up by image stem in a table, so a request can never
name a path; each is checked again to lie inside the project (a symlink out is refused). Uploaded annotations
are checked completely (a PNG, RGBA, the image's size, only RootPainter's three colours) before one byte is
written, then replace the old file atomically under a per-image lock: two tabs saving the same image leave
one of the two saves, whole, in exactly one of annotations/train and annotations/val.
"""

from __future__ import annotations

import io
import logging
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from rootseg.annotate import backend

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: formats a browser draws as they are; others (TIFF, 16-bit PNG, rotated JPEG) are re-encoded as rootseg reads them
_BROWSER_SUFFIXES = {".jpg", ".jpeg", ".png"}


class RequestError(ValueError):
    """A refused request; `status` is the HTTP status and the message says what to do."""

    status = 400


class NotFound(RequestError):
    status = 404


class Forbidden(RequestError):
    status = 403


class TooLarge(RequestError):
    status = 413


class BadAnnotation(RequestError):
    status = 422


def _inside(path: Path, roots: tuple[Path, ...]) -> bool:
    """Whether `path`, symlinks followed, lies inside one of `roots` (already resolved)."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return False
    return any(real == root or real.is_relative_to(root) for root in roots)


class Project:
    """A RootPainter project: the images of its dataset folder and its annotations/{train,val} PNGs."""

    def __init__(self, location: backend.ProjectLocation) -> None:
        self.location = location
        self.annotations_dir = location.project_dir / "annotations"
        self.roots = (location.project_dir.resolve(), location.dataset_dir.resolve())
        found, problems = backend.list_images(location.dataset_dir)
        for problem in problems:
            log.warning("%s", problem)
        self.images = {stem: path for stem, path in found.items() if _inside(path, self.roots)}
        for stem in sorted(set(found) - set(self.images)):
            log.warning("%s: a link to a file outside the project; not served", found[stem])
        if not self.images:
            raise backend.DataLayoutError(f"{location.dataset_dir}: no images ({', '.join(backend.IMAGE_SUFFIXES)})")
        self._sizes: dict[str, tuple[int, int]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # --- images ------------------------------------------------------------------------------------------
    def image_path(self, stem: str) -> Path:
        """The image file of `stem`; anything not in the table found at start-up is unknown."""
        path = self.images.get(stem)
        if path is None:
            raise NotFound(f"no image {stem!r} in this project")
        if not _inside(path, self.roots):
            raise Forbidden(f"{path.name}: now points outside the project; not served")
        return path

    def read_image(self, stem: str) -> np.ndarray:
        return backend.read_image(self.image_path(stem))

    def image_size(self, stem: str) -> tuple[int, int]:
        """(width, height) as rootseg reads the image (camera orientation applied)."""
        if stem not in self._sizes:
            height, width = self.read_image(stem).shape[:2]
            self._sizes[stem] = (width, height)
        return self._sizes[stem]

    def display_image(self, stem: str) -> tuple[Path | bytes, str]:
        """The file itself when a browser shows exactly the pixels rootseg reads, else a PNG of those pixels."""
        path = self.image_path(stem)
        if path.suffix.lower() in _BROWSER_SUFFIXES:
            try:
                with Image.open(path) as image:
                    plain = image.mode in ("RGB", "L") and image.getexif().get(0x0112, 1) == 1
            except OSError as error:
                raise backend.ImageReadError(f"{path}: cannot decode image ({error})") from error
            if plain:
                return path, "image/jpeg" if path.suffix.lower() in (".jpg", ".jpeg") else "image/png"
        buffer = io.BytesIO()
        Image.fromarray(self.read_image(stem)).save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue(), "image/png"

    # --- annotations -------------------------------------------------------------------------------------
    def annotation_path(self, stem: str, split: str) -> Path:
        if split not in backend.ANNOTATION_SPLITS:
            raise RequestError(f"split must be one of {list(backend.ANNOTATION_SPLITS)}, got {split!r}")
        self.image_path(stem)  # only known images have annotations
        return self.annotations_dir / split / f"{stem}.png"

    def find_annotation(self, stem: str) -> tuple[str, Path] | None:
        """(split, path) of the image's annotation, or None when it has none yet."""
        for split in backend.ANNOTATION_SPLITS:
            path = self.annotation_path(stem, split)
            if path.is_file() or path.is_symlink():
                if not _inside(path, self.roots[:1]):
                    raise Forbidden(f"{path.name}: the annotation links outside the project; not served")
                return split, path
        return None

    def annotated(self) -> dict[str, str]:
        """Split of every annotated image, by stem."""
        found = {}
        for split in backend.ANNOTATION_SPLITS:
            folder = self.annotations_dir / split
            if folder.is_dir():
                found.update({p.stem: split for p in folder.glob("*.png") if p.stem in self.images})
        return found

    def _lock(self, stem: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(stem, threading.Lock())

    def save_annotation(self, stem: str, split: str, data: bytes) -> Path:
        """Check an uploaded annotation PNG whole, write it atomically, and drop the image's other split."""
        path = self.annotation_path(stem, split)
        rgba = check_annotation(data, self.image_size(stem))
        for folder in (self.annotations_dir, *(self.annotations_dir / s for s in backend.ANNOTATION_SPLITS)):
            if (folder.exists() or folder.is_symlink()) and not _inside(folder, self.roots[:1]):
                raise Forbidden(f"{folder}: links outside the project; refusing to write there")
            folder.mkdir(exist_ok=True)
        with self._lock(stem):
            backend.write_png_atomically(path, rgba)
            for other in backend.ANNOTATION_SPLITS:
                if other != split:
                    (self.annotations_dir / other / f"{stem}.png").unlink(missing_ok=True)
        log.info("saved %s (%s)", path, split)
        return path


def check_annotation(data: bytes, size: tuple[int, int]) -> np.ndarray:
    """An uploaded annotation as (H, W, 4) uint8, or BadAnnotation saying what is wrong with it.

    It must be a PNG of the image's `size` (width, height), RGBA, every pixel red `ANNOTATION_ROOT` = root, green
    `ANNOTATION_BACKGROUND` = background or transparent (alpha 0) = unlabelled. The size is checked from
    the header, before decoding, so a small file cannot expand into a huge image.
    """
    if not data.startswith(PNG_SIGNATURE):
        raise BadAnnotation(f"not a PNG file (it starts with {data[:8]!r}); annotations are RGBA PNG images")
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG"])
    except Exception as error:
        raise BadAnnotation(f"not a readable PNG ({type(error).__name__}: {error})") from error
    if image.size != tuple(size):
        raise BadAnnotation(
            f"the annotation is {image.size[0]}x{image.size[1]} pixels but its image is {size[0]}x{size[1]}; "
            "an annotation must have its image's size"
        )
    if image.mode != "RGBA":
        raise BadAnnotation(f"the annotation is a {image.mode} PNG, not RGBA; save it with an alpha channel")
    try:
        rgba = np.array(image)
    except Exception as error:
        raise BadAnnotation(f"the PNG is damaged ({type(error).__name__}: {error})") from error
    clear = rgba[:, :, 3] == 0
    good = clear | (rgba == backend.ANNOTATION_ROOT).all(2) | (rgba == backend.ANNOTATION_BACKGROUND).all(2)
    if not good.all():
        bad = np.argwhere(~good)
        y, x = (int(v) for v in bad[0])
        raise BadAnnotation(
            f"{len(bad)} pixel(s) are neither red {backend.ANNOTATION_ROOT} = root, green "
            f"{backend.ANNOTATION_BACKGROUND} = background nor transparent (alpha 0) = unlabelled; the first at "
            f"x={x}, y={y} is {tuple(int(v) for v in rgba[y, x])}"
        )
    rgba[clear] = 0
    return rgba
