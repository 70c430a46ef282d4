"""RootPainter segmentation PNGs, probability maps and overlay colours."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rootseg.figures.colours import FALSE_NEGATIVE as FALSE_NEGATIVE_COLOUR
from rootseg.figures.colours import FALSE_POSITIVE as FALSE_POSITIVE_COLOUR
from rootseg.figures.colours import PREDICTED as PREDICTED_COLOUR
from rootseg.figures.colours import TRUE_POSITIVE as TRUE_POSITIVE_COLOUR
from rootseg.figures.errors import error_map
from rootseg.figures.overlay import overlay, write_overlay
from rootseg.io.images import probability_to_uint8, read_image
from rootseg.io.rootpainter import (
    decode_rootpainter_segmentation,
    rootpainter_segmentation_rgba,
    write_rootpainter_segmentation,
)


def test_rootpainter_segmentation_matches_rootpainter_trainer():
    mask = np.array([[True, False], [False, True]])
    rgba = rootpainter_segmentation_rgba(mask)
    # what RootPainter's trainer computes: [0, 1.0, 1.0, 0.7] * 255 cast to uint8
    reference = np.zeros((2, 2, 4))
    reference[mask] = [0, 1.0, 1.0, 0.7]
    reference = (reference * 255).astype(np.uint8)
    assert rgba.dtype == np.uint8 and np.array_equal(rgba, reference)
    assert tuple(rgba[0, 0]) == (0, 255, 255, 178) and tuple(rgba[0, 1]) == (0, 0, 0, 0)


def test_rootpainter_segmentation_round_trips_through_png(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    mask = rng.random((17, 23)) > 0.7
    path = write_rootpainter_segmentation(tmp_path / "seg" / "scan.png", mask.astype(np.uint8))
    with Image.open(path) as image:
        assert image.mode == "RGBA"
        rgba = np.asarray(image)
    assert np.array_equal(decode_rootpainter_segmentation(rgba), mask)
    assert list((tmp_path / "seg").iterdir()) == [path]  # no temporary file left behind
    with pytest.raises(ValueError, match="PNG"):
        write_rootpainter_segmentation(tmp_path / "scan.jpg", mask)


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.float32), np.zeros((4, 4, 1), bool)])
def test_segmentation_rejects_probabilities_and_wrong_shapes(bad):
    with pytest.raises(ValueError):
        rootpainter_segmentation_rgba(bad)


def test_probability_to_uint8():
    probs = torch.tensor([[0.0, 0.5, 1.0, 1.0001]])
    assert probability_to_uint8(probs).tolist() == [[0, 128, 255, 255]]
    with pytest.raises(ValueError, match="NaN"):
        probability_to_uint8(np.array([[np.nan]]))


def colours(image):
    return [tuple(int(v) for v in pixel) for pixel in image.reshape(-1, 3)]


def test_overlay_without_truth_tints_predicted_root_cyan():
    image = np.full((1, 2, 3), 100, np.uint8)
    mask = np.array([[True, False]])
    assert colours(overlay(image, mask, alpha=1.0)) == [PREDICTED_COLOUR, (100, 100, 100)]
    blended = overlay(image, mask, alpha=0.5)
    assert colours(blended) == [(50, 178, 178), (100, 100, 100)]  # (100 + 255) / 2 = 177.5 -> 178


def test_overlay_against_truth_colours_each_outcome():
    image = np.full((1, 6, 3), 40, np.uint8)
    pred = np.array([[1, 1, 0, 0, 1, 0]], np.uint8)
    truth = np.array([[1, 0, 1, 0, 255, 255]], np.uint8)  # TP, FP, FN, TN, unlabelled x2
    got = colours(overlay(image, pred, truth, alpha=1.0))
    assert got == [
        TRUE_POSITIVE_COLOUR,
        FALSE_POSITIVE_COLOUR,
        FALSE_NEGATIVE_COLOUR,
        (40, 40, 40),
        PREDICTED_COLOUR,
        (40, 40, 40),
    ]
    assert TRUE_POSITIVE_COLOUR == (255, 255, 255)  # Smith et al. Fig. 7-9, as the error maps
    assert [tuple(c) for c in error_map(pred, truth)[0, :4]] == [
        TRUE_POSITIVE_COLOUR,
        FALSE_POSITIVE_COLOUR,
        FALSE_NEGATIVE_COLOUR,
        (0, 0, 0),
    ]
    assert FALSE_POSITIVE_COLOUR == (255, 0, 0) and FALSE_NEGATIVE_COLOUR == (0, 255, 0)
    # boolean truth is fully labelled; tensors are accepted
    image4, pred4, truth4 = (
        torch.from_numpy(image[:, :4]),
        torch.from_numpy(pred[:, :4] > 0),
        truth[:, :4] == 1,
    )
    got = colours(overlay(image4, pred4, truth4, alpha=1.0))
    assert got == [TRUE_POSITIVE_COLOUR, FALSE_POSITIVE_COLOUR, FALSE_NEGATIVE_COLOUR, (40, 40, 40)]


def test_overlay_input_checks():
    image = np.zeros((3, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="shape"):
        overlay(image, np.zeros((4, 3), bool))
    with pytest.raises(ValueError, match="truth has shape"):
        overlay(image, np.zeros((3, 4), bool), np.zeros((4, 3), bool))
    with pytest.raises(ValueError, match="uint8"):
        overlay(image.astype(np.float32), np.zeros((3, 4), bool))
    with pytest.raises(ValueError, match="threshold"):
        overlay(image, np.zeros((3, 4), np.float32))
    assert overlay(np.zeros((3, 4), np.uint8), np.ones((3, 4), bool)).shape == (3, 4, 3)  # grey photo


def test_write_overlay(tmp_path):
    image = np.full((5, 6, 3), 90, np.uint8)
    mask = np.eye(5, 6, dtype=bool)
    path = write_overlay(tmp_path / "overlay.png", image, mask, alpha=1.0)
    assert np.array_equal(read_image(path), overlay(image, mask, alpha=1.0))
