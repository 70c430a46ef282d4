"""The sliding window's grid and the training tiles at the edges of their rules (issue 27's hand mutants), through
the public functions: the default step, evenly spread tiles, the image centred in its frame, every training
corner reachable, probabilities a hair outside [0, 1]."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from rootseg.tiling.grid import frame_shape, tile_grid
from rootseg.tiling.training import center_crop, cut_training_tile, mirror_pad, sample_training_tiles
from rootseg.tiling.window import sliding_window_probs


def test_the_default_step_is_half_a_tile() -> None:
    for tile_out in (1, 2, 7, 12, 388):
        assert tile_grid(900, 700, tile_out) == tile_grid(900, 700, tile_out, step=max(tile_out // 2, 1))


@pytest.mark.parametrize("size", [13, 50, 97, 401])
@pytest.mark.parametrize(("tile_out", "step"), [(12, 5), (12, 7), (32, 9), (64, 31)])
def test_overlapping_tiles_are_the_fewest_evenly_spread_rounded_to_the_nearest_pixel(
    size: int, tile_out: int, step: int
) -> None:
    """Tile k starts at k (frame - tile) / (count - 1) rounded to the nearest pixel (exact fractions here), with
    the fewest tiles that keep every gap <= step."""
    starts = sorted({x for _, x in tile_grid(7, size, tile_out, step)})
    frame = max(size, tile_out)
    count = 1
    while step * (count - 1) < frame - tile_out:
        count += 1
    assert len(starts) == count and frame_shape(7, size, tile_out, step)[1] == frame
    for k, start in enumerate(starts):
        exact = Fraction(frame - tile_out, count - 1) * k if count > 1 else Fraction(0)
        assert abs(start - exact) <= Fraction(1, 2), (k, start, exact)


def _tile_index_net(tile_out: int):
    """Each output pixel gets its own position inside the tile, row * tile_out + column, over tile_out^2."""
    positions = torch.arange(tile_out * tile_out, dtype=torch.float32).reshape(tile_out, tile_out) / tile_out**2
    return lambda x: positions.expand(x.shape[0], tile_out, tile_out)


def test_the_image_is_centred_in_its_frame() -> None:
    """Smith's grid on a 10 x 14 image with 8 px tiles: the 16 x 16 frame puts 3 mirrored rows above the image and
    1 column left of it, so image pixel (0, 0) is tile pixel (3, 1)."""
    probs = sliding_window_probs(np.zeros((10, 14, 3), np.uint8), _tile_index_net(8), 8, 8, step=8, blend="constant")
    assert probs[0, 0].item() == pytest.approx((3 * 8 + 1) / 64)
    assert probs[9, 13].item() == pytest.approx((4 * 8 + 6) / 64)  # row 12 -> tile row 4, column 14 -> 6


def test_every_training_corner_can_be_drawn_including_the_last() -> None:
    mask = np.ones((20, 30), np.uint8)
    corners = sample_training_tiles(mask, 12, candidates=2000, max_tiles=2000, rng=np.random.default_rng(0))
    ys, xs = np.array(corners).T
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (0, 8, 0, 18)
    small = sample_training_tiles(np.ones((5, 5), np.uint8), 12, candidates=10, rng=np.random.default_rng(0))
    assert small == [(0, 0)] * 10  # an image smaller than a tile: the only corner, padded by mirroring


def test_center_crop_takes_the_middle_of_odd_and_even_margins() -> None:
    array = np.arange(11 * 9).reshape(11, 9)
    np.testing.assert_array_equal(center_crop(array, 5), array[3:8, 2:7])
    np.testing.assert_array_equal(center_crop(np.arange(64).reshape(8, 8), 2), np.arange(64).reshape(8, 8)[3:5, 3:5])


def test_probabilities_a_hair_outside_the_unit_interval_are_clamped_and_more_is_refused() -> None:
    """bf16 and sigmoid round-off up to 1e-3 beyond [0, 1] is clamped before blending (so overlaps average 1.0,
    not 1.0005); 1e-2 beyond is a model without a sigmoid, refused."""
    image = np.zeros((20, 20, 3), np.uint8)

    def half_over(x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], 12, 12)
        out[:, :, :6] = 1.0005
        return out

    probs = sliding_window_probs(image, half_over, 12, 12, step=3, blend="constant")
    exact = sliding_window_probs(image, lambda x: (half_over(x) > 1).float(), 12, 12, step=3, blend="constant")
    torch.testing.assert_close(probs, exact, atol=1e-6, rtol=0)
    for value in (1.01, -0.01):
        with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
            sliding_window_probs(image, lambda x, v=value: torch.full((x.shape[0], 12, 12), v), 12, 12)


def test_blending_a_certain_root_never_exceeds_one() -> None:
    """The weighted mean of 1.0 over overlapping Gaussian tiles rounds to 1 + 1.2e-7 in float32 without the
    final clamp (measured on this 37 x 90 image): a probability must stay <= 1."""
    probs = sliding_window_probs(np.zeros((37, 90, 3), np.uint8), lambda x: torch.ones(x.shape[0], 12, 12), 12, 12)
    assert probs.max().item() <= 1.0 and probs.min().item() >= 1.0 - 1e-6


def test_training_tiles_mirror_the_edge_pixel_as_the_sliding_window_does() -> None:
    """Symmetric padding repeats the edge pixel (0 1 2 -> 1 0 | 0 1 2 | 2 1), as the sliding window's index
    arithmetic does, so training and inference see the same border."""
    np.testing.assert_array_equal(mirror_pad(np.array([[0, 1, 2]]), 0, 0, 2, 2), [[1, 0, 0, 1, 2, 2, 1]])
    image = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3)
    tile, _ = cut_training_tile(image, np.zeros((5, 6), np.uint8), (0, 0), 10, 4)
    np.testing.assert_array_equal(tile[3:5, 3:5], image[0:2, 0:2])  # the 3 px margin: row 0 at tile row 3
    np.testing.assert_array_equal(tile[0:3, 3:5], image[[2, 1, 0], 0:2])  # rows -3..-1 mirror rows 2..0
    np.testing.assert_array_equal(tile[3:5, 0:3], image[0:2, [2, 1, 0]])
