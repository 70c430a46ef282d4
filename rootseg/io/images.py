"""Reading images and masks the way root scans arrive, and writing outputs without ever leaving a partial file.

Every reader raises `ImageReadError` naming the file and what is wrong, so a bad scan among thousands is
found by name rather than by a bare traceback.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from rootseg.io.arrays import to_numpy
from rootseg.io.headers import ImageReadError, check_jpeg, check_pixels, check_png, check_tiff, pixel_budget

# PIL's decompression-bomb guard at rootseg's pixel budget (rootseg.io.headers), for any other PIL use in the
# process; rootseg's own readers check the budget themselves and name the file and its size.
Image.MAX_IMAGE_PIXELS = pixel_budget()


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")


def missing_file(path: Path) -> ImageReadError:
    """The error for a path that is not a readable file: absent, a dangling symbolic link, or a link loop."""
    if path.is_symlink():
        try:
            os.stat(path)
        except OSError as error:
            if error.errno == errno.ELOOP:
                return ImageReadError(f"{path}: a symbolic link that loops (too many levels of symbolic links)")
            return ImageReadError(f"{path}: a symbolic link to {os.readlink(path)}, which does not exist (dangling)")
        return ImageReadError(f"{path}: a symbolic link to {os.readlink(path)}, which is not a file")
    if path.exists():
        return ImageReadError(f"{path}: not a file")
    return ImageReadError(f"{path}: no such file")


def _load_tiff(path: Path) -> np.ndarray:
    """tifffile for what it decodes itself; LZW and JPEG compression (the usual scanner TIFFs) need the
    optional imagecodecs package there, so without it PIL's libtiff decodes them."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        check_tiff(path, tif)
        try:
            array = tif.asarray()
        except ValueError as error:
            if "imagecodecs" not in str(error):
                raise
            array = None
    if array is None:
        with _open_pil(path) as image:
            return _pil_array(image)
    if array.ndim == 3 and array.shape[0] in (3, 4) and array.shape[-1] not in (3, 4):
        array = np.moveaxis(array, 0, -1)  # planar TIFF
    return array


def _open_pil(path: Path) -> Image.Image:
    """Open (header only) and check what the header promises before any pixel is decoded."""
    guard = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # the budget is checked below, with the file's name and size in the message
    try:
        image = Image.open(path)
    finally:
        Image.MAX_IMAGE_PIXELS = guard
    try:
        width, height = image.size
        if image.format == "PNG":
            check_png(path, count_rows=False)  # its data size against its header, then the budget
        else:
            if image.format in ("JPEG", "MPO"):
                check_jpeg(path, width, height)
            check_pixels(path, width, height, getattr(image, "n_frames", 1) if image.format == "TIFF" else 1)
    except BaseException:
        image.close()
        raise
    return image


def _pil_array(image: Image.Image) -> np.ndarray:
    """A PIL image's pixels as a writable array (torch refuses read-only buffers); palettes become colours."""
    if image.mode == "CMYK" or image.mode.startswith("YCbCr"):
        image = image.convert("RGB")
    elif image.mode in ("P", "PA"):  # a palette: its colours (masks are read by colour)
        image = image.convert("RGBA" if image.mode == "PA" or "transparency" in image.info else "RGB")
    elif image.mode in ("I;16", "I;16B", "I;16L"):
        return np.array(image, dtype=np.uint16)
    return np.array(image)


def _check_png_rows(path: Path, image: Image.Image) -> None:
    """A decoded PNG holds every row: PIL leaves rows its data lacks black, without an error, so a PNG whose
    last row came out blank (or an interlaced one) has its data counted (`check_png`); a last row with any
    non-zero value was decoded, and so were all rows before it."""
    if image.format != "PNG":
        return
    width, height = image.size
    last = np.asarray(image.crop((0, height - 1, width, height)))
    if image.info.get("interlace") or not last.any():
        check_png(path)


def _load_array(path: Path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise missing_file(path)
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: the file is empty (0 bytes)")
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            return _load_tiff(path)
        with _open_pil(path) as image:
            image.load()
            _check_png_rows(path, image)
            return _pil_array(ImageOps.exif_transpose(image))  # respect the camera's orientation tag
    except ImageReadError:
        raise
    except Exception as error:  # PIL and tifffile raise many types for damaged files
        raise ImageReadError(f"{path}: cannot decode image ({type(error).__name__}: {error})") from error


#: Full-scale values tried in turn for integer images wider than 8 bits: 8-bit data in a 16-bit container,
#: then 10-, 12-, 14- and 16-bit sensors (a 12-bit scan stored as uint16 holds 0-4095, not 0-65535).
BIT_DEPTH_TOPS = (2**8 - 1, 2**10 - 1, 2**12 - 1, 2**14 - 1, 2**16 - 1)


_BLOCK_VALUES = 1 << 22  # values converted at a time, so a gigapixel image never gets a float64 copy


def uint8_scale(dtype: np.dtype, maximum: float) -> float | None:
    """The value that becomes 255 when an image of `dtype` whose brightest value is `maximum` becomes uint8.

    None for uint8 (kept as is). Integers: the smallest of `BIT_DEPTH_TOPS` (255, 1023, 4095, 16383,
    65535) that holds the maximum, else the type's own maximum (32-bit data): the real bit depth of the
    scan, guessed from its brightest pixel, since TIFF and PNG store 10-, 12- and 14-bit data as 16-bit. A
    12-bit scan whose brightest pixel is 800 is thus scaled as 10-bit (brighter than its siblings): scans of
    one series are comparable only when each reaches into its top bit range, which real scans do.
    Floats: 1.0 when the maximum is <= 1, 255 when <= 255, else the maximum itself.
    """
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return None
    if np.issubdtype(dtype, np.floating):
        return 1.0 if maximum <= 1.0 else 255.0 if maximum <= 255 else float(maximum)
    for top in BIT_DEPTH_TOPS:
        if maximum <= top:
            return float(top)
    return float(np.iinfo(dtype).max)


def _scaled(block: np.ndarray, top: float | None) -> np.ndarray:
    """One block of an image as uint8: value / top * 255, rounded and clipped (negative values become 0)."""
    if top is None:
        return block
    if block.dtype == bool:
        return block.astype(np.uint8) * np.uint8(255)
    return np.clip(np.rint(block.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)


def _check_pixel_type(array: np.ndarray, path: Path | str) -> None:
    if array.dtype != bool and not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ImageReadError(f"{path}: unsupported pixel type {array.dtype}")


def _rows(array: np.ndarray) -> int:
    """Rows per block so that a block holds about `_BLOCK_VALUES` values."""
    per_row = max(int(np.prod(array.shape[1:], dtype=np.int64)), 1)
    return max(_BLOCK_VALUES // per_row, 1)


def image_scale(array: np.ndarray, path: Path | str = "<array>") -> float | None:
    """`uint8_scale` of a whole image, read in row blocks (a memory map is never loaded at once); raises
    ImageReadError for NaN or infinite values."""
    _check_pixel_type(array, path)
    if array.dtype in (np.uint8, bool):
        return None if array.dtype == np.uint8 else 1.0
    floating = np.issubdtype(array.dtype, np.floating)
    maximum = 0
    step = _rows(array)
    for start in range(0, array.shape[0], step):
        block = np.asarray(array[start : start + step])
        if floating and not np.isfinite(block).all():
            raise ImageReadError(f"{path}: image holds NaN or infinite values")
        maximum = max(maximum, block.max(initial=0))
    return uint8_scale(array.dtype, maximum)


def to_uint8(array: np.ndarray, path: Path | str = "<array>") -> np.ndarray:
    """Scale 16-bit, 32-bit and float images to uint8 so every model sees the same range (`uint8_scale`)."""
    top = image_scale(array, path)
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * np.uint8(255)
    out = np.empty(array.shape, np.uint8)
    step = _rows(array)
    for start in range(0, array.shape[0], step):
        out[start : start + step] = _scaled(np.asarray(array[start : start + step]), top)
    return out


def _as_rgb(array: np.ndarray, path: Path | str) -> np.ndarray:
    """Grey (with or without alpha) repeated to RGB, alpha dropped; anything else not (H, W, 3) is an error."""
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim == 3 and array.shape[2] == 4:
        return array[:, :, :3]
    if array.ndim == 3 and array.shape[2] == 2:  # grey + alpha
        return np.repeat(array[:, :, :1], 3, axis=2)
    if array.ndim == 3 and array.shape[2] == 1:
        return np.repeat(array, 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ImageReadError(f"{path}: expected a grey or RGB image, got an array of shape {array.shape}")
    return array


def read_image(path: Path | str) -> np.ndarray:
    """Read any scan as H x W x 3 uint8 RGB (grey is repeated, alpha dropped, 16 bit scaled)."""
    array = _load_array(Path(path))
    array = _as_rgb(to_uint8(array, path), path)
    if min(array.shape[:2]) < 1:
        raise ImageReadError(f"{path}: image has no pixels (shape {array.shape})")
    return np.ascontiguousarray(array)


class LazyImage:
    """A scan on disk that reads only the pixels asked for: `image[rows, cols]` -> uint8 RGB.

    Built by `open_image` over a memory map of an uncompressed TIFF. It looks like an (H, W, 3) uint8
    array to `rootseg.tiling.window.sliding_window_probs`, which cuts its tiles with `image[np.ix_(rows,
    cols)]`, so a gigapixel scan is never decoded whole: each tile is read from the file (the page cache)
    and converted exactly as `read_image` converts the whole image (same scale, grey to RGB, alpha
    dropped). `np.asarray(image)` reads all of it, as `read_image` would.
    """

    ndim = 3
    dtype = np.dtype(np.uint8)

    def __init__(self, source: np.ndarray, path: Path | str) -> None:
        if source.ndim == 3 and source.shape[0] in (3, 4) and source.shape[-1] not in (3, 4):
            source = np.moveaxis(source, 0, -1)  # planar TIFF
        if not (source.ndim == 2 or (source.ndim == 3 and source.shape[2] in (1, 2, 3, 4))):
            raise ImageReadError(f"{path}: expected a grey or RGB image, got an array of shape {source.shape}")
        if min(source.shape[:2]) < 1:
            raise ImageReadError(f"{path}: image has no pixels (shape {source.shape})")
        self.source = source
        self.path = Path(path)
        self.top = image_scale(source, path)  # one pass over the file: the bit depth, NaN check
        self.shape = (int(source.shape[0]), int(source.shape[1]), 3)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        """Rows and columns (slices, or index arrays such as `np.ix_(rows, cols)`) -> (h, w, 3) uint8."""
        key = key if isinstance(key, tuple) else (key,)
        if len(key) > 2 or any(isinstance(k, int | np.integer) for k in key):
            raise IndexError("a LazyImage is indexed by rows and columns (slices or index arrays) only")
        block = np.asarray(self.source[key])
        if block.ndim != self.source.ndim:
            raise IndexError(f"index {key!r} does not select a 2-D block of {self.path}")
        return np.ascontiguousarray(_as_rgb(_scaled(block, self.top), self.path))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = np.empty(self.shape, np.uint8)
        step = _rows(out)
        for start in range(0, self.shape[0], step):
            out[start : start + step] = self[start : start + step]
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"LazyImage({self.path}, shape={self.shape}, source dtype={self.source.dtype})"


def image_size(path: Path) -> tuple[int, int] | None:
    """(height, width) as `read_image` returns the pixels (the camera's orientation tag applied), from the header
    alone; None when it cannot be read now (reading the image reports why, by name)."""
    try:
        with Image.open(path) as image:
            height, width = image.height, image.width
            turned = image.getexif().get(0x0112) in (5, 6, 7, 8)  # orientations that swap the sides
    except Exception:  # noqa: BLE001  (PIL raises many types for damaged files)
        return None
    return (width, height) if turned else (height, width)


def open_image(path: Path | str) -> np.ndarray | LazyImage:
    """Like `read_image`, but an uncompressed TIFF is memory-mapped (`tifffile.memmap`) and read lazily.

    Returns a `LazyImage` for TIFFs whose pixels lie uncompressed and contiguous in the file (what
    `tifffile.imwrite` and most stitching tools write), else the array `read_image` returns: compressed or
    tiled TIFFs, JPEG and PNG are decoded whole (their decoders cannot read a window).
    """
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff") and path.is_file() and path.stat().st_size > 0:
        try:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                check_tiff(path, tif)
            source = tifffile.memmap(path, mode="r")
        except ImageReadError:
            raise
        except Exception:  # compressed, tiled, odd layout: not memory-mappable (read_image reports damage)
            source = None
        if source is not None:
            return LazyImage(source, path)
    return read_image(path)


def probability_to_uint8(probs) -> np.ndarray:
    """(H, W) probabilities in [0, 1] -> uint8 0-255 (rounded), for a grey probability PNG."""
    probs = to_numpy(probs).astype(np.float32, copy=False)
    if probs.ndim != 2:
        raise ValueError(f"probabilities must be a 2-D (H, W) array, got shape {probs.shape}")
    if not np.isfinite(probs).all():
        raise ValueError("probabilities hold NaN or infinite values")
    return np.rint(np.clip(probs, 0.0, 1.0) * 255).astype(np.uint8)
