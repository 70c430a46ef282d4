"""What an image file's header promises, checked before a pixel is decoded: the size against the machine's
pixel budget, and the data the file holds against the size it claims.

A file's header can lie: a 312-byte PNG may claim 40000 x 40000 pixels, and decoders allocate what the header
says before they find the data missing (gigabytes, minutes), then fill what is missing with black. So every
reader (`rootseg.io.images`) asks this module first:

- the pixel budget (`pixel_budget`): a file with more pixels is refused by name. Default: the machine's
  physical memory (or its cgroup limit, whichever is smaller) / `BYTES_PER_PIXEL`; the environment variable
  `ROOTSEG_MAX_PIXELS` or the commands' `max_image_pixels=N` sets it (`set_pixel_budget`);
- PNG: deflate cannot expand data more than 1032 times, so the compressed data must be at least the
  decoded size / 1032 (before decoding); and the compressed stream, inflated without keeping it, must hold
  every row (after decoding, when the last row came out blank: a decoder leaves missing rows black);
- JPEG (Huffman coded): every 8 x 8 block of every component costs at least one bit;
- TIFF: every strip or tile holds data and lies inside the file.
"""

from __future__ import annotations

import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

#: memory one image pixel may need along the way: the decoded RGB image (3 bytes), the decoder's own copy and
#: conversions (~7), the sliding window's float32 probabilities and weights (8), the mask, skeleton and
#: measurement arrays (~6), and room for the rest of the process
BYTES_PER_PIXEL = 32
ENV_MAX_PIXELS = "ROOTSEG_MAX_PIXELS"
#: the most deflate can expand: a 258-byte match coded in two bits
DEFLATE_MAX_RATIO = 1032
_CHUNK = 1 << 20


class ImageReadError(ValueError):
    """An image or mask file that cannot be used; the message names the file."""


# ------------------------------------------------------------------------------------------ pixel budget
def memory_bytes() -> int:
    """Physical memory, or the cgroup's memory limit when one is set and smaller."""
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < total:
            total = int(text)
    return int(total)


def _parse_budget(value: object, source: str) -> int:
    try:
        budget = int(float(str(value).replace("_", "")))
    except ValueError:
        budget = 0
    if budget < 1:
        raise ValueError(f"{source}={value!r}: the pixel budget must be a positive number of pixels, e.g. 500000000")
    return budget


def pixel_budget() -> int:
    """The most pixels an image may have: `ROOTSEG_MAX_PIXELS` if set, else memory / `BYTES_PER_PIXEL`."""
    value = os.environ.get(ENV_MAX_PIXELS)
    if value:
        return _parse_budget(value, ENV_MAX_PIXELS)
    return memory_bytes() // BYTES_PER_PIXEL


#: the environment's own setting when the process started, which `set_pixel_budget(None)` goes back to
_ENV_AT_START = os.environ.get(ENV_MAX_PIXELS)


def set_pixel_budget(value: int | str | None) -> None:
    """A command's `max_image_pixels`, for this process and the ones it starts (data loader workers); None:
    the default (`ROOTSEG_MAX_PIXELS` as the process found it, else from memory)."""
    if value is None or value == "":
        if _ENV_AT_START is None:
            os.environ.pop(ENV_MAX_PIXELS, None)
        else:
            os.environ[ENV_MAX_PIXELS] = _ENV_AT_START
        return
    os.environ[ENV_MAX_PIXELS] = str(_parse_budget(value, "max_image_pixels"))


def check_pixels(path: Path | str, width: int, height: int, frames: int = 1) -> None:
    """Refuse an image with more pixels than the budget, before anything is allocated for it."""
    pixels = int(width) * int(height) * max(int(frames), 1)
    budget = pixel_budget()
    if pixels > budget:
        raise ImageReadError(
            f"{path}: the image is {width}x{height} (WxH){f' x {frames} frames' if frames > 1 else ''} = "
            f"{pixels / 1e6:.0f} MP, over the pixel budget of {budget / 1e6:.0f} MP (set by {_budget_source()}); "
            f"raise it with max_image_pixels=N (or {ENV_MAX_PIXELS}=N) if the machine has the memory, or split "
            "the scan"
        )


def _budget_source() -> str:
    if os.environ.get(ENV_MAX_PIXELS):
        return f"max_image_pixels / {ENV_MAX_PIXELS}"
    return f"this machine's {memory_bytes() / 2**30:.0f} GiB of memory / {BYTES_PER_PIXEL} bytes per pixel"


# ------------------------------------------------------------------------------------------------- PNG
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _png_layout(handle: BinaryIO, size: int) -> tuple[tuple[int, ...] | None, list[tuple[int, int]]]:
    """IHDR (width, height, bit depth, colour type, interlace) and the (offset, length) of each IDAT chunk,
    cut to what the file holds."""
    handle.seek(len(_PNG_SIGNATURE))
    header, idats = None, []
    while True:
        start = handle.read(8)
        if len(start) < 8:
            break
        length, kind = struct.unpack(">I4s", start)
        offset = handle.tell()
        if kind == b"IHDR" and length >= 13:
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", handle.read(13))
            header = (width, height, depth, colour, interlace)
        elif kind == b"IDAT":
            idats.append((offset, max(min(length, size - offset), 0)))
        elif kind == b"IEND":
            break
        handle.seek(offset + length + 4)  # data and CRC
    return header, idats


def _png_row_bytes(width: int, bits_per_pixel: int) -> int:
    return 1 + (width * bits_per_pixel + 7) // 8  # a filter byte, then the packed pixels


def png_data_bytes(width: int, height: int, depth: int, colour: int, interlace: int) -> int:
    """Bytes of filtered pixel data a PNG of this header decompresses to (Adam7 passes when interlaced)."""
    bits = _PNG_CHANNELS.get(colour, 4) * depth
    if not interlace:
        return height * _png_row_bytes(width, bits)
    total = 0
    for x0, y0, dx, dy in _ADAM7:
        pass_width, pass_height = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if pass_width > 0 and pass_height > 0:
            total += pass_height * _png_row_bytes(pass_width, bits)
    return total


def _inflated_bytes(handle: BinaryIO, idats: list[tuple[int, int]], wanted: int) -> tuple[int, str]:
    """How many bytes the IDAT stream inflates to (counted, not kept; stops at `wanted`), and why it ended."""
    inflater = zlib.decompressobj()
    total = 0
    for offset, length in idats:
        handle.seek(offset)
        while length > 0:
            data = handle.read(min(length, _CHUNK))
            length -= len(data)
            if not data:
                return total, "the file ends early"
            while data:
                try:
                    total += len(inflater.decompress(data, _CHUNK))
                except zlib.error as error:
                    return total, f"the compressed data is damaged ({error})"
                if total >= wanted:
                    return total, ""
                if inflater.eof:
                    return total, "the compressed stream ends early"
                data = inflater.unconsumed_tail
    return total, "the file ends early"


def check_png(path: Path | str, count_rows: bool = True) -> None:
    """A PNG's data against its header: a plausible size (nothing inflated), the budget, then (`count_rows`)
    every row present: the data is inflated once more and counted, not kept (~30 % of a noisy PNG's read)."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        if handle.read(len(_PNG_SIGNATURE)) != _PNG_SIGNATURE:
            return
        header, idats = _png_layout(handle, size)
        if header is None:
            return  # the decoder reports a PNG without a header
        width, height, depth, colour, interlace = header
        wanted = png_data_bytes(width, height, depth, colour, interlace)
        compressed = sum(length for _, length in idats)
        if wanted > DEFLATE_MAX_RATIO * compressed + 1024:
            raise ImageReadError(
                f"{path}: cannot decode image: the header says {width}x{height} (WxH), {wanted} bytes of pixel "
                f"data, but the file holds {compressed} bytes of compressed data, which inflate to at most "
                f"{DEFLATE_MAX_RATIO * compressed} bytes: the header is wrong or the data is missing"
            )
        check_pixels(path, width, height)
        if not count_rows:
            return
        got, why = _inflated_bytes(handle, idats, wanted)
    if got < wanted:
        rows = got // _png_row_bytes(width, _PNG_CHANNELS.get(colour, 4) * depth) if not interlace else None
        held = f"pixel data for {rows} of its {height} rows" if rows is not None else f"{got} of {wanted} bytes"
        raise ImageReadError(
            f"{path}: cannot decode image: the header says {width}x{height} (WxH) but the file holds {held} "
            f"({why}); the rest would read as black"
        )


# ------------------------------------------------------------------------------------------------ JPEG
_JPEG_HUFFMAN_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7}  # SOF markers; C9-CF are arithmetic coded


def _jpeg_frame(handle: BinaryIO) -> tuple[int, int, int, list[tuple[int, int]]] | None:
    """(marker, width, height, [(h, v) sampling of each component]) of the first frame header, or None."""
    if handle.read(2) != b"\xff\xd8":
        return None
    while True:
        byte = handle.read(1)
        while byte and byte != b"\xff":
            byte = handle.read(1)
        while byte == b"\xff":
            byte = handle.read(1)
        if not byte:
            return None
        marker = byte[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue  # markers without a length
        if marker in (0xD9, 0xDA):
            return None  # end of image or start of scan before any frame header
        raw = handle.read(2)
        if len(raw) < 2:
            return None
        length = struct.unpack(">H", raw)[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            data = handle.read(length - 2)
            if len(data) < 6:
                return None
            height, width, n = struct.unpack(">HHB", data[1:6])
            sampling = [(data[7 + 3 * i] >> 4, data[7 + 3 * i] & 15) for i in range(n) if 8 + 3 * i <= len(data)]
            return marker, width, height, sampling
        handle.seek(length - 2, 1)


def jpeg_min_bytes(width: int, height: int, sampling: list[tuple[int, int]]) -> int:
    """The fewest bytes Huffman-coded data for this frame can take: one bit per 8 x 8 block per component."""
    h_max = max((h for h, _ in sampling), default=1) or 1
    v_max = max((v for _, v in sampling), default=1) or 1
    blocks = 0
    for h, v in sampling:
        component_width = math.ceil(width * h / h_max)
        component_height = math.ceil(height * v / v_max)
        blocks += math.ceil(component_width / 8) * math.ceil(component_height / 8)
    return blocks // 8


def check_jpeg(path: Path | str, width: int, height: int) -> None:
    """A Huffman-coded JPEG must hold at least a bit per block (arithmetic-coded ones get the budget only)."""
    path = Path(path)
    with open(path, "rb") as handle:
        frame = _jpeg_frame(handle)
    if frame is None or frame[0] not in _JPEG_HUFFMAN_FRAMES:
        return
    needed = jpeg_min_bytes(frame[1], frame[2], frame[3])
    size = path.stat().st_size
    if size < needed:
        raise ImageReadError(
            f"{path}: cannot decode image: the header says {width}x{height} (WxH), which takes at least "
            f"{needed} bytes of JPEG data, but the file is {size} bytes: the header is wrong or the data is missing"
        )


# ------------------------------------------------------------------------------------------------ TIFF
def check_tiff(path: Path | str, tif) -> None:
    """A TIFF's first image (`tifffile.TiffFile`): within the budget, every strip or tile inside the file and
    holding data (a strip without data is read as black by tifffile)."""
    page = tif.pages.first
    series = tif.series[0] if tif.series else None
    frames = len(series.pages) if series is not None else 1
    check_pixels(path, page.imagewidth, page.imagelength, frames)
    size = tif.filehandle.size
    offsets, counts = page.dataoffsets, page.databytecounts
    empty = sum(1 for count in counts if count == 0)
    outside = sum(1 for offset, count in zip(offsets, counts, strict=False) if count and offset + count > size)
    if empty or outside:
        kind = "tiles" if page.is_tiled else "strips"
        raise ImageReadError(
            f"{path}: cannot decode image: {empty + outside} of its {len(counts)} {kind} "
            f"{'hold no data' if empty else ''}{' and ' if empty and outside else ''}"
            f"{'lie past the end of the file' if outside else ''} (the file is {size} bytes): the rest of the "
            "image would read as black"
        )
