"""RootSAM's labelled clicks (the annotate app's) through the one inference path: one object, one window.

A stand-in RootSAM records what its decoder is given and answers with a disc of root around each positive
click, so the mask `Predictor.probabilities(image, clicks=...)` returns can be drawn independently.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rootseg.inference.predictor import Predictor
from rootseg.inference.settings import InferenceSettings

RADIUS = 6


class DiscNet:
    """decode(): one mask per prompt, root within RADIUS of its positive points and not within RADIUS of its
    negative ones; iou_pred 0.01 (below any min_predicted_iou) so a dropped mask would show."""

    def __init__(self) -> None:
        self.calls: list[tuple[list, list]] = []

    def decode(self, embeddings, coords, labels, multimask_output=True, output_size=None):
        self.calls.append((coords.tolist(), labels.tolist()))
        side = int(embeddings["side"])
        yy, xx = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
        batch, n_obj, _ = labels.shape
        logits = torch.full((batch, n_obj, 1, side, side), -20.0)
        for o in range(n_obj):
            for (x, y), label in zip(coords[0, o].tolist(), labels[0, o].tolist()):
                near = (xx - x) ** 2 + (yy - y) ** 2 <= RADIUS**2
                logits[0, o, 0][near] = 20.0 if label == 1 else -20.0
        return logits, torch.full((batch, n_obj, 1), 0.01)


class DiscRootSAM(torch.nn.Module):
    kind = "rootsam"
    threshold = 0.5
    tile = 64
    resize = None  # the image's own scale: image pixels are canvas pixels
    grid_points_per_side = 2
    min_predicted_iou = 0.5
    multimask_output = False

    def __init__(self) -> None:
        super().__init__()
        self.net = DiscNet()
        self.seen_tiles: list[np.ndarray] = []

    def embeddings(self, pixels: torch.Tensor) -> dict:
        self.seen_tiles.append(pixels[0].numpy().transpose(1, 2, 0).copy())
        return {"side": pixels.shape[-1]}


def _disc(shape: tuple[int, int], x: float, y: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx - x) ** 2 + (yy - y) ** 2 <= RADIUS**2


def test_labelled_clicks_prompt_one_object_in_a_window_centred_on_the_positive_clicks():
    module = DiscRootSAM()
    predictor = Predictor(module, InferenceSettings(device="cpu"))
    image = np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)
    clicks = np.array([[80, 30, 1], [90, 40, 1], [95, 30, 0], [5, 120, 0]], np.float32)
    mask = predictor.mask(predictor.probabilities(image, clicks=clicks))
    # the window: 64 px centred on the mean positive click (85, 35) -> x0 = 53, y0 = 3
    assert len(module.net.calls) == 1
    coords, labels = module.net.calls[0]
    # one prompt holding every click inside the window, in window pixels; (5, 120) lies outside it
    assert coords == [[[[27.0, 27.0], [37.0, 37.0], [42.0, 27.0]]]] and labels == [[[1, 1, 0]]]
    np.testing.assert_array_equal(module.seen_tiles[0], image[3:67, 53:117])
    expected = (_disc(mask.shape, 80, 30) | _disc(mask.shape, 90, 40)) & ~_disc(mask.shape, 95, 30)
    np.testing.assert_array_equal(mask, expected)  # kept although its predicted IoU is 0.01


def test_labelled_clicks_on_a_wide_image_use_the_resized_square():
    """A 64 x 128 image is stretched to 128 x 128 as every RootSAM prediction is; the window is clamped."""
    module = DiscRootSAM()
    predictor = Predictor(module, InferenceSettings(device="cpu"))
    mask = predictor.mask(predictor.probabilities(np.zeros((64, 128, 3), np.uint8), clicks=[[120, 20, 1]]))
    assert module.net.calls[0] == ([[[[56.0, 32.0]]]], [[[1]]])  # canvas (120, 40); window x0 = 64 (clamped), y0 = 8
    assert mask[20, 120] and not mask[:, :100].any() and mask.shape == (64, 128)


def test_unlabelled_clicks_stay_one_root_each_and_a_persons_clicks_are_all_kept():
    module = DiscRootSAM()
    predictor = Predictor(module, InferenceSettings(device="cpu"))
    image = np.zeros((64, 64, 3), np.uint8)
    probs = predictor.probabilities(image, clicks=np.array([[10, 10], [40, 40]], np.float32))
    coords, labels = module.net.calls[0]
    assert coords == [[[[10.0, 10.0]], [[40.0, 40.0]]]] and labels == [[[1], [1]]]  # two prompts of one click
    # predicted IoU 0.01 < min_predicted_iou 0.5, yet kept: only the grid's clicks are filtered (issue 14)
    np.testing.assert_array_equal(predictor.mask(probs), _disc((64, 64), 10, 10) | _disc((64, 64), 40, 40))


@pytest.mark.parametrize(
    ("clicks", "words"),
    [
        ([[10, 10, 0]], "at least one of them 1"),
        ([[10, 10, 2]], "labels 1 (root) or 0"),
    ],
)
def test_bad_labelled_clicks_are_refused(clicks, words):
    predictor = Predictor(DiscRootSAM(), InferenceSettings(device="cpu"))
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        predictor.probabilities(np.zeros((64, 64, 3), np.uint8), clicks=np.array(clicks, np.float32))


def test_a_model_without_clicks_refuses_them():
    class UNetLike(torch.nn.Module):
        kind = "unet"
        threshold = 0.5
        tile_in, tile_out = 100, 8

    predictor = Predictor(UNetLike(), InferenceSettings(device="cpu"), checkpoint="u.ckpt")
    with pytest.raises(ValueError, match="u.ckpt: a unet model takes no clicks"):
        predictor.probabilities(np.zeros((8, 8, 3), np.uint8), clicks=np.zeros((1, 3), np.float32))
