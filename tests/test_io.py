import io as pyio

import numpy as np
import pytest
from PIL import Image

from rootseg.data.io import ImageReadError, atomic_path, read_image, read_mask, read_pair, write_image


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
    from rootseg.outputs import rootpainter_segmentation_rgba

    truth = np.zeros((6, 7), bool)
    truth[2:4, 1:6] = True
    path = _save(tmp_path / "seg.png", rootpainter_segmentation_rgba(truth))
    np.testing.assert_array_equal(read_mask(path), truth.astype(np.uint8))
