"""Smith et al. 2020's augmentation as the paper states it (elastic grid with p 0.9, colour jitter (0.3, 0.3, 0.2,
0.001)), and the elastic field's padding (RootPainter's 60 px), which keeps the field as strong at the tile's
border as inside it (issue 27's hand mutants)."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest

from rootseg.datamodules.transforms import SmithElasticGrid, smith2020_transform


def test_the_default_transform_is_the_papers() -> None:
    elastic, jitter = smith2020_transform().transforms
    assert isinstance(elastic, SmithElasticGrid) and elastic.p == pytest.approx(0.9)
    assert elastic.intensity_range == (0.4, 1.0)
    assert isinstance(jitter, A.ColorJitter) and jitter.p == 1.0
    ranges = [*jitter.brightness, *jitter.contrast, *jitter.saturation, *jitter.hue]
    assert ranges == pytest.approx([0.7, 1.3, 0.7, 1.3, 0.8, 1.2, -0.001, 0.001])


def test_flips_and_noise_only_when_asked() -> None:
    names = [type(t).__name__ for t in smith2020_transform(flip_p=0.5, gauss_noise_p=0.2).transforms]
    assert names == ["SmithElasticGrid", "HorizontalFlip", "VerticalFlip", "ColorJitter", "GaussNoise"]
    assert [type(t).__name__ for t in smith2020_transform(flip_p=0.0).transforms] == ["SmithElasticGrid", "ColorJitter"]


def _edges_to_centre(transform: SmithElasticGrid, draws: int = 100, side: int = 128) -> np.ndarray:
    """Mean |displacement| along each edge of the tile (dx on the left and right, dy on the top and bottom) over
    that along its middle column or row."""
    grid_y, grid_x = np.mgrid[0:side, 0:side].astype(np.float32)
    edges, centre = np.zeros(4), np.zeros(4)
    for _ in range(draws):
        params = transform.get_params_dependent_on_data({"shape": (side, side)}, {})
        dx, dy = np.abs(params["map_x"] - grid_x), np.abs(params["map_y"] - grid_y)
        edges += [dx[:, 0].mean(), dx[:, -1].mean(), dy[0].mean(), dy[-1].mean()]
        centre += [dx[:, side // 2].mean()] * 2 + [dy[side // 2].mean()] * 2
    return edges / centre


def test_the_elastic_field_is_drawn_on_a_padded_tile_so_its_border_is_not_damped() -> None:
    """Smoothing with zeros outside damps a field near its edge: drawn on the tile alone, the displacement along
    an edge is 0.73-0.85 of that in the middle (seed 0, 100 draws; the weakest edge 0.73-0.76 over seeds 0-2); on
    the tile grown by 60 px per side, as RootPainter draws it, 0.89-1.00 (the weakest edge 0.89-0.95)."""
    padded = SmithElasticGrid(p=1.0)
    padded.set_random_seed(0)
    assert _edges_to_centre(padded).min() > 0.84
    bare = SmithElasticGrid(p=1.0, padding=0)
    bare.set_random_seed(0)
    assert _edges_to_centre(bare).min() < 0.8


def test_the_two_displacement_fields_are_independent_draws() -> None:
    """dx and dy are two fields: their correlation over many tiles is near 0 (one field for both would give 1)."""
    transform = SmithElasticGrid(p=1.0)
    transform.set_random_seed(1)
    grid_y, grid_x = np.mgrid[0:64, 0:64].astype(np.float32)
    pairs = []
    for _ in range(40):
        params = transform.get_params_dependent_on_data({"shape": (64, 64)}, {})
        pairs.append(((params["map_x"] - grid_x).ravel(), (params["map_y"] - grid_y).ravel()))
    dx, dy = (np.concatenate(part) for part in zip(*pairs))
    assert abs(np.corrcoef(dx, dy)[0, 1]) < 0.3
