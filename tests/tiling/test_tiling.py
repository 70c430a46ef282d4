import numpy as np
import pytest

from rootseg.tiling.training import center_crop, cut_training_tile, mirror_pad, sample_training_tiles


def test_sampler_keeps_at_most_max_tiles_and_only_tiles_with_root():
    rng = np.random.default_rng(0)
    mask = np.zeros((1000, 900), np.uint8)
    mask[100:110, 50:800] = 1  # one horizontal root
    for seed in range(5):
        corners = sample_training_tiles(mask, 388, candidates=90, max_tiles=40, rng=np.random.default_rng(seed))
        assert len(corners) <= 40
        for y, x in corners:
            assert mask[y : y + 388, x : x + 388].any()
            assert 0 <= y <= 1000 - 388 and 0 <= x <= 900 - 388
    # with root everywhere, exactly max_tiles of the 90 are kept
    assert len(sample_training_tiles(np.ones((600, 600), np.uint8), 388, 90, 40, rng)) == 40
    assert sample_training_tiles(np.zeros((600, 600), np.uint8), 388, 90, 40, rng) == []


def test_sampler_matches_a_brute_force_count():
    mask = np.zeros((500, 500), np.uint8)
    mask[450:455, 450:455] = 1
    corners = sample_training_tiles(mask, 100, candidates=500, max_tiles=500, rng=np.random.default_rng(1))
    rng = np.random.default_rng(1)
    ys, xs = rng.integers(0, 401, 500), rng.integers(0, 401, 500)
    expected = [(y, x) for y, x in zip(ys, xs) if mask[y : y + 100, x : x + 100].any()]
    assert corners == expected


@pytest.mark.parametrize(("h", "w"), [(1000, 800), (200, 150), (388, 388)])
def test_training_tile_equals_a_crop_of_the_mirror_padded_image(h, w):
    rng = np.random.default_rng(2)
    image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    mask = rng.integers(0, 2, (h, w), dtype=np.uint8)
    margin = 92
    padded = mirror_pad(image, margin, margin + 388, margin, margin + 388)
    for y, x in [(0, 0), (max(h - 388, 0), max(w - 388, 0)), (h // 3 if h > 388 else 0, 0)]:
        tile, mtile = cut_training_tile(image, mask, (y, x), 572, 388)
        assert tile.shape == (572, 572, 3) and mtile.shape == (572, 572)
        np.testing.assert_array_equal(tile, padded[y : y + 572, x : x + 572])
        inner = center_crop(mtile, 388)[: h - y, : w - x]
        np.testing.assert_array_equal(inner, mask[y : y + 388, x : x + 388])
