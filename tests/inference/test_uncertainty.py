"""rootseg.inference.uncertainty on hand-made probability maps whose scores can be counted by eye."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rootseg.inference.uncertainty import (
    ambiguous_fraction,
    flip_disagreement,
    rank_by_uncertainty,
    uncertainty_score,
)


def test_ambiguous_fraction_counts_pixels_near_the_threshold():
    probs = np.array([[0.0, 0.1, 0.3, 0.5], [0.6, 0.74, 0.76, 1.0]], np.float32)
    # |p - 0.5| < 0.25: 0.3, 0.5, 0.6, 0.74 -> 4 of 8
    assert ambiguous_fraction(probs) == pytest.approx(4 / 8)
    # the band is open: 0.25 and 0.75 sit on its edges and are not ambiguous
    assert ambiguous_fraction(np.array([[0.25, 0.75]], np.float32)) == 0.0
    # the band follows the threshold and the margin
    assert ambiguous_fraction(probs, threshold=0.2, margin=0.15) == pytest.approx(2 / 8)  # 0.1, 0.3
    assert ambiguous_fraction(probs, margin=0.5) == pytest.approx(6 / 8)  # all but 0.0 and 1.0
    assert ambiguous_fraction(np.full((5, 7), 0.5, np.float32)) == 1.0


def test_confident_maps_score_zero_and_hesitant_maps_score_high():
    confident = np.zeros((20, 20), np.float32)
    confident[5:8] = 1.0  # a sure root
    hesitant = np.full((20, 20), 0.05, np.float32)
    hesitant[5:8] = 0.55  # a faint root the model barely calls
    assert uncertainty_score(confident) == 0.0
    assert uncertainty_score(hesitant) == pytest.approx(60 / 400)
    assert rank_by_uncertainty(
        {"confident": uncertainty_score(confident), "hesitant": uncertainty_score(hesitant)}
    ) == [
        "hesitant",
        "confident",
    ]


def test_flip_disagreement_counts_pixels_whose_class_changes():
    base = np.zeros((4, 4), np.float32)
    base[0, :2] = 0.9
    flipped = base.copy()
    flipped[0, 1] = 0.2  # one pixel changes class
    flipped[3, 3] = 0.6  # and another
    assert flip_disagreement([base, base]) == 0.0
    assert flip_disagreement([base, flipped]) == pytest.approx(2 / 16)
    assert flip_disagreement([base, flipped, flipped]) == pytest.approx(2 / 16)
    # p >= threshold is root, the rule rootseg scores with: 0.5 and 0.7 agree, 0.49 does not
    assert flip_disagreement([np.full((1, 1), 0.5), np.full((1, 1), 0.7)]) == 0.0
    assert flip_disagreement([np.full((1, 1), 0.5), np.full((1, 1), 0.49)]) == 1.0


def test_score_with_flips_is_the_mean_of_both():
    probs = np.array([[0.9, 0.4], [0.0, 0.0]])  # 1 ambiguous of 4
    flip = np.array([[0.1, 0.4], [0.0, 0.0]])  # 1 disagreement of 4
    assert uncertainty_score(probs, flips=[flip]) == pytest.approx(0.5 * (1 / 4 + 1 / 4))
    assert uncertainty_score(probs, flips=[]) == pytest.approx(1 / 4)


def test_ranking_puts_unscored_images_last_and_breaks_ties_by_name():
    scores = {"d": None, "c": 0.1, "b": 0.3, "a": 0.1, "e": math.nan}
    assert rank_by_uncertainty(scores) == ["b", "a", "c", "d", "e"]
    assert rank_by_uncertainty({}) == []


@pytest.mark.parametrize(
    ("probs", "words"),
    [
        (np.zeros(5, np.float32), "(H, W)"),
        (np.zeros((0, 3), np.float32), "(H, W)"),
        (np.full((2, 2), 255, np.uint8), "divide 0-255"),
        (np.array([[0.5, np.nan]]), "finite"),
        (np.array([[0.5, 1.2]]), "in [0, 1]"),
    ],
)
def test_bad_maps_are_refused_with_a_reason(probs, words):
    with pytest.raises(ValueError) as error:
        ambiguous_fraction(probs)
    assert words in str(error.value)


def test_bad_settings_are_refused():
    probs = np.zeros((2, 2), np.float32)
    with pytest.raises(ValueError, match="threshold"):
        ambiguous_fraction(probs, threshold=1.0)
    with pytest.raises(ValueError, match="margin"):
        ambiguous_fraction(probs, margin=0.0)
    with pytest.raises(ValueError, match="at least two"):
        flip_disagreement([probs])
    with pytest.raises(ValueError, match="one shape"):
        flip_disagreement([probs, np.zeros((2, 3), np.float32)])
