import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from rootseg.datamodules.transforms import (
    SmithElasticGrid,
    coarse_displacement,
    smith2020_transform,
    smith_elastic_params,
)


def test_elastic_parameters_are_coupled_by_one_gamma():
    assert smith_elastic_params(0.0, 1.0) == (15.0, 200.0)
    sigma, alpha = smith_elastic_params(0.5, 0.4)
    assert sigma == pytest.approx(37.5) and alpha == pytest.approx((200 + 1150) * 0.4)


def test_sampled_parameters_stay_in_the_papers_ranges(monkeypatch):
    """The sigma and alpha the transform really draws (recorded where it builds its field), not a re-derivation."""
    from rootseg.datamodules import transforms

    drawn: list[tuple[float, float]] = []
    real = transforms.coarse_displacement

    def recording(shape, sigma, alpha, rng, cell):
        drawn.append((sigma, alpha))
        return real(shape, sigma, alpha, rng, cell)

    monkeypatch.setattr(transforms, "coarse_displacement", recording)
    transform = SmithElasticGrid(p=1.0)
    transform.set_random_seed(0)
    image = np.zeros((32, 32, 3), np.uint8)
    for _ in range(300):
        transform(image=image, mask=image[:, :, 0])
    assert len(drawn) == 300
    sigmas, alphas = np.array(drawn).T
    intensity = alphas / (200 + 2300 * (sigmas - 15) / 45)  # the coupling leaves the intensity factor
    assert sigmas.min() >= 15 and sigmas.max() < 60 and np.ptp(sigmas) > 40  # gamma spans [0, 1)
    assert intensity.min() >= 0.4 - 1e-9 and intensity.max() < 1.0 and np.ptp(intensity) > 0.5
    # gamma and the intensity are independent draws: sigma alone does not fix alpha
    assert abs(np.corrcoef(sigmas, intensity)[0, 1]) < 0.2
    assert alphas.min() >= 0.4 * 200 and alphas.max() < 2500


@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.95])
def test_coarse_field_matches_full_resolution_statistics(gamma):
    """The fast field and Smith's full-resolution gaussian_filter field have the same size."""
    rng = np.random.default_rng(0)
    sigma, alpha = smith_elastic_params(gamma, 1.0)
    fast = np.mean([coarse_displacement((300, 300), sigma, alpha, rng)[0].std() for _ in range(30)])
    ref = np.mean(
        [(gaussian_filter(rng.uniform(-1, 1, (300, 300)), sigma, mode="constant") * alpha).std() for _ in range(30)]
    )
    assert fast == pytest.approx(ref, rel=0.2)


def test_masks_keep_their_labels_and_shapes():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (120, 100, 3), dtype=np.uint8)
    mask = rng.choice(np.array([0, 1, 255], np.uint8), size=(120, 100))
    transform = smith2020_transform(elastic_p=1.0, gauss_noise_p=1.0, salt_pepper_p=1.0)
    transform.set_random_seed(3)
    out = transform(image=image, mask=mask)
    assert out["image"].shape == image.shape and out["image"].dtype == np.uint8
    assert out["mask"].shape == mask.shape
    assert set(np.unique(out["mask"])) <= {0, 1, 255}
    assert not np.array_equal(out["mask"], mask)  # it did deform


def test_image_and_mask_stay_aligned():
    """Image warps use fixed-point maps, masks float maps: both must move each pixel to the same place."""
    rng = np.random.default_rng(4)
    mask = (gaussian_filter(rng.standard_normal((200, 180)), 6) > 0).astype(np.uint8)
    image = np.repeat(mask[..., None] * np.uint8(255), 3, axis=2)
    transform = SmithElasticGrid(p=1.0)
    for seed in range(5):
        transform.set_random_seed(seed)
        out = transform(image=image, mask=mask)
        agree = ((out["image"][..., 0] > 127) == (out["mask"] == 1)).mean()
        assert agree > 0.99  # ~0.995 measured; nearest on the fixed-point maps (floor, a half-pixel shift): ~0.97
