"""Every inference setting out of range is refused before a checkpoint is loaded, with a message that names the key;
every value at the edge of its range is accepted (issue 27: the checks could be removed without a test failing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rootseg.inference.settings import InferenceSettings, autocast_enabled, settings_from_config

BAD = [
    ("threshold", 0),
    ("threshold", 0.0),
    ("threshold", 1),
    ("threshold", 1.5),
    ("threshold", -0.2),
    ("threshold", True),
    ("step", 0),
    ("step", -16),
    ("step", 2.5),
    ("step", True),
    ("step", "tiles"),
    ("blend", "mean"),
    ("tta", 1),
    ("tta", "yes"),
    ("batch_size", 0),
    ("batch_size", True),
    ("batch_size", 4.0),
    ("grid_points_per_side", 0),
    ("grid_points_per_side", False),
    ("resize", 0),
    ("resize", 512.5),
    ("tile", -512),
    ("tile", True),
    ("prompt_free", "clicks"),
    ("min_predicted_iou", -0.1),
    ("min_predicted_iou", 1.01),
    ("min_predicted_iou", True),
    ("min_stability", 1.5),
    ("min_stability", -1),
    ("min_stability", False),
    ("precision", "fp16"),
    ("precision", None),
    ("device", "tpu"),
    ("device", "mps"),
    ("device", "meta"),
    ("device", "cuda:x"),
]


@pytest.mark.parametrize(("key", "value"), BAD, ids=[f"{k}={v!r}" for k, v in BAD])
def test_a_bad_setting_is_refused_naming_its_key(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"^{key}\b") as error:
        InferenceSettings(**{key: value})
    assert repr(value) in str(error.value) or str(value) in str(error.value)


GOOD = [
    ("threshold", 0.5),
    ("threshold", 1e-6),
    ("threshold", 0.999999),
    ("step", 1),
    ("step", "tile"),
    ("blend", "gaussian"),
    ("blend", "constant"),
    ("tta", True),
    ("batch_size", 1),
    ("grid_points_per_side", 1),
    ("resize", 1),
    ("tile", 1024),
    ("prompt_free", "promptless"),
    ("prompt_free", "grid"),
    ("min_predicted_iou", 0),
    ("min_predicted_iou", 1),
    ("min_stability", 0.0),
    ("min_stability", 1.0),
    ("precision", "fp32"),
    ("precision", "bf16"),
    ("device", "cpu"),
    ("device", "auto"),
    ("device", None),
    ("device", ""),
]


@pytest.mark.parametrize(("key", "value"), GOOD, ids=[f"{k}={v!r}" for k, v in GOOD])
def test_a_setting_at_the_edge_of_its_range_is_accepted(key: str, value: object) -> None:
    settings = InferenceSettings(**{key: value})
    assert getattr(settings, key) == value


def test_cuda_is_refused_where_there_is_none() -> None:
    import torch

    if torch.cuda.is_available():
        assert InferenceSettings(device="cuda").device == "cuda"
        return
    with pytest.raises(ValueError, match="^device=cuda:1, but CUDA is not available here"):
        InferenceSettings(device="cuda:1")


def test_given_lists_what_a_user_set_except_what_every_model_honours() -> None:
    assert InferenceSettings().given() == {}
    settings = InferenceSettings(threshold=0.3, device="cpu", precision="fp32", mm_per_pixel=0.1, tta=True, step=8)
    assert settings.given() == {"tta": True, "step": 8}
    changed = settings.with_changes(blend="constant")
    assert changed.given() == {"tta": True, "step": 8, "blend": "constant"} and settings.blend is None
    with pytest.raises(ValueError, match="^blend"):
        settings.with_changes(blend="max")


def test_settings_from_a_config_convert_step_and_paths() -> None:
    cfg = {"step": "16", "prompts": Path("clicks.csv"), "prompt_ckpt": Path("u.ckpt"), "threshold": 0.4}
    settings = settings_from_config({**cfg, "resize": 1024, "tile": 512, "unrelated": 1})
    assert (settings.step, settings.prompts, settings.prompt_ckpt) == (16, "clicks.csv", "u.ckpt")
    assert (settings.threshold, settings.resize, settings.tile, settings.mm_per_pixel) == (0.4, None, None, None)
    assert settings_from_config({"step": "tile"}).step == "tile"
    assert settings_from_config({"mm_per_pixel": 0.05}).mm_per_pixel == pytest.approx(0.05)
    with pytest.raises(ValueError, match="^step"):
        settings_from_config({"step": "-3"})


def test_bf16_autocast_on_cuda_by_default_and_on_the_cpu_only_when_asked() -> None:
    import torch

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert (autocast_enabled("auto", cpu), autocast_enabled("auto", cuda)) == (False, True)
    assert (autocast_enabled("bf16", cpu), autocast_enabled("fp32", cuda)) == (True, False)
