"""RootSAM's stage grids (`rootseg.tiling.resize`) against brute force: tiles that cover the square exactly with
the last one flush with the edge, and resizing that averages pixel areas when shrinking and keeps mask labels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rootseg.tiling.resize import resize_image, resize_pair, tile_origins


def test_tile_origins_cover_every_pixel_with_the_fewest_tiles_the_last_flush_with_the_edge() -> None:
    for size in range(1, 41):
        for tile in range(1, size + 1):
            origins = tile_origins(size, tile)
            starts = sorted({x for x, _ in origins})
            assert origins == [(x, y) for y in starts for x in starts], (size, tile)  # rows of x, top to bottom
            assert len(starts) == math.ceil(size / tile) and starts[0] == 0 and starts[-1] == size - tile
            assert all(b - a == tile for a, b in zip(starts[:-2], starts[1:-1])), (size, tile)  # abutting
            covered = np.zeros(size, int)
            for start in starts:
                covered[start : start + tile] += 1
            assert covered.min() == 1 and covered.max() <= 2, (size, tile)


def test_a_tile_larger_than_the_square_is_refused_naming_the_settings() -> None:
    assert tile_origins(64, 64) == [(0, 0)]
    with pytest.raises(ValueError, match="data.resize >= data.tile"):
        tile_origins(63, 64)


def test_shrinking_averages_pixel_areas_and_growing_interpolates() -> None:
    """Halving both sides averages each 2 x 2 block exactly (cv2's area mode); growing a side or mixing keeps
    the range of a ramp and its values in order (bilinear), where area averaging of a mix would too but nearest
    pixels would repeat values."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3)).astype(np.float32)
    blocks = image.reshape(16, 2, 16, 2, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(resize_image(image, 16), blocks, atol=1e-4)
    ramp = np.repeat(np.arange(20, dtype=np.float32)[None, :, None], 40, axis=0).repeat(3, axis=2) * 10
    grown = resize_image(ramp, 30)  # height 40 -> 30 (shrinks), width 20 -> 30 (grows): bilinear
    row = grown[15, :, 0]
    assert np.all(np.diff(row) > 0), row  # strictly increasing: interpolated, no repeated pixel
    half_pixel = (np.arange(30) + 0.5) * 20 / 30 - 0.5  # bilinear sample positions, clamped at the edges
    np.testing.assert_allclose(row, 10 * np.clip(half_pixel, 0, 19), atol=1e-3)


def test_resize_pair_keeps_mask_labels_exactly_and_leaves_a_square_of_that_size_alone() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    mask = rng.choice(np.array([0, 1, 255], np.uint8), size=(50, 70))
    for size in (20, 35, 90):
        resized, labels = resize_pair(image, mask, size)
        assert resized.shape == (size, size, 3) and labels.shape == (size, size)
        assert set(np.unique(labels)) <= {0, 1, 255}
        # nearest neighbour as cv2 places it: output pixel i takes input pixel floor(i * in / out)
        ys = np.arange(size) * 50 // size
        xs = np.arange(size) * 70 // size
        assert (labels == mask[np.ix_(ys, xs)]).mean() > 0.9, size  # cv2 rounds its scale: 93 % at 90
    square, square_mask = image[:40, :40], mask[:40, :40]
    resized, labels = resize_pair(square, square_mask, 40)
    assert np.array_equal(resized, square) and np.array_equal(labels, square_mask)
