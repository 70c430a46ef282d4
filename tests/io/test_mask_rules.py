"""Masks are read by rule (rootseg.io.masks.decode_mask): grey+alpha, transparency, palettes, floats and deep
integers each have one reading, checked here against masks built from a known truth; what no rule reads
unambiguously is refused with the rule in the message, and `check` reports it as an error."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from rootseg.io.images import ImageReadError
from rootseg.io.masks import decode_mask, read_mask
from rootseg.sources.check import check_source
from rootseg.sources.folder import FolderSource


@pytest.fixture
def truth() -> np.ndarray:
    mask = np.zeros((30, 40), np.uint8)
    mask[:, 6:10] = 1
    mask[12:15, :] = 1
    return mask


def _save(path, array, mode=None):
    (Image.fromarray(array, mode) if mode else Image.fromarray(array)).save(path)
    return path


def test_grey_alpha_reads_the_grey_channel_when_opaque(tmp_path, truth):
    la = np.dstack([truth * 255, np.full(truth.shape, 255, np.uint8)])
    path = _save(tmp_path / "la.png", la, "LA")
    assert Image.open(path).mode == "LA"
    np.testing.assert_array_equal(read_mask(path), truth)


@pytest.mark.parametrize("channels", ["LA", "RGBA"])
@pytest.mark.parametrize("colour", [255, 0])  # white strokes or black strokes on transparency
def test_one_colour_on_transparency_is_a_root_layer(tmp_path, truth, channels, colour):
    """Painted = root where at least half as opaque as the most opaque pixel; transparent = background."""
    n = 2 if channels == "LA" else 4
    array = np.zeros((*truth.shape, n), np.uint8)
    array[..., :-1] = colour
    array[..., -1] = truth * 255
    edge = np.roll(truth, 1, axis=1) & (1 - truth)
    array[edge == 1, -1] = 127  # a soft edge just under half opacity: background
    decoded = read_mask(_save(tmp_path / "layer.png", array, channels))
    np.testing.assert_array_equal(decoded, truth)
    array[edge == 1, -1] = 128  # just over: root
    np.testing.assert_array_equal(read_mask(_save(tmp_path / "layer.png", array, channels)), truth | edge)


def test_a_semi_transparent_layer_is_read_by_its_own_opacity(truth):
    rgba = np.zeros((*truth.shape, 4), np.uint8)
    rgba[truth == 1] = (255, 255, 255, 100)  # the whole layer at 40 % opacity
    np.testing.assert_array_equal(decode_mask(rgba), truth)


def test_red_strokes_alone_stay_a_rootpainter_annotation(truth):
    """RootPainter's corrective annotation may hold root strokes only: the rest is unlabelled, not background."""
    rgba = np.zeros((*truth.shape, 4), np.uint8)
    rgba[truth == 1] = (255, 0, 0, 180)
    expected = np.where(truth == 1, 1, 255).astype(np.uint8)
    np.testing.assert_array_equal(decode_mask(rgba), expected)


def test_bright_and_dark_paint_with_transparency_is_refused_with_the_rule(tmp_path, truth):
    rgba = np.zeros((*truth.shape, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[truth == 1, :3] = 255
    rgba[20:, :, 3] = 0  # not annotated here: background or unlabelled?
    path = _save(tmp_path / "mixed.png", rgba)
    with pytest.raises(ImageReadError) as error:
        read_mask(path)
    message = str(error.value)
    assert str(path) in message and "ambiguous mask" in message
    assert "red root, green background, transparent unlabelled" in message
    assert "painted = root, transparent = background" in message


def test_a_palette_reads_its_colours_and_a_dark_root_colour_stays_root(tmp_path, truth):
    palette = Image.fromarray(truth, "L").convert("P")
    palette.putpalette([0, 0, 0, 90, 40, 10] + [0] * 762)  # black background, dark brown root
    palette.save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    np.testing.assert_array_equal(read_mask(tmp_path / "p.png"), truth)
    # a palette of grey levels is read as grey: root where > threshold
    levels = np.where(truth == 1, 2, np.where(np.arange(40)[None, :] < 20, 0, 1)).astype(np.uint8)
    grey = Image.fromarray(levels, "L").convert("P")
    grey.putpalette([0, 0, 0, 60, 60, 60, 250, 250, 250] + [0] * 759)
    grey.save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "g.png"), truth)


@pytest.mark.parametrize(
    ("values", "dtype"),
    [((0, 100), np.uint8), ((0, 100), np.uint16), ((0, 4000), np.uint16), ((0, 0.3), np.float32), ((0, 1), np.int32)],
)
def test_two_levels_one_of_them_zero_make_the_other_root(truth, values, dtype):
    array = np.where(truth == 1, values[1], values[0]).astype(dtype)
    np.testing.assert_array_equal(decode_mask(array), truth)


def test_a_soft_float_mask_is_root_from_one_half(tmp_path, truth):
    rng = np.random.default_rng(0)
    soft = np.where(truth == 1, rng.uniform(0.5, 1.0, truth.shape), rng.uniform(0.0, 0.2, truth.shape))
    tifffile.imwrite(tmp_path / "soft.tif", soft.astype(np.float32))
    np.testing.assert_array_equal(read_mask(tmp_path / "soft.tif"), truth)
    ramp = np.array([[0.0, 0.49, 0.499, 0.5, 0.51, 1.0]], np.float32)
    np.testing.assert_array_equal(decode_mask(ramp), [[0, 0, 0, 1, 1, 1]])


def test_deep_integer_masks_are_scaled_by_bit_depth(truth):
    rng = np.random.default_rng(1)
    soft = np.where(truth == 1, rng.integers(40000, 65536, truth.shape), rng.integers(0, 20000, truth.shape))
    np.testing.assert_array_equal(decode_mask(soft.astype(np.uint16)), truth)


@pytest.mark.parametrize(
    ("array", "text"),
    [
        (np.array([[-3.0, 2.0, 0.5]], np.float32), "negative values (down to -3)"),
        (np.array([[-1, 0, 1]], np.int16), "negative values"),
        (np.array([[0.0, 300.0, 1000.0]], np.float32), "float mask with values up to 1000"),
        (np.array([[0.0, np.nan, 1.0]], np.float32), "NaN"),
        (np.zeros((4, 4, 5), np.uint8), "grey, grey+alpha, RGB or RGBA"),
    ],
)
def test_masks_without_a_reading_are_refused_by_name(array, text):
    with pytest.raises(ImageReadError, match="mask.tif") as error:
        decode_mask(array, path="mask.tif")
    assert text in str(error.value)


def test_check_reports_refused_masks_as_errors_not_warnings(tmp_path, truth):
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    image = np.zeros((*truth.shape, 3), np.uint8)
    for stem in ("a", "b", "c"):
        _save(tmp_path / "images" / f"{stem}.png", image)
        _save(tmp_path / "masks" / f"{stem}.png", truth * 255)
    mixed = np.dstack([np.repeat(truth[..., None] * 255, 3, 2), np.full(truth.shape, 255, np.uint8)])
    mixed[20:, :, 3] = 0
    _save(tmp_path / "masks" / "b.png", mixed)
    tifffile.imwrite(tmp_path / "masks" / "c.tif", np.where(truth == 1, 5.0, -5.0).astype(np.float32))
    (tmp_path / "masks" / "c.png").unlink()
    report = check_source(FolderSource(tmp_path))
    errors = {p.path.rsplit("/", 1)[-1]: p.message for p in report.errors}
    assert set(errors) == {"b.png", "c.tif"}, report.text()
    assert "ambiguous mask" in errors["b.png"] and "negative values" in errors["c.tif"]
