import io as pyio

import numpy as np
import pytest
from PIL import Image

from rootseg.io.atomic import atomic_path, write_image
from rootseg.io.images import ImageReadError, read_image
from rootseg.io.masks import read_mask, read_pair


def _save(path, array, **kwargs):
    Image.fromarray(array).save(path, **kwargs)
    return path


@pytest.fixture
def truth():
    mask = np.zeros((40, 50), np.uint8)
    mask[10:20, 5:45] = 1
    return mask


@pytest.mark.parametrize(
    ("name", "encode"),
    [
        ("zero_one.png", lambda m: m),
        ("zero_255.png", lambda m: m * 255),
        ("grey_jpeg.jpg", lambda m: m * 255),
        ("rgb_jpeg.jpg", lambda m: np.repeat((m * 255)[:, :, None], 3, axis=2)),
        ("rgb_png.png", lambda m: np.repeat((m * 255)[:, :, None], 3, axis=2)),
        ("bool.png", lambda m: m.astype(bool)),
        ("sixteen_bit.png", lambda m: m.astype(np.uint16) * 65535),
    ],
)
def test_every_mask_encoding_decodes_to_the_same_labels(tmp_path, truth, name, encode):
    path = _save(tmp_path / name, encode(truth), **({"quality": 90} if name.endswith(".jpg") else {}))
    decoded = read_mask(path)
    assert decoded.dtype == np.uint8 and decoded.shape == truth.shape
    if name.endswith(".jpg"):  # lossy edges: allow a few pixels
        assert (decoded != truth).sum() <= 10
    else:
        np.testing.assert_array_equal(decoded, truth)


def test_rootpainter_annotation_gives_root_background_and_unlabelled(tmp_path):
    rgba = np.zeros((4, 3, 4), np.uint8)
    rgba[0] = (255, 0, 0, 255)  # root
    rgba[1] = (0, 255, 0, 255)  # background
    path = _save(tmp_path / "annot.png", rgba)
    np.testing.assert_array_equal(read_mask(path)[:, 0], [1, 0, 255, 255])


def test_rootpainter_encoding_is_what_the_reader_and_the_annotate_app_take(tmp_path):
    """The one encoder writes RootPainter's colours: the mask reader decodes it exactly, and the annotate app's
    upload check accepts it (the colours are written once, in rootseg.io.rootpainter)."""
    from rootseg.annotate.project import check_annotation
    from rootseg.io.rootpainter import encode_rootpainter_annotation

    mask = np.random.default_rng(3).choice(np.array([0, 1, 255], np.uint8), size=(9, 7))
    rgba = encode_rootpainter_annotation(mask)
    assert {tuple(v) for v in rgba.reshape(-1, 4)} == {(255, 0, 0, 255), (0, 255, 0, 255), (0, 0, 0, 0)}
    np.testing.assert_array_equal(read_mask(_save(tmp_path / "annot.png", rgba)), mask)
    np.testing.assert_array_equal(check_annotation((tmp_path / "annot.png").read_bytes(), (7, 9)), rgba)


def test_rootpainter_colour_classes_by_hand():
    """Red is R > 127 >= G, B; green G > 127 >= R, B; dark all <= 127: magenta, yellow, cyan and white are none."""
    from rootseg.io.rootpainter import colour_classes, is_red_strokes

    pixels = [(255, 0, 0), (128, 127, 127), (0, 255, 0), (20, 30, 127), (255, 0, 255), (255, 255, 0), (0, 255, 255)]
    pixels += [(200, 200, 200)]
    red, green, dark = colour_classes(np.array([pixels], np.uint8))
    assert red[0].tolist() == [True, True, False, False, False, False, False, False]
    assert green[0].tolist() == [False, False, True, False, False, False, False, False]
    assert dark[0].tolist() == [False, False, False, True, False, False, False, False]
    magenta_strokes = np.array([[(255, 0, 0, 255), (255, 0, 255, 255), (0, 0, 0, 0)]], np.uint8)
    assert not is_red_strokes(magenta_strokes) and is_red_strokes(magenta_strokes[:, ::2])


def test_images_become_rgb_uint8(tmp_path):
    grey = (np.arange(20 * 30).reshape(20, 30) % 256).astype(np.uint8)
    assert read_image(_save(tmp_path / "g.png", grey)).shape == (20, 30, 3)
    deep = grey.astype(np.uint16) * 257
    np.testing.assert_array_equal(read_image(_save(tmp_path / "d.png", deep))[:, :, 0], grey)
    rgba = np.dstack([np.repeat(grey[:, :, None], 3, 2), np.full_like(grey, 255)])
    assert read_image(_save(tmp_path / "a.png", rgba)).shape == (20, 30, 3)
    cmyk = Image.fromarray(np.repeat(grey[:, :, None], 3, 2)).convert("CMYK")
    cmyk.save(tmp_path / "c.jpg")
    assert read_image(tmp_path / "c.jpg").shape == (20, 30, 3)


def test_exif_orientation_is_respected(tmp_path):
    array = np.zeros((10, 30, 3), np.uint8)
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    image.save(tmp_path / "rot.jpg", exif=exif.tobytes())
    assert read_image(tmp_path / "rot.jpg").shape == (30, 10, 3)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"hello, not an image", "cannot decode"), (None, "no such file")],
)
def test_bad_files_raise_an_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad image.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageReadError, match=message) as error:
        read_image(path)
    assert str(path) in str(error.value)


def test_truncated_jpeg_is_reported(tmp_path):
    buffer = pyio.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageReadError, match="cut.jpg"):
        read_image(path)


def test_size_mismatch_names_both_files(tmp_path):
    image = _save(tmp_path / "i.png", np.zeros((10, 10, 3), np.uint8))
    mask = _save(tmp_path / "m.png", np.zeros((10, 12), np.uint8))
    with pytest.raises(ImageReadError, match=r"m\.png.*12x10.*i\.png.*10x10"):
        read_pair(image, mask)


def test_atomic_write_leaves_nothing_on_a_crash(tmp_path):
    target = tmp_path / "out.png"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("killed mid-write")
    assert list(tmp_path.iterdir()) == []
    write_image(target, np.zeros((4, 4), np.uint8))
    assert read_mask(target).shape == (4, 4) and [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_rootpainter_segmentation_reads_back_as_root(tmp_path):
    from rootseg.io.rootpainter import rootpainter_segmentation_rgba

    truth = np.zeros((6, 7), bool)
    truth[2:4, 1:6] = True
    path = _save(tmp_path / "seg.png", rootpainter_segmentation_rgba(truth))
    np.testing.assert_array_equal(read_mask(path), truth.astype(np.uint8))


# ----------------------------------------------------------------------------- RootPainter colours, any alpha
def _rootpainter_truth():
    """Labels {0 background, 1 root, 255 unlabelled} and their RootPainter colours."""
    labels = np.full((12, 9), 255, np.uint8)
    labels[:4] = 0
    labels[4:8, 2:6] = 1
    labels[8:, :] = 0
    colours = {0: (0, 255, 0), 1: (255, 0, 0), 255: (0, 0, 0)}
    rgb = np.zeros((*labels.shape, 3), np.uint8)
    for value, colour in colours.items():
        rgb[labels == value] = colour
    return labels, rgb


@pytest.mark.parametrize("alpha", [None, 255, 180])
def test_rootpainter_colours_are_read_whatever_the_alpha(tmp_path, alpha):
    labels, rgb = _rootpainter_truth()
    if alpha is None:  # saved without alpha: black = not painted
        array = rgb
    else:  # RootPainter saves painted pixels with its brush alpha (180), unpainted ones transparent
        array = np.dstack([rgb, np.where(labels == 255, 0 if alpha < 255 else 255, alpha).astype(np.uint8)])
    np.testing.assert_array_equal(read_mask(_save(tmp_path / "annotation.png", array)), labels)


@pytest.mark.parametrize("alpha", [None, 255])
def test_fully_painted_opaque_annotation_keeps_green_as_background(tmp_path, alpha):
    labels = np.zeros((10, 14), np.uint8)
    labels[3:6, :] = 1  # one root across, every other pixel painted background
    rgb = np.where(labels[:, :, None] == 1, np.uint8([255, 0, 0]), np.uint8([0, 255, 0])).astype(np.uint8)
    array = rgb if alpha is None else np.dstack([rgb, np.full(labels.shape, alpha, np.uint8)])
    np.testing.assert_array_equal(read_mask(_save(tmp_path / "painted.png", array)), labels)
    # an image without root, painted all background
    all_green = np.zeros_like(rgb)
    all_green[:, :, 1] = 255
    np.testing.assert_array_equal(read_mask(_save(tmp_path / "soil.png", all_green)), np.zeros_like(labels))


@pytest.mark.parametrize(
    ("name", "colour", "background"),
    [
        ("white_on_black.png", (255, 255, 255), (0, 0, 0)),
        ("white_on_black.jpg", (255, 255, 255), (0, 0, 0)),
        ("red_on_black.png", (255, 0, 0), (0, 0, 0)),
        ("green_on_black.png", (0, 255, 0), (0, 0, 0)),
        ("yellow_on_blue.png", (255, 255, 0), (0, 0, 90)),
    ],
)
def test_ordinary_colour_masks_are_not_mistaken_for_annotations(tmp_path, truth, name, colour, background):
    rgb = np.where(truth[:, :, None] == 1, np.uint8(colour), np.uint8(background)).astype(np.uint8)
    decoded = read_mask(_save(tmp_path / name, rgb, **({"quality": 90} if name.endswith(".jpg") else {})))
    assert set(np.unique(decoded)) <= {0, 1}  # nothing unlabelled: not read as RootPainter
    if name.endswith(".jpg"):
        assert (decoded != truth).sum() <= 10
    else:
        np.testing.assert_array_equal(decoded, truth)
    opaque = np.dstack([rgb, np.full(truth.shape, 255, np.uint8)])  # RGBA, every pixel opaque
    if not name.endswith(".jpg"):
        np.testing.assert_array_equal(read_mask(_save(tmp_path / f"rgba_{name}", opaque)), truth)


# ----------------------------------------------------------------------------------------- bit depths
@pytest.mark.parametrize(("bits", "brightest"), [(10, 1000), (12, 4095), (12, 3000), (14, 9000), (16, 65535)])
def test_deep_images_are_scaled_by_their_bit_depth(tmp_path, bits, brightest):
    import tifffile

    full = 2**bits - 1
    grey = np.linspace(0, brightest, 40 * 30).reshape(40, 30).round().astype(np.uint16)
    path = tmp_path / f"scan_{bits}bit.tif"
    tifffile.imwrite(path, grey)
    got = read_image(path)
    expected = np.floor(grey.astype(np.float64) * 255 / full + 0.5).astype(np.uint8)  # the sensor's range
    np.testing.assert_array_equal(got[:, :, 0], expected)
    np.testing.assert_array_equal(got[:, :, 1], got[:, :, 2])
    if bits == 12 and brightest == 4095:
        assert got.max() == 255  # not 4095 / 65535 * 255 = 16: the nearly black image of a 16-bit scale


def test_a_12bit_rgb_tiff_keeps_its_brightness(tmp_path):
    import tifffile

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 4096, (25, 35, 3)).astype(np.uint16)
    rgb[0, 0] = 4095
    tifffile.imwrite(tmp_path / "rgb12.tif", rgb, photometric="rgb")
    expected = np.floor(rgb.astype(np.float64) * 255 / 4095 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(read_image(tmp_path / "rgb12.tif"), expected)


# ----------------------------------------------------------------------------------------- lazy reading
@pytest.mark.parametrize("kind", ["rgb8", "grey8", "grey12", "rgba8", "planar_rgb8"])
def test_open_image_maps_uncompressed_tiffs_and_reads_the_same_pixels(tmp_path, kind):
    import tifffile

    from rootseg.io.images import LazyImage, open_image

    rng = np.random.default_rng(1)
    shape = (47, 61)
    arrays = {
        "rgb8": (rng.integers(0, 256, (*shape, 3)).astype(np.uint8), {"photometric": "rgb"}),
        "grey8": (rng.integers(0, 256, shape).astype(np.uint8), {}),
        "grey12": (rng.integers(0, 4096, shape).astype(np.uint16), {}),
        "rgba8": (rng.integers(0, 256, (*shape, 4)).astype(np.uint8), {"photometric": "rgb", "extrasamples": [2]}),
        "planar_rgb8": (
            rng.integers(0, 256, (3, *shape)).astype(np.uint8),
            {"photometric": "rgb", "planarconfig": "separate"},
        ),
    }
    array, kwargs = arrays[kind]
    path = tmp_path / f"{kind}.tif"
    tifffile.imwrite(path, array, **kwargs)
    whole = read_image(path)
    lazy = open_image(path)
    assert isinstance(lazy, LazyImage) and lazy.shape == whole.shape == (*shape, 3)
    np.testing.assert_array_equal(np.asarray(lazy), whole)
    rows, cols = np.array([0, 5, 5, 46, 3]), np.array([60, 0, 1, 2, 30, 30])  # any order, repeats
    np.testing.assert_array_equal(lazy[np.ix_(rows, cols)], whole[np.ix_(rows, cols)])
    np.testing.assert_array_equal(lazy[10:20], whole[10:20])


def test_open_image_decodes_compressed_tiffs_whole_and_reports_bad_values(tmp_path):
    import tifffile

    from rootseg.io.images import LazyImage, open_image

    rgb = np.random.default_rng(2).integers(0, 256, (20, 30, 3)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "zip.tif", rgb, photometric="rgb", compression="zlib")
    opened = open_image(tmp_path / "zip.tif")
    assert not isinstance(opened, LazyImage)
    np.testing.assert_array_equal(opened, rgb)
    bad = np.ones((10, 10), np.float32)
    bad[3, 4] = np.nan
    tifffile.imwrite(tmp_path / "nan scan.tif", bad)
    with pytest.raises(ImageReadError, match="nan scan.tif.*NaN"):
        open_image(tmp_path / "nan scan.tif")
