"""`decode_mask` and `read_binary_mask` at the edges of their rules (issue 27's hand mutants): the threshold
itself, a float mask reaching 255, an all-root 0/1 tile, nothing painted, and the mid-grey share of a photo."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from rootseg.io.images import ImageReadError
from rootseg.io.masks import decode_mask, read_binary_mask, read_pair


def test_a_grey_level_equal_to_the_threshold_is_background() -> None:
    grey = np.array([[0, 50, 126, 127, 128, 255]], np.uint8)
    np.testing.assert_array_equal(decode_mask(grey), [[0, 0, 0, 0, 1, 1]])
    np.testing.assert_array_equal(decode_mask(grey, threshold=50), [[0, 0, 1, 1, 1, 1]])


def test_float_grey_levels_up_to_255_are_read_and_above_refused() -> None:
    levels = np.array([[0.0, 100.0, 127.0, 200.0, 255.0]], np.float32)
    np.testing.assert_array_equal(decode_mask(levels), [[0, 0, 0, 1, 1]])
    with pytest.raises(ImageReadError, match="up to 255.5"):
        decode_mask(levels + np.float32(0.5))


def test_an_all_root_or_all_soil_integer_tile_reads_as_it_is() -> None:
    for dtype in (np.uint8, np.int32, np.uint16):
        np.testing.assert_array_equal(decode_mask(np.ones((3, 4), dtype)), np.ones((3, 4)))
        np.testing.assert_array_equal(decode_mask(np.zeros((3, 4), dtype)), np.zeros((3, 4)))
    np.testing.assert_array_equal(decode_mask(np.ones((3, 4), bool)), np.ones((3, 4)))
    np.testing.assert_array_equal(decode_mask(np.eye(3, dtype=bool)), np.eye(3))


def test_a_layer_with_nothing_painted_labels_nothing() -> None:
    rgba = np.zeros((5, 6, 4), np.uint8)
    rgba[..., :3] = 255
    assert (decode_mask(rgba) == 255).all()
    opaque = rgba.copy()
    opaque[..., 3] = 255  # opaque white: every pixel root
    assert (decode_mask(opaque) == 1).all()


def test_opacity_exactly_half_the_most_opaque_is_background() -> None:
    grey_alpha = np.zeros((1, 4, 2), np.uint8)
    grey_alpha[..., 0] = 255
    grey_alpha[0, :, 1] = [0, 100, 101, 200]  # half of 200 is 100: not root; 101 is
    np.testing.assert_array_equal(decode_mask(grey_alpha), [[0, 0, 1, 1]])


def _grey_image(tmp_path, mid_share: float):
    """A 0/255 mask with a share of its 1000 pixels set to mid-grey 128 (as a photo would be)."""
    array = np.zeros((20, 50), np.uint8)
    array[:, 25:] = 255
    array.ravel()[: round(mid_share * array.size)] = 128
    path = tmp_path / f"mask_{mid_share}.png"
    Image.fromarray(array).save(path)
    return path


def test_read_binary_mask_refuses_a_grey_image_but_not_jpeg_edges(tmp_path) -> None:
    edges = read_binary_mask(_grey_image(tmp_path, 0.08))  # 8 % mid-grey: JPEG edges
    assert edges.shape == (20, 50) and set(np.unique(edges)) == {0, 1}
    with pytest.raises(ImageReadError, match=r"not a binary mask \(12% of its pixels are mid-grey\)"):
        read_binary_mask(_grey_image(tmp_path, 0.12))
    values = np.array([[0, 32, 33, 223, 224, 255]] * 4, np.uint8)  # 32 and 224 are not mid-grey, 33-223 are
    Image.fromarray(values).save(tmp_path / "bounds.png")
    with pytest.raises(ImageReadError, match=r"\(33%"):
        read_binary_mask(tmp_path / "bounds.png")


def test_read_pair_refuses_a_mask_of_another_size(tmp_path) -> None:
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(tmp_path / "image.png")
    Image.fromarray(np.zeros((10, 13), np.uint8)).save(tmp_path / "mask.png")
    with pytest.raises(ImageReadError, match=r"mask is 13x10 \(WxH\) but its image .*image.png is 12x10"):
        read_pair(tmp_path / "image.png", tmp_path / "mask.png")
