"""`python benchmarks/header_checks.py`: what the header checks (rootseg.io.headers) cost on ordinary scans, and
how fast a lying file is refused. Prints one JSON object.

For a 2550 x 2273 scan (CI-600 size) saved as noisy RGB PNG, flat RGB PNG, JPEG and deflate TIFF: the best of
`--repeats` reads with `rootseg.io.images.read_image` (checks included) and of the header checks alone, which
every read makes (JPEG and TIFF: headers; PNG: chunk lengths). `row_count_s`: the PNG row count (its data
inflated once more and counted), which a read adds only when the decoded last row is blank (a decoder leaves
missing rows black) or the PNG is interlaced. Then the seconds to refuse a 118-byte PNG and a JPEG whose
headers claim 40000 x 40000 (decoding them took 65 s and 15.7 GB before the checks).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import struct
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from rootseg.io import headers
from rootseg.io.images import ImageReadError, read_image

SIZE = (2273, 2550)


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(min(times), 4)


def scans(folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    noisy = rng.normal(100, 30, (*SIZE, 3)).clip(0, 255).astype(np.uint8)
    flat = np.full((*SIZE, 3), 60, np.uint8)
    flat[:, ::97] = 210
    files = {"png_noisy": folder / "noisy.png", "png_flat": folder / "flat.png", "jpeg": folder / "scan.jpg"}
    Image.fromarray(noisy).save(files["png_noisy"])
    Image.fromarray(flat).save(files["png_flat"])
    Image.fromarray(noisy).save(files["jpeg"], quality=90)
    files["tiff_deflate"] = folder / "scan.tif"
    tifffile.imwrite(files["tiff_deflate"], noisy, compression="zlib", photometric="rgb")
    return files


def check_only(path: Path, count_rows: bool = False) -> None:
    if path.suffix == ".png":
        headers.check_png(path, count_rows=count_rows)
    elif path.suffix == ".jpg":
        with Image.open(path) as image:
            headers.check_jpeg(path, *image.size)
    else:
        with tifffile.TiffFile(path) as tif:
            headers.check_tiff(path, tif)


def liars(folder: Path) -> dict[str, Path]:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = folder / "bomb.png"
    ihdr = struct.pack(">IIBBBBB", 40000, 40000, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" + bytes(40000), 9)
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    buffer = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 60, np.uint8)).save(buffer, format="JPEG")
    data = buffer.getvalue()
    at = data.index(b"\xff\xc0")
    jpeg = folder / "bomb.jpg"
    jpeg.write_bytes(data[: at + 5] + struct.pack(">HH", 40000, 40000) + data[at + 9 :])
    return {"png": png, "jpeg": jpeg}


def refuse(path: Path) -> float:
    start = time.perf_counter()
    try:
        read_image(path)
    except ImageReadError:
        return round(time.perf_counter() - start, 5)
    raise AssertionError(f"{path} was read")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = scans(folder)
        result = {
            "machine": {"cpu": platform.processor() or platform.machine(), "load_avg_1min": os.getloadavg()[0]},
            "image": f"{SIZE[1]}x{SIZE[0]} RGB",
            "pixel_budget": headers.pixel_budget(),
            "scans": {
                name: {
                    "bytes": path.stat().st_size,
                    "read_s": best(lambda p=path: read_image(p), args.repeats),
                    "check_s": best(lambda p=path: check_only(p), args.repeats),
                    **(
                        {"row_count_s": best(lambda p=path: check_only(p, True), args.repeats)}
                        if path.suffix == ".png"
                        else {}
                    ),
                }
                for name, path in files.items()
            },
            "refused_in_s": {name: refuse(path) for name, path in liars(folder).items()},
        }
    for row in result["scans"].values():
        row["check_share"] = round(row["check_s"] / row["read_s"], 3)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
