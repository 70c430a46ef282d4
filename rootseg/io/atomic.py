"""Writing outputs without ever leaving a partial file: a temporary file beside the target, renamed when whole."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block finishes.

    A crash or kill mid-write leaves the old file (or none), never a truncated one. An OSError that names no
    file (a full disk met by `write()`) or names the temporary file is raised again naming `path`, so the
    error a user reads says which output could not be written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)  # its errors name the folder
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as error:  # a read-only or full file system: name the output, not a random temporary name
        raise _naming(error, path) from error
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the result the permissions any new file would get
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except OSError as error:
        if error.errno is None or error.filename not in (None, str(tmp_path)):
            raise
        raise _naming(error, path) from error
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _naming(error: OSError, path: Path) -> OSError:
    """The same error (errno, message, class: ENOSPC stays an OSError, EACCES a PermissionError) naming `path`."""
    return OSError(error.errno, error.strerror, str(path))


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


def write_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array)


def write_if_changed(path: Path | str, text: str) -> Path:
    """Atomic write that leaves an identical file untouched, so a run with nothing to do changes nothing."""
    path = Path(path)
    try:
        if path.read_text(encoding="utf-8") == text:
            return path
    except (OSError, UnicodeDecodeError):
        pass
    return write_text(path, text)
