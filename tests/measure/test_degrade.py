"""The named segmentation failures of the trait benchmark (`rootseg.measure.degrade`): each reaches the Dice loss
asked for (an independent NumPy count) and changes only what its name says."""

from __future__ import annotations

import numpy as np
import pytest

from rootseg.measure.degrade import FAILURES, degrade
from rootseg.synthetic.generator import generate_sample


@pytest.fixture(scope="module")
def mask() -> np.ndarray:
    return generate_sample(1, (256, 256)).root_mask.astype(bool)


def _dice_loss(a: np.ndarray, b: np.ndarray) -> float:
    return 1.0 - 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


@pytest.mark.parametrize("failure", [f for f in FAILURES if f != "junctions"])
@pytest.mark.parametrize("loss", [0.05, 0.15])
def test_each_failure_reaches_its_dice_loss(mask: np.ndarray, failure: str, loss: float) -> None:
    damaged, reached = degrade(mask, failure, loss, seed=1)
    assert reached == pytest.approx(_dice_loss(mask, damaged))
    if failure in ("blobs", "dropout"):  # whole discs and branches: the last one overshoots by its share
        assert loss <= reached <= loss + 0.03, failure
    else:
        assert reached == pytest.approx(loss, abs=0.01), failure


def test_each_failure_adds_or_removes_only_what_its_name_says(mask: np.ndarray) -> None:
    grown = {name: degrade(mask, name, 0.1, seed=2)[0] for name in ("dilation", "speckle", "blobs")}
    for name, damaged in grown.items():
        assert (damaged >= mask).all() and damaged.sum() > mask.sum(), name
    for name in ("erosion", "dropout", "junctions"):
        damaged = degrade(mask, name, 0.1, seed=2)[0]
        assert (damaged <= mask).all() and damaged.sum() < mask.sum(), name
    added = grown["speckle"] & ~mask
    from scipy import ndimage as ndi

    _, pieces = ndi.label(added, structure=np.ones((3, 3)))
    assert pieces > 0.8 * added.sum()  # scattered single pixels, not patches


def test_bad_failures_and_losses_are_refused(mask: np.ndarray) -> None:
    with pytest.raises(ValueError, match="unknown failure 'rain'"):
        degrade(mask, "rain", 0.05)
    with pytest.raises(ValueError, match="Dice loss"):
        degrade(mask, "speckle", 1.5)
