"""Training augmentation on albumentations: Smith et al. 2020's elastic grid, colour jitter and noise.

The elastic grid draws its Gaussian-smoothed displacement on a coarse grid and upsamples it (cv2),
rather than filtering a full-resolution field as the paper's code does: same deformation statistics,
~20x faster per core on 572 px tiles (benchmarks/augment.py measures both, see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import albumentations as A
import cv2
import numpy as np


def smith_elastic_params(gamma: float, intensity: float) -> tuple[float, float]:
    """One gamma in [0, 1) sets both: sigma = 15 + 45 gamma, alpha = (200 + 2300 gamma) * intensity."""
    sigma = 15.0 + 45.0 * gamma
    alpha = (200.0 + 2300.0 * gamma) * intensity
    return sigma, alpha


def coarse_displacement(
    shape: tuple[int, int], sigma: float, alpha: float, rng: np.random.Generator, cell: float = 4.0
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth random displacement (dy, dx) with the statistics of
    alpha * gaussian_filter(U(-1, 1), sigma) at full resolution, drawn on a grid `sigma / cell` times
    coarser. Smoothing white noise with sigma s leaves a variance ~ 1 / (4 pi s^2) per unit noise
    variance, so the coarse field (sigma s/f) is scaled by 1/f to match."""
    h, w = shape
    factor = max(1.0, sigma / cell)
    ch, cw = max(2, math.ceil(h / factor) + 1), max(2, math.ceil(w / factor) + 1)
    fields = []
    for _ in range(2):
        noise = rng.uniform(-1.0, 1.0, size=(ch, cw)).astype(np.float32)
        smooth = cv2.GaussianBlur(noise, (0, 0), sigmaX=sigma / factor, borderType=cv2.BORDER_CONSTANT)
        smooth *= alpha / factor
        fields.append(cv2.resize(smooth, (w, h), interpolation=cv2.INTER_LINEAR))
    return fields[0], fields[1]


@lru_cache(maxsize=8)
def _identity_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (y, x) as float32, built once per tile shape: np.mgrid costs as much as the warp."""
    grid_y, grid_x = np.mgrid[0:h, 0:w].astype(np.float32)
    grid_y.flags.writeable = grid_x.flags.writeable = False
    return grid_y, grid_x


class SmithElasticGrid(A.DualTransform):
    """Elastic grid deformation with Smith et al.'s coupled parameters, drawn per call.

    Image pixels are interpolated bilinearly, masks by nearest neighbour so labels stay {0, 1, 255}.
    The displacement is drawn on the tile grown by `padding` px per side and cropped, as RootPainter's
    elastic.py does (it pads 60 px): the constant-mode smoothing then damps the field less at the tile
    border, which matters at large sigma (the std of the field on a 572 px tile is ~10 % larger at sigma 58).
    """

    def __init__(
        self,
        intensity_range: tuple[float, float] = (0.4, 1.0),
        cell: float = 4.0,
        padding: int = 60,
        p: float = 0.9,
    ):
        super().__init__(p=p)
        self.intensity_range = tuple(intensity_range)
        self.cell = cell
        self.padding = padding

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        gamma = float(self.py_random.random())
        intensity = float(self.py_random.uniform(*self.intensity_range))
        sigma, alpha = smith_elastic_params(gamma, intensity)
        h, w = params["shape"][:2]
        rng = np.random.default_rng(self.py_random.getrandbits(63))
        pad = self.padding
        dy, dx = coarse_displacement((h + 2 * pad, w + 2 * pad), sigma, alpha, rng, self.cell)
        grid_y, grid_x = _identity_grid(h, w)
        map_x = grid_x + dx[pad : pad + h, pad : pad + w]
        map_y = grid_y + dy[pad : pad + h, pad : pad + w]
        # fixed-point maps (positions rounded to 1/32 px, far below the deformation's scale), converted once
        # per tile: ~1.7x faster bilinear warps of the image channels than float maps
        fixed_xy, fixed_frac = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
        return {"map_x": map_x, "map_y": map_y, "fixed_xy": fixed_xy, "fixed_frac": fixed_frac}

    def apply(self, img: np.ndarray, fixed_xy: np.ndarray, fixed_frac: np.ndarray, **params: Any) -> np.ndarray:
        return cv2.remap(img, fixed_xy, fixed_frac, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)

    def apply_to_mask(self, mask: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, **params: Any) -> np.ndarray:
        # float maps: nearest with fixed-point maps would floor instead of round (a half-pixel shift)
        return cv2.remap(mask, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT_101)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("intensity_range", "cell", "padding")


def smith2020_transform(
    elastic_p: float = 0.9,
    jitter: tuple[float, float, float, float] = (0.3, 0.3, 0.2, 0.001),
    jitter_p: float = 1.0,
    gauss_noise_p: float = 0.0,
    salt_pepper_p: float = 0.0,
    flip_p: float = 0.0,
) -> A.Compose:
    """The paper's training transform; Smith's code also adds Gaussian and salt-and-pepper noise
    (off by default here, as in the paper's text)."""
    brightness, contrast, saturation, hue = jitter
    transforms: list[A.BasicTransform] = [SmithElasticGrid(p=elastic_p)]
    if flip_p > 0:
        transforms += [A.HorizontalFlip(p=flip_p), A.VerticalFlip(p=flip_p)]
    transforms.append(
        A.ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation, hue=hue, p=jitter_p)
    )
    if gauss_noise_p > 0:
        transforms.append(A.GaussNoise(std_range=(0.01, 0.05), p=gauss_noise_p))
    if salt_pepper_p > 0:
        transforms.append(A.SaltAndPepper(amount=(0.001, 0.01), p=salt_pepper_p))
    return A.Compose(transforms)
