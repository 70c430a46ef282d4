"""RootSAM whole-scan inference by mode: promptless (one decoder pass per tile, the sliding window's overlapping
tiles blended), SAM's filtered grid, and the settings each checkpoint honours; micro SAM 2.1, random weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from micro_rootsam import count_decoder, micro_config, micro_module

from rootseg.inference.predictor import Predictor
from rootseg.inference.rootsam import RootSAMInference, stability_scores
from rootseg.inference.settings import InferenceSettings
from rootseg.tiling.grid import tile_grid
from rootseg.tiling.resize import resize_image

pytestmark = pytest.mark.usefixtures("one_thread")


def _module(tmp_path: Path, prompt_mode: str):
    return micro_module(micro_config(tmp_path, tmp_path / "run", f"model.prompt_mode={prompt_mode}")).eval()


@pytest.fixture(scope="module")
def modules(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("promptless")
    return {mode: _module(root / mode, mode) for mode in ("points", "none", "mixed")}


def _image(height: int = 180, width: int = 300, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("mode", ["none", "mixed"])
@pytest.mark.parametrize("batch_size", [None, 3])
def test_a_promptless_checkpoint_decodes_one_pass_per_tile(modules, mode, batch_size, monkeypatch):
    """eval and predict (the Predictor) decode a none/mixed checkpoint without clicks: the decoder sees each
    tile of the sliding window once (9 overlapping tiles on the 256 px square at half-tile steps), never a
    click, and the result blends them as the U-Net's window does."""
    module = modules[mode]
    predictor = Predictor(module, InferenceSettings(batch_size=batch_size))
    assert predictor.impl.mode == "promptless" and "promptless" in predictor.describe()["clicks"]
    calls = count_decoder(module, monkeypatch)
    probs = predictor.probabilities(_image())
    tiles = len(tile_grid(256, 256, 128, 64))
    assert tiles == 9 and sum(calls["none"]) == tiles and calls["points"] == []
    assert len(calls["none"]) == (tiles if batch_size is None else -(-tiles // 3))  # tiles per decoder call
    assert probs.shape == (180, 300) and probs.dtype == np.float32 and 0 <= probs.min() <= probs.max() <= 1


def test_promptless_on_the_stages_grid_equals_each_tile_decoded_alone(modules):
    """step=tile: the stage's own grid, each pixel from one tile; the whole image equals the four tiles of the
    resized square decoded one by one (decode_promptless of each), sigmoid, pasted and resized back."""
    module = modules["none"]
    image = _image(256, 256, seed=4)  # already the stage's square: no resizing either way
    inference = RootSAMInference(module, InferenceSettings(step="tile", blend="constant"), torch.device("cpu"))
    probs = inference(image)
    expected = np.zeros((256, 256), np.float32)
    with torch.no_grad():
        for y in (0, 128):
            for x in (0, 128):
                tile = torch.from_numpy(np.ascontiguousarray(image[y : y + 128, x : x + 128].transpose(2, 0, 1)))
                logits, _ = module.net.decode_promptless(module.embeddings(tile[None].float()))
                expected[y : y + 128, x : x + 128] = logits[0, 0, 0].sigmoid().numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    # half-tile steps blend overlapping tiles: another result, the same shape
    blended = RootSAMInference(module, InferenceSettings(), torch.device("cpu"))(image)
    assert blended.shape == probs.shape and not np.allclose(blended, probs)
    resized = RootSAMInference(module, InferenceSettings(step="tile", blend="constant"), torch.device("cpu"))(
        _image(100, 140)
    )
    assert resized.shape == (100, 140)
    assert resize_image(_image(100, 140), 256).shape == (256, 256, 3)


def test_a_points_checkpoint_uses_the_grid_and_refuses_promptless(modules, monkeypatch):
    module = modules["points"]
    predictor = Predictor(module, InferenceSettings())
    assert predictor.impl.mode == "grid"
    described = predictor.describe()
    assert (described["min_predicted_iou"], described["min_stability"]) == (0.8, 0.95)  # sam2's defaults
    calls = count_decoder(module, monkeypatch)
    predictor.probabilities(_image())
    assert (
        calls["none"] == [] and [shape[1] for shape in calls["points"]] == [16] * 4
    )  # 4 x 4 clicks on each of the 4 stage tiles
    with pytest.raises(ValueError, match="trained with prompt_mode=points"):
        Predictor(module, InferenceSettings(prompt_free="promptless"))
    with pytest.raises(ValueError, match="step / blend shape RootSAM's promptless"):
        Predictor(module, InferenceSettings(step=32))


def test_settings_each_checkpoint_cannot_honour_are_refused(modules, tiny_checkpoint):
    from rootseg.tasks.checkpoints import load_module

    with pytest.raises(ValueError, match="prompt_free=grid: this checkpoint was trained with prompt_mode=none"):
        Predictor(modules["none"], InferenceSettings(prompt_free="grid"))
    with pytest.raises(ValueError, match="takes no click"):
        Predictor(modules["none"], InferenceSettings(prompts="clicks.csv"))
    with pytest.raises(ValueError, match="decodes promptless"):
        Predictor(modules["mixed"], InferenceSettings(min_stability=0.5))
    grid = Predictor(modules["mixed"], InferenceSettings(prompt_free="grid", min_predicted_iou=0.0))
    assert grid.impl.mode == "grid" and (grid.impl.min_iou, grid.impl.min_stability) == (0.0, 0.95)
    unet = load_module(tiny_checkpoint)
    for name, value in (("prompt_free", "grid"), ("min_predicted_iou", 0.5), ("min_stability", 0.5)):
        with pytest.raises(ValueError, match=f"{name}={value}: a unet model cannot honour"):
            Predictor(unet, InferenceSettings(**{name: value}))
    for bad in ({"prompt_free": "auto"}, {"min_stability": 1.5}, {"min_predicted_iou": True}):
        with pytest.raises(ValueError, match="prompt_free must be one of|must be a number in"):
            InferenceSettings(**bad)


def test_stability_score_is_sams():
    """IoU of the mask at logit +1 and at -1 (sam2's calculate_stability_score with offset 1); an empty
    mask scores 0."""
    logits = torch.tensor([[[3.0, 0.5], [-0.5, -3.0]], [[-2.0, -2.0], [-2.0, -2.0]], [[2.0, 2.0], [2.0, 2.0]]])
    torch.testing.assert_close(stability_scores(logits), torch.tensor([1 / 3, 0.0, 1.0]))
