"""Reading images and masks the way root scans arrive, and writing outputs without ever leaving a partial file.

Every reader raises `ImageReadError` naming the file and what is wrong, so a bad scan among thousands is
found by name rather than by a bare traceback.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# CI-600 scans are ~6 MP, stitched rhizotron panels can exceed PIL's 179 MP bomb guard.
Image.MAX_IMAGE_PIXELS = 2_000_000_000

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
IGNORE_INDEX = 255  # mask value for unlabelled pixels (RootPainter transparent), skipped by loss and metrics


class ImageReadError(ValueError):
    """An image or mask file that cannot be used; the message names the file."""


def _load_array(path: Path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: the file is empty (0 bytes)")
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            array = tifffile.imread(path)
            if array.ndim == 3 and array.shape[0] in (3, 4) and array.shape[-1] not in (3, 4):
                array = np.moveaxis(array, 0, -1)  # planar TIFF
            return array
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)  # respect the camera's orientation tag
            if image.mode == "CMYK" or image.mode.startswith("YCbCr") or image.mode == "P":
                image = image.convert("RGBA" if image.mode == "P" and "transparency" in image.info else "RGB")
            elif image.mode in ("I;16", "I;16B", "I;16L"):
                return np.array(image, dtype=np.uint16)
            return np.array(image)  # a writable copy: torch refuses read-only buffers
    except ImageReadError:
        raise
    except Exception as error:  # PIL and tifffile raise many types for damaged files
        raise ImageReadError(f"{path}: cannot decode image ({type(error).__name__}: {error})") from error


def to_uint8(array: np.ndarray, path: Path | str = "<array>") -> np.ndarray:
    """Scale 16-bit, 32-bit and float images to uint8 so every model sees the same range."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ImageReadError(f"{path}: image holds NaN or infinite values")
        top = 1.0 if array.max(initial=0) <= 1.0 else 255.0 if array.max(initial=0) <= 255 else array.max()
        return np.clip(np.rint(array / top * 255), 0, 255).astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        top = np.iinfo(array.dtype).max if array.max(initial=0) > 255 else 255
        return np.clip(np.rint(array.astype(np.float64) / top * 255), 0, 255).astype(np.uint8)
    raise ImageReadError(f"{path}: unsupported pixel type {array.dtype}")


def read_image(path: Path | str) -> np.ndarray:
    """Read any scan as H x W x 3 uint8 RGB (grey is repeated, alpha dropped, 16 bit scaled)."""
    array = _load_array(Path(path))
    array = to_uint8(array, path)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]
    elif array.ndim == 3 and array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ImageReadError(f"{path}: expected a grey or RGB image, got an array of shape {array.shape}")
    if min(array.shape[:2]) < 1:
        raise ImageReadError(f"{path}: image has no pixels (shape {array.shape})")
    return np.ascontiguousarray(array)


def decode_mask(array: np.ndarray, threshold: int = 127, path: Path | str = "<array>") -> np.ndarray:
    """Turn any mask encoding into uint8 {0 background, 1 root, 255 unlabelled}.

    Handles boolean, 0/1, 0/255, grey or RGB JPEG (thresholded, lossy edges) and RootPainter RGBA
    annotations (red = root, green = background, transparent = unlabelled).
    """
    if array.dtype == bool:
        return array.astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 4 and (array[:, :, 3] < 255).any():
        return decode_rootpainter_annotation(array)
    if array.ndim == 3:
        array = array[:, :, :3].max(axis=2)
    if array.ndim != 2:
        raise ImageReadError(f"{path}: a mask must be 2-D or RGB(A), got shape {array.shape}")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise ImageReadError(f"{path}: mask holds NaN or infinite values")
    top = array.max(initial=0)
    if top <= 1:
        return (array > 0).astype(np.uint8)
    if array.dtype != np.uint8:
        array = to_uint8(array, path)
    return (array > threshold).astype(np.uint8)


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


def read_mask(path: Path | str, threshold: int = 127) -> np.ndarray:
    """Read a mask file as uint8 {0, 1, 255}; see `decode_mask` for the encodings understood."""
    return decode_mask(_load_array(Path(path)), threshold=threshold, path=path)


def read_pair(image_path: Path | str, mask_path: Path | str, threshold: int = 127) -> tuple[np.ndarray, np.ndarray]:
    """Read an image and its mask and check they describe the same pixels."""
    image = read_image(image_path)
    mask = read_mask(mask_path, threshold)
    if image.shape[:2] != mask.shape:
        raise ImageReadError(
            f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} (WxH) but its image {image_path} is "
            f"{image.shape[1]}x{image.shape[0]}; masks must have the image's size"
        )
    return image, mask


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block finishes.

    A crash or kill mid-write leaves the old file (or none), never a truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the result the permissions any new file would get
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_image(path: Path | str, array: np.ndarray, **save_kwargs) -> Path:
    """Write an image atomically; the format follows the suffix of `path`."""
    path = Path(path)
    image_format = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF"}.get(
        path.suffix.lower()
    )
    if image_format is None:
        raise ValueError(f"{path}: unsupported output suffix {path.suffix!r}")
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format=image_format, **save_kwargs)
    return path


def write_bytes(path: Path | str, data: bytes) -> Path:
    """Write bytes atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return Path(path)


def write_text(path: Path | str, text: str) -> Path:
    """Write text atomically."""
    return write_bytes(path, text.encode("utf-8"))
