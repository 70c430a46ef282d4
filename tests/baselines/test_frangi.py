"""Frangi baseline and its CMA-ES tuning on small synthetic root images (bright lines on dark soil)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from rootseg.baselines.frangi import FrangiParams, frangi_segment, remove_small, tune_frangi

# a deliberately poor start: scales far too coarse, threshold too high
POOR_START = FrangiParams(sigma_min=6.0, sigma_max=20.0, beta=1.5, threshold=0.3, min_object_size=1500.0)


def synthetic_pair(seed: int, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), np.uint8)
    for _ in range(3):
        p1 = tuple(int(v) for v in rng.integers(0, size, 2))
        p2 = tuple(int(v) for v in rng.integers(0, size, 2))
        cv2.line(mask, p1, p2, 1, thickness=int(rng.integers(2, 5)))
    grey = 40 + rng.normal(0, 12, (size, size)) + 90 * cv2.GaussianBlur(mask.astype(np.float64), (3, 3), 0)
    image = np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    return image, mask


@pytest.fixture(scope="module")
def pairs() -> tuple[list[np.ndarray], list[np.ndarray]]:
    images, masks = zip(*(synthetic_pair(seed) for seed in range(3)))
    return list(images), list(masks)


def test_frangi_segment_returns_full_size_bool_mask(pairs) -> None:
    image = pairs[0][0][:, :90]  # odd sizes survive the downscale round trip
    for downscale in (1, 2, 4):
        mask = frangi_segment(image, FrangiParams(), downscale=downscale)
        assert mask.dtype == bool and mask.shape == image.shape[:2]
        linear = frangi_segment(image, FrangiParams(), downscale=downscale, upsample="linear")
        assert linear.dtype == bool and linear.shape == image.shape[:2]
    assert frangi_segment(image, FrangiParams(threshold=1e-4, min_object_size=1)).any()
    with pytest.raises(ValueError, match="downscale"):
        frangi_segment(image, FrangiParams(), downscale=0)
    with pytest.raises(ValueError, match="upsample"):
        frangi_segment(image, FrangiParams(), downscale=2, upsample="cubic")


def test_unit_box_round_trip_and_small_object_removal() -> None:
    params = FrangiParams(sigma_min=1.2, sigma_max=7.0, beta=0.8, threshold=0.01, min_object_size=50.0)
    back = FrangiParams.from_unit(params.to_unit())
    for name in ("sigma_min", "sigma_max", "beta", "threshold", "min_object_size"):
        assert getattr(back, name) == pytest.approx(getattr(params, name))
    assert ((params.to_unit() >= 0) & (params.to_unit() <= 1)).all()
    mask = np.zeros((20, 20), bool)
    mask[1:3, 1:3] = True  # 4 px
    mask[10:15, 10:15] = True  # 25 px
    cleaned = remove_small(mask, 10)
    assert not cleaned[1:3, 1:3].any() and cleaned[10:15, 10:15].all()


def test_cma_es_improves_on_its_start(pairs) -> None:
    images, masks = pairs
    best, history = tune_frangi(images, masks, max_evals=33, seed=0, start=POOR_START, popsize=8)
    assert len(history) == 33 and history[0]["eval"] == 0 and history[0]["generation"] == 0
    start_f1 = history[0]["f1"]
    best_f1 = max(row["f1"] for row in history)
    assert best_f1 > start_f1 + 0.2, (start_f1, best_f1)
    assert best_f1 > 0.5
    assert FrangiParams(**[r for r in history if r["f1"] == best_f1][0]["params"]) == best


def test_resume_continues_and_matches_an_uninterrupted_run(pairs, tmp_path) -> None:
    images, masks = pairs
    state = tmp_path / "cma.pkl"
    kwargs = dict(seed=1, start=POOR_START, popsize=6, downscale=2, upsample="linear")
    _, first = tune_frangi(images, masks, max_evals=13, state_path=state, **kwargs)
    assert len(first) == 13 and state.exists()
    _, resumed = tune_frangi(images, masks, max_evals=25, state_path=state, **kwargs)
    assert len(resumed) == 25 and resumed[:13] == first  # continued, not restarted
    _, straight = tune_frangi(images, masks, max_evals=25, workers=2, **kwargs)  # pool gives the same
    assert [row["f1"] for row in straight] == [row["f1"] for row in resumed]
    assert [row["params"] for row in straight] == [row["params"] for row in resumed]
    with pytest.raises(ValueError, match="other data"):
        tune_frangi(images[:2], masks[:2], max_evals=25, state_path=state, **kwargs)
