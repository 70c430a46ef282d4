"""Every command's settings typed before any work (`rootseg.config.typed`): yes/no/on/off read as booleans,
numbers checked for type, range and finiteness, and each refusal names the key the user typed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rootseg.synthetic.generator import generate_sample


@pytest.fixture
def scans(tmp_path) -> Path:
    folder = tmp_path / "scans"
    folder.mkdir()
    Image.fromarray(generate_sample(0, (64, 80)).image).save(folder / "a.png")
    return folder


def test_predict_reads_no_and_off_as_false(compose, unet_ckpt, scans, tmp_path):
    from rootseg.inference.folder import predict

    output = tmp_path / "out"
    base = [f"ckpt_path={unet_ckpt}", f"input={scans}", f"output={output}"]
    summary = predict(compose("predict", [*base, "rve=no", "save_overlay=no", "save_rootpainter=off", "tta=0"]))
    assert summary["segmented"] == 1
    assert sorted(p.name for p in output.glob("a*")) == ["a.png"]
    predict(compose("predict", [*base, "rve=yes", "save_overlay=on", "save_rootpainter=1", "overwrite=true"]))
    assert sorted(p.name for p in output.glob("a*")) == ["a.png", "a_overlay.jpg", "a_rootpainter.png", "a_rve.png"]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("rve=maybe", "rve must be true or false (also yes/no, on/off, 1/0), got 'maybe'"),
        ("tta=si", "tta must be true or false"),
        ("dpi=inf", "dpi must be a finite number > 0 or null, got inf"),
        ("mm_per_pixel=nan", "mm_per_pixel must be a finite number > 0 or null, got nan"),
        ("min_free_disk_mb=abc", "min_free_disk_mb must be a finite number (MB) >= 0 or null, got 'abc'"),
        ("batch_size=1.5", "batch_size must be a whole number or null, got 1.5"),
        ("threshold=abc", "threshold must be a finite number or null, got 'abc'"),
        ("step=abc", "step must be a whole number, got 'abc'"),
    ],
)
def test_predict_refuses_a_bad_value_before_any_output(compose, unet_ckpt, scans, tmp_path, setting, message):
    from rootseg.inference.folder import predict

    output = tmp_path / "out"
    with pytest.raises(ValueError) as error:
        predict(compose("predict", [f"ckpt_path={unet_ckpt}", f"input={scans}", f"output={output}", setting]))
    assert str(error.value) == message or str(error.value).startswith(message)
    assert not output.exists()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("trainer.max_epochs=abc", "trainer.max_epochs must be a whole number >= -1 or null, got 'abc'"),
        ("trainer.max_epochs=1.5", "trainer.max_epochs must be a whole number >= -1 or null, got 1.5"),
        ("seed=abc", "seed must be a whole number >= 0, got 'abc'"),
        ("check_data=maybe", "check_data must be true or false"),
        ("min_free_disk_mb=abc", "min_free_disk_mb must be a finite number (MB) >= 0 or null, got 'abc'"),
    ],
)
def test_train_refuses_a_bad_value_by_its_key(compose, tmp_path, setting, message):
    from rootseg.tasks.fit import train

    cfg = compose("train", ["+experiment=unet_demo", f"paths.log_dir={tmp_path}", setting])
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        train(cfg)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("figures=abc", "figures must be a whole number >= 0, got 'abc'"),
        ("seed=1.5", "seed must be a whole number >= 0, got 1.5"),
        ("save_predictions=perhaps", "save_predictions must be true or false"),
        ("tta=maybe", "tta must be true or false"),
    ],
)
def test_eval_refuses_a_bad_value_by_its_key(compose, setting, message):
    from rootseg.evaluation.run import evaluate

    with pytest.raises(ValueError, match="^" + message):
        evaluate(compose("eval", ["ckpt_path=/nonexistent.ckpt", setting]))


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("atol=-1", "atol must be a finite number (largest |exported - PyTorch|) > 0, got -1"),
        ("atol=inf", "atol must be a finite number (largest |exported - PyTorch|) > 0, got inf"),
        ("opset=abc", "opset must be a whole number >= 1, got 'abc'"),
    ],
)
def test_export_refuses_a_bad_value_by_its_key(compose, setting, message):
    from rootseg.export.run import export

    with pytest.raises(ValueError) as error:
        export(compose("export", ["ckpt_path=/nonexistent.ckpt", setting]))
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("max_upload_mb=inf", "max_upload_mb must be a finite number (MB) > 0, got inf"),
        ("max_upload_mb=0", "max_upload_mb must be a finite number (MB) > 0, got 0"),
        ("margin=abc", "margin must be a finite number (probability) > 0 and <= 1, got 'abc'"),
        ("port=http", "port must be a whole number (0: any free port) >= 0 and <= 65535, got 'http'"),
        ("finetune.max_epochs=2.5", "finetune.max_epochs must be a whole number >= 1, got 2.5"),
        ("threshold=1", "threshold must be a finite number (probability) > 0 and < 1 or null, got 1"),
    ],
)
def test_annotate_refuses_a_bad_value_by_its_key(compose, tmp_path, setting, message):
    from rootseg.annotate.server import check_settings

    with pytest.raises(ValueError) as error:
        check_settings(compose("annotate", [f"project={tmp_path}", setting]))
    assert str(error.value) == message


def test_numbers_that_hydra_reads_as_text_are_typed_for_the_run(compose, tmp_path):
    """`seed=7` arrives as an int, `rve=no` as text: after the check both are what the code expects."""
    from rootseg.config import typed
    from rootseg.inference.folder import SETTINGS

    cfg = compose("predict", ["ckpt_path=x", "input=y", f"output={tmp_path}", "rve=no", "min_free_disk_mb=5"])
    typed.check(cfg, SETTINGS)
    assert cfg.rve is False and cfg.min_free_disk_mb == 5 and isinstance(cfg.save_overlay, bool)
    assert np.isfinite(cfg.min_free_disk_mb)
