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


def test_colour_jitter_scales_brightness_within_its_range_and_leaves_the_mask():
    """Brightness jitter b multiplies the whole image by one factor in [1 - b, 1 + b] per call (to uint8
    rounding), drawn afresh each call; masks are not jittered; zero jitter changes nothing."""
    image = np.full((8, 8, 3), 100, np.uint8)
    image[:, :4] = 60
    mask = np.zeros((8, 8), np.uint8)
    mask[2:5] = 1
    transform = smith2020_transform(elastic_p=0.0, jitter=(0.3, 0.0, 0.0, 0.0))
    transform.set_random_seed(0)
    factors = []
    for _ in range(40):
        out = transform(image=image, mask=mask)
        np.testing.assert_array_equal(out["mask"], mask)
        dark, bright = out["image"][0, 0].astype(float), out["image"][0, -1].astype(float)
        assert (out["image"][:, :4] == dark).all() and (out["image"][:, 4:] == bright).all()  # one factor
        factor = bright[0] / 100
        assert dark[0] == pytest.approx(np.clip(np.round(60 * factor), 0, 255), abs=1)  # both sides scaled alike
        factors.append(factor)
    assert 0.7 - 0.01 <= min(factors) < 0.85 and 1.15 < max(factors) <= 1.3 + 0.01
    unchanged = smith2020_transform(elastic_p=0.0, jitter=(0.0, 0.0, 0.0, 0.0))
    np.testing.assert_array_equal(unchanged(image=image, mask=mask)["image"], image)


def test_the_configured_jitter_is_the_one_the_unet_pipeline_applies(compose):
    """conf/data/module/unet.yaml's jitter [brightness, contrast, saturation, hue] reaches ColorJitter's ranges."""
    import albumentations as A
    import hydra

    cfg = compose("train", ["+experiment=unet_demo"])
    transform = hydra.utils.instantiate(cfg.data.train_transform)
    (jitter,) = [t for t in transform.transforms if isinstance(t, A.ColorJitter)]
    b, c, s, h = cfg.data.train_transform.jitter
    assert jitter.brightness == pytest.approx((1 - b, 1 + b)) and jitter.contrast == pytest.approx((1 - c, 1 + c))
    assert jitter.saturation == pytest.approx((1 - s, 1 + s)) and jitter.hue == pytest.approx((-h, h))
    assert jitter.p == 1.0
