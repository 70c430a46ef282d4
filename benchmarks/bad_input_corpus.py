"""A corpus of bad inputs, generated (never committed): the files real root image collections hold. Run by
`benchmarks/bad_inputs.py` and by tests/cli/test_bad_inputs.py (tests import benchmarks, never the reverse).

`make_bad_corpus(root)` writes one folder per case (`<root>/<case>/images/`, `masks/`) and returns the
cases with what must happen to each: an error that names the file, or correct handling checked by
`verify`. `combine` puts several cases into one folder for commands that continue past errors.

Expected outcomes by command (check, train, eval read image and mask; predict reads only the image):

- `data_error`: check, train (`check_data=true`) and eval fail with this text and the file's name;
- `predict_error`: predict reports this text with the file's name and skips the image (None: segmented);
- `warning`: check warns with this text (and names the mask);
- `verify`: for readable cases, asserts the decoded image and mask are right (no silent wrong result).

The 108 MP image (12000 x 9000) goes through eval and predict with the U-Net's network swapped for a
stand-in without convolutions (`brightness_net`, torchgeo's habit for expensive models): root where an
output pixel is brighter than `STAND_IN_BRIGHTNESS`. Everything else is the real path at full size: reading,
the sliding window's tiling and mirror padding, blending, thresholds, the mask, RootPainter and CSV
outputs, root length. The expected mask is computed independently with NumPy from the decoded pixels
(`brightness_mask`), and every output is compared with it and with the drawn roots.

EXIF orientation: a camera JPEG stores its sensor pixels and an orientation tag; every viewer and
annotation tool (RootPainter, GIMP, browsers) shows it rotated, so a mask is drawn in *display*
orientation. rootseg applies the tag when reading (`ImageOps.exif_transpose`), so image and mask agree and
a prediction has the displayed shape.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from rootseg.config.run_config import compose_task
from rootseg.inference.folder import CSV_NAME, find_images, plan_jobs, predict
from rootseg.io.images import read_image
from rootseg.io.masks import read_mask

SIZE = (96, 128)  # (H, W) of the ordinary cases
LARGE = (9000, 12000)  # a stitched rhizotron panel: 108 MP
LARGE_ROOTS = (1000, 5000, 9000)  # left edges of the large image's vertical roots, each 12 px wide
#: grey level (mean of R, G, B) above which `brightness_net` calls a pixel root (soil 60, roots 210)
STAND_IN_BRIGHTNESS = 135


@dataclass
class Case:
    name: str
    root: Path  # <root>/<name>, holding images/ and masks/
    image: Path
    mask: Path
    files: list[Path]
    data_error: str | None = None
    predict_error: str | None = None
    bad_files: tuple[Path, ...] = ()  # the files an error message must name
    warning: str | None = None
    verify: Callable[[Case], None] | None = None
    display_shape: tuple[int, int] = SIZE  # (H, W) a prediction must have
    #: commands not run on this case, with the reason
    skip: dict[str, str] = field(default_factory=dict)
    #: eval and predict run this case with `brightness_net` instead of the trained network, and check
    #: their outputs against `brightness_mask` of the decoded image
    stand_in: bool = False
    #: the drawn roots' length in px (stand-in cases: the measured root length must be close to it)
    root_length: float | None = None
    #: checked, trained and evaluated in its own folder: its split.json describes that folder only
    alone: bool = False

    @property
    def expects_error(self) -> bool:
        return self.data_error is not None


def scene(size: tuple[int, int] = SIZE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Bright vertical 'roots' on dark noisy soil, and the exact 0/1 mask."""
    rng = np.random.default_rng(seed)
    h, w = size
    mask = np.zeros((h, w), np.uint8)
    for x in rng.integers(4, max(w - 8, 5), size=3):
        mask[:, x : x + 4] = 1
    image = rng.normal(60, 12, (h, w, 3)).clip(0, 255).astype(np.uint8)
    image[mask == 1] = 210
    return image, mask


def _save(array: np.ndarray, path: Path, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def _png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg_bytes(array: np.ndarray, **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=95, **kwargs)
    return buffer.getvalue()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _png_claiming(width: int, height: int, rows: list[bytes]) -> bytes:
    """A grey 8-bit PNG whose header says width x height, holding a complete zlib stream of `rows` only."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(b"".join(b"\x00" + row for row in rows), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def _jpeg_claiming(data: bytes, width: int, height: int) -> bytes:
    """A JPEG's bytes with its frame header (SOF0) rewritten to claim width x height."""
    at = data.index(b"\xff\xc0")
    return data[: at + 5] + struct.pack(">HH", height, width) + data[at + 9 :]


def _tiff_with_empty_strips(path: Path, image: np.ndarray, empty: range) -> Path:
    """A deflate TIFF, 8 rows a strip, whose strips in `empty` have their byte counts set to 0 (no data)."""
    import tifffile

    tifffile.imwrite(path, image, compression="zlib", rowsperstrip=8, photometric="rgb")
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages.first.tags["StripByteCounts"]
        at, size = tag.valueoffset, np.dtype(tifffile.TIFF.DATA_FORMATS[tag.dtype]).itemsize
    data = bytearray(path.read_bytes())
    for strip in empty:
        data[at + strip * size : at + (strip + 1) * size] = bytes(size)
    path.write_bytes(bytes(data))
    return path


def _link(path: Path, target: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)
    return path


# ------------------------------------------------------------------------------------------ verifiers
def _expect_mask(expected: np.ndarray) -> Callable[[Case], None]:
    def verify(case: Case) -> None:
        got = read_mask(case.mask)
        assert got.shape == expected.shape, (case.name, got.shape)
        assert (got == expected).all(), f"{case.name}: {(got != expected).sum()} mask pixels decoded wrongly"

    return verify


def _verify_grey(case: Case) -> None:
    image = read_image(case.image)
    assert image.shape == (*SIZE, 3)
    assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()


def _verify_16bit(case: Case) -> None:
    image = read_image(case.image)
    assert image.dtype == np.uint8 and image.shape == (*SIZE, 3)
    # the ramp spans 0..65535: it must read as 0..255, not clipped at 255 nor left dark
    assert image[:, 0].max() == 0 and image[:, -1].min() == 255, (image[:, 0].max(), image[:, -1].min())
    assert abs(int(image[0, SIZE[1] // 2, 0]) - 128) <= 2


def _verify_like(expected: np.ndarray, tolerance: float) -> Callable[[Case], None]:
    def verify(case: Case) -> None:
        image = read_image(case.image)
        assert image.shape == expected.shape, (case.name, image.shape, expected.shape)
        error = np.abs(image.astype(float) - expected).mean()
        assert error < tolerance, f"{case.name}: mean abs difference {error:.1f} from the source pixels"

    return verify


def _verify_exif(expected: np.ndarray, mask: np.ndarray) -> Callable[[Case], None]:
    def verify(case: Case) -> None:
        _verify_like(expected, 8)(case)
        image = read_image(case.image).astype(float).mean(axis=2)
        # the roots of the displayed image lie where the (display-orientation) mask says
        assert image[mask == 1].mean() > image[mask == 0].mean() + 80

    return verify


# ------------------------------------------------------------------------------------------------ corpus
def make_bad_corpus(root: Path, large: bool = True) -> list[Case]:
    """Write every case under `root` and return them; `large=False` leaves out the 108 MP image."""
    root = Path(root)
    cases: list[Case] = []

    def case(name: str, image_name: str = "", mask_name: str = "") -> tuple[Path, Path, Path]:
        folder = root / name
        (folder / "images").mkdir(parents=True, exist_ok=True)
        (folder / "masks").mkdir(parents=True, exist_ok=True)
        image = folder / "images" / (image_name or f"{name}.png")
        return folder, image, folder / "masks" / (mask_name or f"{name}.png")

    def add(name: str, folder: Path, image: Path, mask: Path, **kwargs) -> None:
        files = sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink())
        cases.append(Case(name, folder, image, mask, files, **kwargs))

    image, mask = scene(seed=1)

    folder, ip, mp = case("truncated_jpeg", "truncated_jpeg.jpg")
    data = _jpeg_bytes(image)
    _write(ip, data[: len(data) * 6 // 10])
    _save(mask * 255, mp)
    add("truncated_jpeg", folder, ip, mp, data_error="cannot decode", predict_error="cannot decode", bad_files=(ip,))

    folder, ip, mp = case("truncated_png")
    _save(image, ip)
    data = _png_bytes(mask * 255)
    _write(mp, data[: len(data) * 6 // 10])
    add("truncated_png", folder, ip, mp, data_error="cannot decode", bad_files=(mp,))

    folder, ip, mp = case("zero_byte")
    _write(ip, b"")
    _save(mask * 255, mp)
    add("zero_byte", folder, ip, mp, data_error="empty (0 bytes)", predict_error="empty (0 bytes)", bad_files=(ip,))

    folder, ip, mp = case("text_as_png")
    _write(ip, b"tube,depth,date\n1,10,2024-05-01\n")
    _save(mask * 255, mp)
    add("text_as_png", folder, ip, mp, data_error="cannot decode", predict_error="cannot decode", bad_files=(ip,))

    folder, ip, mp = case("mask_other_size")
    _save(image, ip)
    _save(np.zeros((SIZE[0] + 7, SIZE[1]), np.uint8), mp)
    add("mask_other_size", folder, ip, mp, data_error="mask is", bad_files=(mp,))

    folder, ip, mp = case("mask_0_128_255")
    _save(image, ip)
    grey = (mask * 255).astype(np.uint8)
    grey[:, : SIZE[1] // 2][grey[:, : SIZE[1] // 2] == 255] = 128  # anti-aliased or half-painted root
    grey[0, 0] = 0
    _save(grey, mp)
    add("mask_0_128_255", folder, ip, mp, warning="not binary: values [0, 128, 255]", verify=_expect_mask(mask))

    folder, ip, mp = case("rgb_mask")
    _save(image, ip)
    rgb = np.zeros((*SIZE, 3), np.uint8)
    rgb[mask == 1] = (255, 0, 0)  # red root on black, as drawn in a paint program
    _save(rgb, mp)
    add("rgb_mask", folder, ip, mp, verify=_expect_mask(mask))

    folder, ip, mp = case("rootpainter_rgba")
    _save(image, ip)
    rgba = np.zeros((*SIZE, 4), np.uint8)
    painted = np.zeros(SIZE, bool)
    painted[: SIZE[0] // 2] = True  # the lower half is not annotated
    rgba[painted & (mask == 0)] = (0, 255, 0, 180)
    rgba[painted & (mask == 1)] = (255, 0, 0, 180)
    _save(rgba, mp)
    expected = np.full(SIZE, 255, np.uint8)
    expected[painted] = mask[painted]
    add("rootpainter_rgba", folder, ip, mp, verify=_expect_mask(expected))

    folder, ip, mp = case("all_zero_mask")
    _save(image, ip)
    _save(np.zeros(SIZE, np.uint8), mp)
    add("all_zero_mask", folder, ip, mp, warning="no root", verify=_expect_mask(np.zeros(SIZE, np.uint8)))

    folder, ip, mp = case("all_root_mask")
    _save(image, ip)
    _save(np.full(SIZE, 255, np.uint8), mp)
    add("all_root_mask", folder, ip, mp, warning="root everywhere", verify=_expect_mask(np.ones(SIZE, np.uint8)))

    folder, ip, mp = case("grey_image")
    _save(image[..., 0], ip)
    _save(mask * 255, mp)
    add("grey_image", folder, ip, mp, verify=_verify_grey)

    import tifffile

    folder, ip, mp = case("tiff_16bit", "tiff_16bit.tif")
    ramp = np.round(np.linspace(0, 65535, SIZE[1])).astype(np.uint16)
    tifffile.imwrite(ip, np.repeat(np.repeat(ramp[None, :, None], SIZE[0], 0), 3, 2), photometric="rgb")
    _save(mask * 255, mp)
    add("tiff_16bit", folder, ip, mp, verify=_verify_16bit)

    folder, ip, mp = case("cmyk_jpeg", "cmyk_jpeg.jpg")
    _save(image, ip.with_suffix(".tmp.png"))
    Image.fromarray(image).convert("CMYK").save(ip, quality=95)
    ip.with_suffix(".tmp.png").unlink()
    _save(mask * 255, mp)
    add("cmyk_jpeg", folder, ip, mp, verify=_verify_like(image.astype(float), 8))

    folder, ip, mp = case("exif_rotated_jpeg", "exif_rotated_jpeg.jpg")
    shown, shown_mask = scene((SIZE[1], SIZE[0]), seed=2)  # portrait as displayed
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(shown, 1)))  # the sensor's landscape pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    stored.save(ip, quality=95, exif=exif.tobytes())
    _save(shown_mask * 255, mp)
    add(
        "exif_rotated_jpeg",
        folder,
        ip,
        mp,
        verify=_verify_exif(shown.astype(float), shown_mask),
        display_shape=shown.shape[:2],
    )

    folder, ip, mp = case("smaller_than_tile")
    small, small_mask = scene((40, 30), seed=3)
    _save(small, ip)
    _save(small_mask * 255, mp)
    add("smaller_than_tile", folder, ip, mp, verify=_expect_mask(small_mask), display_shape=(40, 30))

    folder, ip, mp = case("nan_float_tiff", "nan_float_tiff.tif")
    floats = image.astype(np.float32) / 255
    floats[5, 7] = np.nan
    tifffile.imwrite(ip, floats, photometric="rgb")
    _save(mask * 255, mp)
    add("nan_float_tiff", folder, ip, mp, data_error="NaN", predict_error="NaN", bad_files=(ip,))

    folder, ip, mp = case("unicode paths é 根", "tube 1 é 根.jpg", "tube 1 é 根.png")
    _save(image, ip, quality=95)
    _save(mask * 255, mp)
    add("unicode paths é 根", folder, ip, mp, verify=_verify_like(image.astype(float), 8))

    folder, ip, mp = case("duplicate_stems", "duplicate_stems.png")
    _save(image, ip)
    second = _save(image, folder / "images" / "duplicate_stems.jpg", quality=95)
    _save(mask * 255, mp)
    add("duplicate_stems", folder, ip, mp, data_error="share the stem", bad_files=(ip, second))

    for builder in (_mask_rule_cases, _lying_file_cases, _link_cases, _split_cases, _odd_image_cases):
        builder(case, add)
    if large:
        folder, ip, mp = case("large_12000x9000", "large_12000x9000.jpg")
        big = np.full((*LARGE, 3), 60, np.uint8)  # constant soil compresses to ~1 MB
        big_mask = np.zeros(LARGE, np.uint8)
        for x in LARGE_ROOTS:
            big_mask[:, x : x + 12] = 1
        big[big_mask == 1] = 210
        _save(big, ip, quality=90)
        _save(big_mask * 255, mp, optimize=False)
        del big
        add(
            "large_12000x9000",
            folder,
            ip,
            mp,
            verify=_verify_large,
            display_shape=LARGE,
            stand_in=True,
            root_length=float(len(LARGE_ROOTS) * LARGE[0]),
        )
    return cases


#: make_bad_corpus's helpers, passed to the builders below: case(name, image name, mask name) -> (folder, image,
#: mask) makes the folders; add(name, folder, image, mask, **Case fields) records the case with its files
MakeCase = Callable[..., tuple[Path, Path, Path]]
AddCase = Callable[..., None]


def _mask_rule_cases(case: MakeCase, add: AddCase) -> None:
    """Masks read by rule (rootseg.io.masks.decode_mask), and the ambiguous ones refused with the rule."""
    image, mask = scene(seed=4)
    h, w = SIZE

    folder, ip, mp = case("grey_alpha_mask")  # LA, opaque: the grey channel is the mask, not the alpha
    _save(image, ip)
    _save(np.dstack([mask * 255, np.full(SIZE, 255, np.uint8)]), mp)
    add("grey_alpha_mask", folder, ip, mp, verify=_expect_mask(mask))

    folder, ip, mp = case("white_on_transparent")  # a root layer exported with transparency
    _save(image, ip)
    rgba = np.zeros((*SIZE, 4), np.uint8)
    rgba[mask == 1] = (255, 255, 255, 255)
    edge = np.roll(mask, 1, axis=1) & (1 - mask)  # an anti-aliased edge, 40 % opaque: not root
    rgba[edge == 1] = (255, 255, 255, 100)
    _save(rgba, mp)
    add("white_on_transparent", folder, ip, mp, verify=_expect_mask(mask))

    import tifffile

    folder, ip, mp = case("soft_float_tiff_mask", "", "soft_float_tiff_mask.tif")
    _save(image, ip)
    rng = np.random.default_rng(5)
    soft = np.where(mask == 1, rng.uniform(0.6, 1.0, SIZE), rng.uniform(0.0, 0.2, SIZE)).astype(np.float32)
    tifffile.imwrite(mp, soft)
    add("soft_float_tiff_mask", folder, ip, mp, warning="not binary", verify=_expect_mask(mask))

    folder, ip, mp = case("palette_dark_root")  # palette: index 0 black, index 1 a dark brown root
    _save(image, ip)
    palette = Image.fromarray(mask, "L").convert("P")
    palette.putpalette([0, 0, 0, 90, 40, 10] + [0] * 762)
    palette.save(mp)
    add("palette_dark_root", folder, ip, mp, verify=_expect_mask(mask))

    folder, ip, mp = case("ambiguous_transparent_mask")  # white root, black background, and transparency
    _save(image, ip)
    rgba = np.zeros((*SIZE, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[mask == 1, :3] = 255
    rgba[h // 2 :, :, 3] = 0
    _save(rgba, mp)
    add("ambiguous_transparent_mask", folder, ip, mp, data_error="ambiguous mask", bad_files=(mp,))

    folder, ip, mp = case("logit_float_mask", "", "logit_float_mask.tif")
    _save(image, ip)
    tifffile.imwrite(mp, np.where(mask == 1, 4.0, -4.0).astype(np.float32))
    add("logit_float_mask", folder, ip, mp, data_error="negative values", bad_files=(mp,))


def _lying_file_cases(case: MakeCase, add: AddCase) -> None:
    """Files whose header promises what their data does not hold (rootseg.io.headers)."""
    image, mask = scene(seed=6)
    h, w = SIZE

    folder, ip, mp = case("png_claims_40000x40000")  # 118 bytes decoding to 1.6 GP
    _write(ip, _png_claiming(40000, 40000, [bytes(40000)]))
    _save(mask * 255, mp)
    text = "the header says 40000x40000"
    add("png_claims_40000x40000", folder, ip, mp, data_error=text, predict_error=text, bad_files=(ip,))

    folder, ip, mp = case("png_short_rows")  # a complete zlib stream holding 30 of the 96 rows
    grey = image[..., 0]
    _write(ip, _png_claiming(w, h, [grey[y].tobytes() for y in range(30)]))
    _save(mask * 255, mp)
    text = f"pixel data for 30 of its {h} rows"
    add("png_short_rows", folder, ip, mp, data_error=text, predict_error=text, bad_files=(ip,))

    folder, ip, mp = case("jpeg_claims_40000x40000", "jpeg_claims_40000x40000.jpg")
    _write(ip, _jpeg_claiming(_jpeg_bytes(image), 40000, 40000))
    _save(mask * 255, mp)
    text = "the header says 40000x40000"
    add("jpeg_claims_40000x40000", folder, ip, mp, data_error=text, predict_error=text, bad_files=(ip,))

    folder, ip, mp = case("tiff_empty_strips", "tiff_empty_strips.tif")
    _tiff_with_empty_strips(ip, image, range(4, 12))
    _save(mask * 255, mp)
    text = "8 of its 12 strips hold no data"
    add("tiff_empty_strips", folder, ip, mp, data_error=text, predict_error=text, bad_files=(ip,))


def _link_cases(case: MakeCase, add: AddCase) -> None:
    """Symbolic links that lead nowhere: reported by name, never dropped."""
    _, mask = scene(seed=7)
    folder, _, mp = case("dangling_symlink")
    ip = _link(folder / "images" / "dangling_symlink.png", "moved_away.png")
    _save(mask * 255, mp)
    text = "a symbolic link to moved_away.png, which does not exist"
    add("dangling_symlink", folder, ip, mp, data_error=text, predict_error=text, bad_files=(ip,))

    folder, _, mp = case("symlink_loop")
    ip = _link(folder / "images" / "symlink_loop.png", "symlink_loop.png")
    _save(mask * 255, mp)
    text = "a symbolic link that loops"
    add("symlink_loop", folder, ip, mp, data_error=text, predict_error=text, bad_files=(ip,))


def _split_cases(case: MakeCase, add: AddCase) -> None:
    """split.json files that leak images between splits, use unknown keys or wrong types, or carry a byte
    order mark (Windows Notepad): each in its own folder of three pairs."""
    files: dict[str, tuple[str, str]] = {
        "split_test_repeats_train": (
            '{"train": ["@0", "@1"], "val": ["@2"], "test": ["@0"]}',
            "in both train and test",
        ),
        "split_unknown_keys": ('{"training": ["@0", "@1"], "validation": ["@2"]}', "(did you mean 'train'?)"),
        "split_json_list": ('["@0", "@1", "@2"]', "not a JSON list"),
        "split_wrong_types": ('{"train": "@0", "val": ["@1"], "test": ["@2"]}', "must be a list of image stems"),
        "split_with_bom": ('\ufeff{"train": ["@0"], "val": ["@1"], "test": ["@2"]}', ""),
    }
    for name, (text, error) in files.items():
        folder, ip, mp = case(name, f"{name}_0.png")
        for i in range(3):
            image, mask = scene(seed=20 + i)
            _save(image, folder / "images" / f"{name}_{i}.png")
            _save(mask * 255, folder / "masks" / f"{name}_{i}.png")
        split = folder / "split.json"
        split.write_text(text.replace("@", f"{name}_"), encoding="utf-8")
        if error:
            add(name, folder, ip, mp, data_error=error, bad_files=(split,), alone=True)
        else:
            add(name, folder, ip, mp, alone=True, verify=lambda c: None)


def _odd_image_cases(case: MakeCase, add: AddCase) -> None:
    """Valid scans in encodings that were refused: LZW TIFF (decoded by PIL when tifffile lacks imagecodecs),
    grey with alpha."""
    image, mask = scene(seed=8)
    folder, ip, mp = case("lzw_tiff", "lzw_tiff.tif")
    Image.fromarray(image).save(ip, compression="tiff_lzw")
    _save(mask * 255, mp)
    add("lzw_tiff", folder, ip, mp, verify=_verify_like(image.astype(float), 0.01))

    folder, ip, mp = case("grey_alpha_image")
    _save(np.dstack([image[..., 0], np.full(SIZE, 255, np.uint8)]), ip)
    _save(mask * 255, mp)
    add("grey_alpha_image", folder, ip, mp, verify=_verify_grey)


def _verify_large(case: Case) -> None:
    image = read_image(case.image)
    assert image.shape == (*LARGE, 3)
    assert abs(int(image[10, 1005, 0]) - 210) < 10 and abs(int(image[10, 3000, 0]) - 60) < 10


# --------------------------------------------------------------------------------- stand-in network
def brightness_net(module):
    """Swap a loaded U-Net's network for a stand-in without convolutions; returns the module.

    `predict_tiles` (what the sliding window calls) becomes: root probability 1 where the mean of R, G, B of
    an output pixel exceeds `STAND_IN_BRIGHTNESS`, else 0. It reads only the central tile_out x tile_out
    window of each tile_in x tile_in input tile, where that tile's output pixels lie, so a tile cut from the
    wrong place or pasted back at the wrong place changes the mask. Run it 64 tiles a batch (`batch_size=64`).
    """
    margin = (module.tile_in - module.tile_out) // 2
    window = slice(margin, margin + module.tile_out)

    def predict_tiles(tiles):
        # sums of three integers 0-255 are exact in float32, so this is exactly `brightness_mask`
        return (tiles[:, :, window, window].sum(dim=1) > 3 * STAND_IN_BRIGHTNESS).float()

    module.predict_tiles = predict_tiles
    return module


def brightness_mask(image: np.ndarray) -> np.ndarray:
    """What `brightness_net` must segment in an (H, W, 3) uint8 image, computed with NumPy alone."""
    return image.sum(axis=2, dtype=np.uint16) > 3 * STAND_IN_BRIGHTNESS


@contextlib.contextmanager
def stand_in_network() -> Iterator[None]:
    """Within the block, every checkpoint that eval and predict load gets `brightness_net`."""
    from unittest import mock

    import rootseg.evaluation.run as evaluation
    import rootseg.inference.predictor as predictor

    original = predictor.load_module
    stand_in = lambda *a, **k: brightness_net(original(*a, **k))  # noqa: E731
    # eval loads the module itself (its stage= needs it) and hands it to the Predictor; predict loads through it
    with mock.patch.object(predictor, "load_module", stand_in), mock.patch.object(evaluation, "load_module", stand_in):
        yield


def _stand_in_problems(case: Case, expected: np.ndarray, got: dict[str, float]) -> list[str]:
    """Differences of measured outputs from the stand-in's NumPy mask (`expected`) and the drawn roots."""
    problems = []
    for key, want in (
        ("root pixels", int(expected.sum())),
        ("height", expected.shape[0]),
        ("width", expected.shape[1]),
    ):
        if key in got and got[key] != want:
            problems.append(f"{key} {got[key]} != {want}")
    length = got.get("root length")
    if case.root_length is not None and length is not None and abs(length - case.root_length) > 0.01 * case.root_length:
        problems.append(f"root length {length:.1f} px, the drawn roots are {case.root_length:.0f} px")
    return problems


def check_stand_in_prediction(case: Case, mask_path: Path, row: dict[str, str] | None) -> tuple[bool, str]:
    """predict's outputs for a stand-in case: the mask PNG equals `brightness_mask` of the decoded image
    pixel for pixel, and its results.csv row (size, root pixels, root length) agrees."""
    expected = brightness_mask(read_image(case.image))
    mask = read_mask(mask_path)
    if mask.shape != expected.shape:
        return False, f"{mask_path.name}: {mask.shape[1]}x{mask.shape[0]} (WxH), expected {expected.shape[::-1]}"
    wrong = int(np.count_nonzero((mask == 1) != expected))
    problems = [f"{wrong} mask pixels differ from the stand-in's"] if wrong else []
    if row is None:
        problems.append("no row in results.csv")
    else:
        got = {"height": int(row["height"]), "width": int(row["width"]), "root pixels": int(row["root_pixels"])}
        problems += _stand_in_problems(case, expected, {**got, "root length": float(row["root_length_px"])})
    detail = f"{mask_path.name}: {mask.shape[1]}x{mask.shape[0]} (WxH), {int(expected.sum())} root px"
    return not problems, "; ".join([detail, *problems])


def check_stand_in_scores(case: Case, row: dict[str, str] | None) -> tuple[bool, str]:
    """eval's per_image.csv row for a stand-in case: the confusion counts of `brightness_mask` against the
    annotation, computed with NumPy, and the predicted root length close to the drawn roots'."""
    if row is None:
        return False, "no row in per_image.csv"
    image, truth = read_image(case.image), read_mask(case.mask)
    pred = brightness_mask(image)
    want = {
        "tp": int(np.count_nonzero(pred & (truth == 1))),
        "fp": int(np.count_nonzero(pred & (truth == 0))),
        "fn": int(np.count_nonzero(~pred & (truth == 1))),
        "tn": int(np.count_nonzero(~pred & (truth == 0))),
    }
    problems = [f"{key} {row[key]} != {value}" for key, value in want.items() if int(float(row[key])) != value]
    problems += _stand_in_problems(
        case, pred, {"root pixels": int(float(row["root_pixels_pred"])), "root length": float(row["length_pred_px"])}
    )
    return not problems, "; ".join([f"f1={row['f1']} tp={row['tp']} fp={row['fp']} fn={row['fn']}", *problems])


def combine(cases: list[Case], dest: Path, split: dict[str, list[str]] | None = None) -> Path:
    """One images/ + masks/ folder holding the images and masks of `cases` (hard links where possible,
    symbolic links as they are). A case checked alone (`Case.alone`) brings only its first pair: its other
    files describe its own split."""
    for case in cases:
        for path in case.files:
            if path.parent.name not in ("images", "masks") or (case.alone and path not in (case.image, case.mask)):
                continue
            target = dest / path.relative_to(case.root)
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.is_symlink():
                os.symlink(os.readlink(path), target)
                continue
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)
    if split is not None:
        (dest / "split.json").write_text(json.dumps(split))
    return dest


def add_good_pairs(dest: Path, n: int = 3, size: tuple[int, int] = (192, 160)) -> list[str]:
    """Ordinary pairs beside the cases, so a folder can train and validate; returns their stems."""
    stems = []
    for i in range(n):
        image, mask = scene(size, seed=100 + i)
        _save(image, dest / "images" / f"good_{i}.png")
        _save(mask * 255, dest / "masks" / f"good_{i}.png")
        stems.append(f"good_{i}")
    return stems


def names_file(message: str, path: Path) -> bool:
    """Whether an error message names the file (its full path or at least its name)."""
    return str(path) in message or path.name in message


# ------------------------------------------------------------------------------------- running the corpus
#: a command's verdict per case: (met the expected outcome, what happened)
Verdicts = dict[str, tuple[bool, str]]


def _quoted(path: Path) -> str:
    return f"'{path}'"  # Hydra's override parser needs quotes around spaces and non-ASCII


def _error_verdict(case: Case, message: str, expected: str | None) -> tuple[bool, str]:
    named = all(names_file(message, path) for path in case.bad_files)
    ok = expected is not None and expected in message and named
    return ok, message.splitlines()[0][:300] if message else ""


def _check_verdict(case: Case, report) -> tuple[bool, str]:
    """One case's verdict from a check report: its errors name each bad file, or no error and its warning."""
    unnamed = [str(p) for p in report.problems if not os.path.lexists(p.path.split(" and ")[0])]
    mine = [p for p in report.problems if any(f.name in p.path or f.name in p.message for f in case.files)]
    errors = [p for p in mine if p.error]
    text = " | ".join(str(p) for p in mine)
    if case.expects_error:
        ok = any(case.data_error in p.message and all(names_file(str(p), f) for f in case.bad_files) for p in errors)
    else:
        ok = not errors and (case.warning is None or any(case.warning in p.message for p in mine if not p.error))
        if ok and case.verify is not None:
            try:
                case.verify(case)
            except AssertionError as failure:
                ok, text = False, f"read wrongly: {failure}"
    return ok and not unnamed, text or "no problem reported"


def run_check(cases: list[Case], work: Path) -> Verdicts:
    """All cases in one folder through `check_source` (a split-file case in its own folder): errors and
    warnings name each file."""
    from rootseg.sources.check import check_source
    from rootseg.sources.folder import FolderSource

    together = [c for c in cases if not c.alone]
    report = check_source(FolderSource(combine(together, work / "check é corpus")))
    verdicts: Verdicts = {case.name: _check_verdict(case, report) for case in together}
    for case in (c for c in cases if c.alone):
        try:
            verdicts[case.name] = _check_verdict(case, check_source(FolderSource(case.root)))
        except Exception as error:  # a crash of check is the finding, not a test crash
            verdicts[case.name] = (False, f"{type(error).__name__}: {error}"[:300])
    return verdicts


def run_train(cases: list[Case], work: Path) -> Verdicts:
    """`debug=fdr` training: bad files refused up front by `check_data=true` (every one named in one error);
    readable cases trained on, each in the train split so the data module reads every one of them."""
    from rootseg.tasks.fit import train

    base = ["+experiment=unet_demo", "debug=fdr", "data=folder", "data.batch_size=2", "logger=csv"]
    verdicts: Verdicts = {}
    bad = [c for c in cases if c.expects_error and "train" not in c.skip and not c.alone]
    good = [c for c in cases if not c.expects_error and "train" not in c.skip and not c.alone]
    for case in (c for c in cases if c.alone and "train" not in c.skip):
        verdicts[case.name] = _train_alone(case, work, base)
    if bad:
        folder = combine(bad, work / "train bad é")
        add_good_pairs(folder)
        cfg = compose_task("train", [*base, f"data.root={_quoted(folder)}", "check_data=true"], work / "run_bad")
        try:
            train(cfg)
            message = ""
        except ValueError as error:
            message = str(error)
        for case in bad:
            lines = "\n".join(line for line in message.splitlines() if any(f.name in line for f in case.bad_files))
            verdicts[case.name] = _error_verdict(case, lines, case.data_error) if message else (False, "trained")
        assert not (work / "run_bad" / "checkpoints").exists(), "training started despite bad data"
    if good:
        folder = combine(good, work / "train ok é")
        stems = add_good_pairs(folder)
        split = {"train": [c.image.stem for c in good], "val": stems[:1], "test": stems[1:2]}
        (folder / "split.json").write_text(json.dumps(split))
        cfg = compose_task("train", [*base, f"data.root={_quoted(folder)}"], work / "run_ok")
        try:
            metrics = train(cfg)
            result = (True, f"trained: {sorted(k for k in metrics if k.startswith('test/'))[:2]}")
        except Exception as error:  # a failure here is the finding, not a test crash
            result = (False, f"{type(error).__name__}: {error}"[:300])
        verdicts.update({case.name: result for case in good})
    return verdicts


def _train_alone(case: Case, work: Path, base: list[str]) -> tuple[bool, str]:
    """A split-file case: training without `check_data` refuses a bad split file before anything is written
    under checkpoints/; a good one is read (`train=false test=false`: no fitting, the split checks still run)."""
    from rootseg.tasks.fit import train

    run_dir = work / f"run_{case.name}"
    overrides = [*base, f"data.root={_quoted(case.root)}"] + (
        [] if case.expects_error else ["train=false", "test=false"]
    )
    try:
        train(compose_task("train", overrides, run_dir))
        message = ""
    except Exception as error:  # a crash is the finding, not a test crash
        message = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
    if not case.expects_error:
        return not message, message[:300] or "split file read"
    if (run_dir / "checkpoints").exists():
        return False, "training started despite a bad split file"
    return _error_verdict(case, message, case.data_error) if message else (False, "trained")


def run_eval(cases: list[Case], work: Path, ckpt: Path) -> Verdicts:
    """`rootseg.evaluation.run.evaluate` with `split=all`: each bad case alone (eval stops at the first bad file),
    the readable ones together; a row per image, of the displayed size."""
    from rootseg.evaluation.run import evaluate

    verdicts: Verdicts = {}
    base = [f"ckpt_path={_quoted(ckpt)}", "data=folder", "split=all", "figures=0", "device=cpu"]
    composed = compose_task("eval", [*base, "data.root=."], work)  # once: each bad case changes only its root
    for case in cases:
        if not case.expects_error or "eval" in case.skip:
            continue
        cfg = _with_root(composed, case.root, work / f"eval_{len(verdicts)}")
        try:
            evaluate(cfg)
            verdicts[case.name] = (False, "evaluated without an error")
        except ValueError as error:
            verdicts[case.name] = _error_verdict(case, str(error), case.data_error)
        except Exception as error:  # a crash is the finding, not a test crash
            verdicts[case.name] = (False, f"{type(error).__name__}: {error}"[:300])
    good = [c for c in cases if not c.expects_error and "eval" not in c.skip]
    ordinary = [c for c in good if not c.stand_in and not c.alone]
    for case in (c for c in good if c.alone):  # its own folder and split file: a row for each of its images
        try:
            rows = _eval_rows(
                compose_task("eval", [*base, f"data.root={_quoted(case.root)}"], work / f"eval_{case.name}")
            )
            stems = sorted(f.stem for f in case.files if f.parent.name == "images")
            verdicts[case.name] = (sorted(rows) == stems, f"rows for {sorted(rows)}")
        except Exception as error:
            verdicts[case.name] = (False, f"{type(error).__name__}: {error}"[:300])
    if ordinary:
        folder = combine(ordinary, work / "eval ok é 根")
        try:
            rows = _eval_rows(compose_task("eval", [*base, f"data.root={_quoted(folder)}"], work / "eval_ok"))
            for case in ordinary:
                row = rows.get(case.image.stem)
                verdicts[case.name] = (row is not None, f"f1={row['f1']}" if row else "no row in per_image.csv")
        except Exception as error:
            verdicts.update({c.name: (False, f"{type(error).__name__}: {error}"[:300]) for c in ordinary})
    for case in (c for c in good if c.stand_in):  # alone: its own run, the stand-in network, the model's grid
        run_dir = work / f"eval_{case.name}"
        try:
            with stand_in_network():
                # traits=false: root traits of two 108 MP masks cost minutes and are tested in tests/measure
                grid = [*base, f"data.root={_quoted(case.root)}", "step=tile", "batch_size=64", "traits=false"]
                rows = _eval_rows(compose_task("eval", grid, run_dir))
            verdicts[case.name] = check_stand_in_scores(case, rows.get(case.image.stem))
        except Exception as error:
            verdicts[case.name] = (False, f"{type(error).__name__}: {error}"[:300])
    return verdicts


def _with_root(cfg, root: Path, run_dir: Path):
    """A copy of a composed config for another data root and run directory (composing takes ~0.6 s)."""
    import copy

    from omegaconf import open_dict

    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.data.root = str(root)
        cfg.paths.output_dir = str(run_dir)
    return cfg


def _eval_rows(cfg) -> dict[str, dict[str, str]]:
    """Run `rootseg.evaluation.run.evaluate` and return its per_image.csv rows by image name."""
    from rootseg.evaluation.run import evaluate

    evaluate(cfg)
    with open(Path(cfg.paths.output_dir) / "per_image.csv", newline="", encoding="utf-8") as handle:
        return {row["name"]: row for row in csv.DictReader(handle)}


def run_predict(cases: list[Case], work: Path, ckpt: Path) -> Verdicts:
    """`rootseg.inference.folder.predict` over one folder of every case's images: unreadable ones reported by name
    and skipped, every other mask written with the displayed size. Stand-in cases are predicted by
    `_predict_stand_in`, each alone."""

    verdicts: Verdicts = {}
    todo = [c for c in cases if "predict" not in c.skip and not c.stand_in]
    for case in (c for c in cases if "predict" not in c.skip and c.stand_in):
        try:
            verdicts[case.name] = _predict_stand_in(case, work, ckpt)
        except Exception as error:
            verdicts[case.name] = (False, f"{type(error).__name__}: {error}"[:300])
    if not todo:
        return verdicts
    folder = combine(todo, work / "predict in é")
    output = work / "predict out é"
    overrides = [f"ckpt_path={_quoted(ckpt)}", f"input={_quoted(folder / 'images')}", f"output={_quoted(output)}"]
    cfg = compose_task("predict", [*overrides, "device=cpu", "save_overlay=false"], work / "predict_run")
    summary = predict(cfg)
    failures = {Path(f["path"]).name: f["error"] for f in summary["failures"]}
    listed = set()  # failures.csv, what a user reads afterwards: every failure counted and named there
    if (output / "failures.csv").is_file():
        with open(output / "failures.csv", newline="", encoding="utf-8") as handle:
            listed = {row["name"] for row in csv.DictReader(handle)}
    jobs = {job.path.name: job.stem for job in plan_jobs(find_images(folder / "images"), output)}
    for case in todo:
        images = [case.image] if case.alone else [f for f in case.files if f.parent.name == "images"]
        results = []
        for image in images:
            if image.name in failures:
                ok, detail = _error_verdict(case, failures[image.name], case.predict_error)
                counted = image.name in listed and summary["failed"] == len(failures)
                results.append((ok and counted, detail if counted else f"{detail} (not in failures.csv)"))
                continue
            if case.predict_error is not None:
                results.append((False, f"{image.name}: not reported ({case.predict_error} expected)"))
                continue
            mask = output / f"{jobs[image.name]}.png"
            if not mask.is_file():
                results.append((False, f"{image.name}: no output mask"))
                continue
            shape = Image.open(mask).size[::-1]
            results.append((shape == case.display_shape, f"{mask.name}: {shape[1]}x{shape[0]} (WxH)"))
        verdicts[case.name] = (all(r[0] for r in results), "; ".join(r[1] for r in results))
    return verdicts


def _predict_stand_in(case: Case, work: Path, ckpt: Path) -> tuple[bool, str]:
    """One image through `rootseg.inference.folder.predict` with `brightness_net`: Smith's grid (step = tile_out,
    constant blending, each pixel predicted once), 64 tiles a batch, mask and RootPainter outputs."""
    from rootseg.tasks.checkpoints import read_checkpoint

    tile_out = int(read_checkpoint(ckpt)["rootseg"]["config"]["model"]["tile_out"])
    output = work / f"predict {case.name} é"
    overrides = [
        f"ckpt_path={_quoted(ckpt)}",
        f"input={_quoted(case.image)}",
        f"output={_quoted(output)}",
        "device=cpu",
        "save_overlay=false",
        f"step={tile_out}",
        "blend=constant",
        "batch_size=64",
        "traits=false",  # as in run_eval: the traits of a 108 MP mask are tested in tests/measure, not here
    ]
    with stand_in_network():
        summary = predict(compose_task("predict", overrides, work / f"predict_run_{case.name}"))
    if summary["failures"] or summary["segmented"] != 1:
        return False, f"segmented {summary['segmented']}, failures {summary['failures']}"[:300]
    stem = plan_jobs([case.image], output)[0].stem
    with open(output / CSV_NAME, newline="", encoding="utf-8") as handle:
        row = next((r for r in csv.DictReader(handle) if r["name"] == case.image.name), None)
    ok, detail = check_stand_in_prediction(case, output / f"{stem}.png", row)
    painted = Image.open(output / f"{stem}_rootpainter.png")
    if painted.size[::-1] != case.display_shape:
        ok, detail = False, f"{detail}; RootPainter output {painted.size[0]}x{painted.size[1]} (WxH)"
    return ok, detail
