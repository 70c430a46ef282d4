"""Files whose header lies are refused before their pixels are decoded (rootseg.io.headers), files over the pixel
budget are refused by name, and ordinary files of every layout still read (no false alarm): interlaced and
low-bit PNGs, progressive JPEGs of flat images, tiled TIFFs, LZW TIFFs, uncompressed TIFFs mapped lazily."""

from __future__ import annotations

import io
import os
import struct
import time
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image

from rootseg.io import headers
from rootseg.io.images import ImageReadError, LazyImage, open_image, read_image
from rootseg.io.masks import read_mask


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png(width: int, height: int, raw: bytes, interlace: int = 0) -> bytes:
    """A grey 8-bit PNG from already filtered rows (`raw`), written by hand."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, interlace)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")
    )


def _rows(grey: np.ndarray) -> bytes:
    return b"".join(b"\x00" + row.tobytes() for row in grey)


def _adam7(grey: np.ndarray) -> bytes:
    """The seven interlaced passes of an image, each row with filter byte 0 (PNG spec, Adam7)."""
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    return b"".join(_rows(grey[y0::dy, x0::dx]) for x0, y0, dx, dy in passes if grey[y0::dy, x0::dx].size)


@pytest.fixture
def grey() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (37, 53), dtype=np.uint8)


@pytest.fixture
def no_decoding(monkeypatch):
    """Within the test, PIL decoding any pixel is a failure: refusals must come from the header."""
    from PIL import ImageFile

    def decode(self):
        raise AssertionError(f"{self.filename} was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", decode)


def test_a_png_claiming_40000x40000_is_refused_without_decoding(tmp_path, no_decoding):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png(40000, 40000, b"\x00" + bytes(40000)))
    assert path.stat().st_size < 200
    start = time.perf_counter()
    with pytest.raises(ImageReadError) as error:
        read_image(path)
    assert time.perf_counter() - start < 1.0  # decoding it took 65 s and 15.7 GB
    message = str(error.value)
    assert str(path) in message and "the header says 40000x40000" in message and "inflate to at most" in message


def test_a_png_holding_fewer_rows_than_its_header_is_refused(tmp_path, grey):
    h, w = grey.shape
    whole = tmp_path / "whole.png"
    whole.write_bytes(_png(w, h, _rows(grey)))
    np.testing.assert_array_equal(read_image(whole)[..., 0], grey)  # the hand-made PNG is right
    short = tmp_path / "short.png"
    short.write_bytes(_png(w, h, _rows(grey[:11])))  # a complete zlib stream of 11 rows
    with pytest.raises(ImageReadError, match=f"pixel data for 11 of its {h} rows") as error:
        read_image(short)
    assert "compressed stream ends early" in str(error.value) and str(short) in str(error.value)
    with pytest.raises(ImageReadError, match="pixel data for 11 of its"):
        read_mask(short)  # masks are read by the same path


def test_interlaced_pngs_are_measured_by_their_seven_passes(tmp_path, grey):
    h, w = grey.shape
    raw = _adam7(grey)
    assert headers.png_data_bytes(w, h, 8, 0, 1) == len(raw)
    path = tmp_path / "interlaced.png"
    path.write_bytes(_png(w, h, raw, interlace=1))
    np.testing.assert_array_equal(read_image(path)[..., 0], grey)
    path.write_bytes(_png(w, h, raw[: len(raw) - 40], interlace=1))
    with pytest.raises(ImageReadError, match=f"{len(raw) - 40} of {len(raw)} bytes"):
        headers.check_png(path)
    with pytest.raises(ImageReadError, match="cannot decode image"):
        read_image(path)  # PIL's interlaced decoder reports it first


@pytest.mark.parametrize(
    "save",
    [
        lambda a, p: Image.fromarray(a > 127).save(p),  # 1 bit
        lambda a, p: Image.fromarray(a // 64).convert("P").save(p, bits=2),  # 2-bit palette
        lambda a, p: Image.fromarray(a.astype(np.uint16) * 257).save(p),  # 16 bit grey
        lambda a, p: Image.fromarray(np.dstack([a, a, a, a])).save(p),  # RGBA
        lambda a, p: Image.fromarray(np.zeros((3000, 3000), np.uint8)).save(p),  # flat: compresses ~1000x
    ],
)
def test_ordinary_pngs_of_every_layout_still_read(tmp_path, grey, save):
    path = tmp_path / "ok.png"
    save(grey, path)
    headers.check_png(path)
    assert read_image(path).ndim == 3


def test_a_jpeg_claiming_40000x40000_is_refused_before_decoding(tmp_path, no_decoding):
    buffer = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 60, np.uint8)).save(buffer, format="JPEG")
    data = buffer.getvalue()
    at = data.index(b"\xff\xc0")
    path = tmp_path / "bomb.jpg"
    path.write_bytes(data[: at + 5] + struct.pack(">HH", 40000, 40000) + data[at + 9 :])
    with pytest.raises(ImageReadError, match="the header says 40000x40000") as error:
        read_image(path)
    assert str(path) in str(error.value) and "takes at least 4687500 bytes" in str(error.value)


def test_flat_jpegs_are_not_taken_for_lying_ones(tmp_path):
    # the tightest legitimate files: flat images, optimised and progressive Huffman tables, 4:2:0 and grey
    flat = np.full((2000, 3000, 3), 128, np.uint8)
    for name, kwargs in (("p.jpg", {"progressive": True, "optimize": True}), ("o.jpg", {"optimize": True})):
        Image.fromarray(flat).save(tmp_path / name, quality=50, **kwargs)
        assert read_image(tmp_path / name).shape == (2000, 3000, 3)
    Image.fromarray(flat[..., 0]).save(tmp_path / "g.jpg", quality=50, optimize=True)
    assert read_image(tmp_path / "g.jpg").shape == (2000, 3000, 3)


def test_jpeg_minimum_is_one_bit_per_block_of_each_component():
    # 4:2:0: luma 100 x 50 blocks, each chroma 50 x 25 blocks; 7500 blocks -> 937 bytes
    assert headers.jpeg_min_bytes(800, 400, [(2, 2), (1, 1), (1, 1)]) == (100 * 50 + 2 * 50 * 25) // 8
    assert headers.jpeg_min_bytes(801, 400, [(1, 1)]) == (101 * 50) // 8


def _tiff_strips(path, image, rows=8, **kwargs):
    tifffile.imwrite(path, image, rowsperstrip=rows, **kwargs)
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages.first.tags["StripByteCounts"]
        return tag.valueoffset, np.dtype(tifffile.TIFF.DATA_FORMATS[tag.dtype]).itemsize


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_a_tiff_with_strips_that_hold_no_data_is_refused(tmp_path, grey, compression):
    path = tmp_path / "strips.tif"
    at, size = _tiff_strips(path, grey, compression=compression)
    np.testing.assert_array_equal(read_image(path)[..., 0], grey)
    data = bytearray(path.read_bytes())
    data[at + 2 * size : at + 3 * size] = bytes(size)  # the third strip: no data (tifffile reads black)
    path.write_bytes(bytes(data))
    for read in (read_image, open_image):
        with pytest.raises(ImageReadError, match="1 of its 5 strips hold no data"):
            read(path)


def test_a_tiff_whose_strips_lie_past_its_end_is_refused(tmp_path, grey):
    path = tmp_path / "cut.tif"
    _tiff_strips(path, grey, compression="zlib")
    with tifffile.TiffFile(path) as tif:
        end = max(o + c for o, c in zip(tif.pages.first.dataoffsets, tif.pages.first.databytecounts, strict=True))
    path.write_bytes(path.read_bytes()[: end - 3])
    with pytest.raises(ImageReadError, match="lie past the end of the file"):
        read_image(path)


def test_tiled_lzw_and_uncompressed_tiffs_still_read(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "tiled.tif", rgb, tile=(32, 32), compression="zlib", photometric="rgb")
    np.testing.assert_array_equal(read_image(tmp_path / "tiled.tif"), rgb)
    # LZW: tifffile needs imagecodecs for it, PIL does not (the usual scanner TIFF)
    Image.fromarray(rgb).save(tmp_path / "lzw.tif", compression="tiff_lzw")
    np.testing.assert_array_equal(read_image(tmp_path / "lzw.tif"), rgb)
    tifffile.imwrite(tmp_path / "plain.tif", rgb, photometric="rgb")
    lazy = open_image(tmp_path / "plain.tif")
    assert isinstance(lazy, LazyImage)
    np.testing.assert_array_equal(np.asarray(lazy), rgb)


def test_grey_with_alpha_images_read_as_grey(tmp_path, grey):
    la = np.dstack([grey, np.full(grey.shape, 255, np.uint8)])
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    image = read_image(tmp_path / "la.png")
    assert image.shape == (*grey.shape, 3)
    np.testing.assert_array_equal(image, np.repeat(grey[..., None], 3, axis=2))


# ------------------------------------------------------------------------------------------ pixel budget
def test_the_default_budget_is_memory_over_bytes_per_pixel(monkeypatch):
    monkeypatch.delenv(headers.ENV_MAX_PIXELS, raising=False)
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert 0 < headers.memory_bytes() <= physical
    assert headers.pixel_budget() == headers.memory_bytes() // headers.BYTES_PER_PIXEL
    # the 108 MP stitched panel of the bad-input corpus fits on any machine with 4 GiB
    assert 4 * 2**30 // headers.BYTES_PER_PIXEL > 12000 * 9000


@pytest.mark.parametrize("kind", ["png", "jpg", "tif", "plain.tif"])
def test_an_image_over_the_budget_is_refused_by_name_before_decoding(tmp_path, monkeypatch, kind):
    rgb = np.zeros((60, 80, 3), np.uint8)
    path = tmp_path / f"scan.{kind}"
    if kind.endswith("tif"):
        tifffile.imwrite(path, rgb, photometric="rgb", compression=None if kind == "plain.tif" else "zlib")
    else:
        Image.fromarray(rgb).save(path)
    monkeypatch.setenv(headers.ENV_MAX_PIXELS, str(60 * 80))
    assert read_image(path).shape == (60, 80, 3)  # at the budget: read
    monkeypatch.setenv(headers.ENV_MAX_PIXELS, str(60 * 80 - 1))
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail(f"{self.filename} was decoded"))
    monkeypatch.setattr(tifffile.TiffFile, "asarray", lambda self, *a, **k: pytest.fail("the TIFF was decoded"))
    for read in (read_image, open_image):
        with pytest.raises(ImageReadError, match="over the pixel budget") as error:
            read(path)
        assert str(path) in str(error.value) and "80x60 (WxH)" in str(error.value)
        assert "max_image_pixels" in str(error.value)


def _isolated_budget(monkeypatch) -> None:
    """No budget set; whatever a test sets through `set_pixel_budget` is undone after it."""
    monkeypatch.setenv(headers.ENV_MAX_PIXELS, "1")  # records the variable's state to restore
    monkeypatch.delenv(headers.ENV_MAX_PIXELS)
    monkeypatch.setattr(headers, "_ENV_AT_START", None)


def test_max_image_pixels_sets_the_budget_and_null_restores_the_default(monkeypatch):
    _isolated_budget(monkeypatch)
    monkeypatch.setattr(headers, "_ENV_AT_START", None)
    default = headers.pixel_budget()
    headers.set_pixel_budget("2e6")
    assert headers.pixel_budget() == 2_000_000 and os.environ[headers.ENV_MAX_PIXELS] == "2000000"
    headers.set_pixel_budget(None)  # the next command without the setting gets the default again
    assert headers.pixel_budget() == default
    with pytest.raises(ValueError, match="max_image_pixels=-5"):
        headers.set_pixel_budget(-5)


def test_check_honours_max_image_pixels(tmp_path, monkeypatch, capsys):
    """`python -m rootseg.check ... max_image_pixels=N`: the setting reaches the readers (in-process)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from rootseg.cli import check as check_cli
    from rootseg.config.run_config import CONFIG_DIR

    _isolated_budget(monkeypatch)
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    Image.fromarray(np.zeros((60, 80, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    Image.fromarray(np.zeros((60, 80), np.uint8)).save(tmp_path / "masks" / "a.png")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("check", ["data=folder", f"data.root={tmp_path}", "max_image_pixels=1000"])
    GlobalHydra.instance().clear()
    with pytest.raises(SystemExit) as exit_:
        check_cli.main.__wrapped__(cfg)
    assert exit_.value.code == 2
    out = capsys.readouterr().out
    assert "a.png: the image is 80x60 (WxH) = 0 MP, over the pixel budget of 0 MP" in out and "1 error(s)" in out
