"""`rootseg.eval` in-process on a tiny U-Net checkpoint: tables and figures, numbers checked independently."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import compose_run

from rootseg.data.io import read_pair
from rootseg.eval import evaluate
from rootseg.modules.loading import CheckpointLoadError, load_module


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, tiny_checkpoint) -> tuple[dict, object]:
    run_dir = tmp_path_factory.mktemp("eval_run")
    result = evaluate(compose_run("eval", [f"ckpt_path={tiny_checkpoint}", "figures=1"], run_dir))
    return result, run_dir


def test_writes_tables_and_figures(evaluated, synthetic_dir):
    result, run_dir = evaluated
    for name in ("per_image.csv", "per_image.md", "summary.json", "summary.md", "summary.csv"):
        assert (run_dir / name).stat().st_size > 0, name
    assert (run_dir / "figures" / "f1_per_image.png").is_file()
    assert len(list((run_dir / "figures").glob("*_errors.png"))) == 1  # figures=1
    test_names = json.loads((synthetic_dir / "split.json").read_text())["test"]
    assert pd.read_csv(run_dir / "per_image.csv")["name"].tolist() == test_names
    assert result["model"] == {
        "kind": "unet",
        "experiment_name": "unet_demo",
        "model_target": "rootseg.modules.unet.UNetModule",
    }
    assert set(result["patches"]) == {"512", "1024"} and result["split"] == "test"


def test_pooled_f1_is_the_f1_of_the_summed_per_image_counts(evaluated):
    result, run_dir = evaluated
    table = pd.read_csv(run_dir / "per_image.csv")
    tp, fp, fn = (int(table[key].sum()) for key in ("tp", "fp", "fn"))
    assert result["pooled"]["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-12)
    assert json.loads((run_dir / "summary.json").read_text())["pooled"]["f1"] == pytest.approx(
        result["pooled"]["f1"], abs=1e-12
    )
    with_root = table[table["tp"] + table["fn"] > 0]
    assert result["per_image"]["mean"]["f1"] == pytest.approx(with_root["f1"].mean(), abs=1e-12)


def test_per_image_f1_matches_a_fresh_prediction(evaluated, tiny_checkpoint, synthetic_dir):
    _, run_dir = evaluated
    row = pd.read_csv(run_dir / "per_image.csv").iloc[0]
    name = row["name"]
    image, mask = read_pair(synthetic_dir / "images" / f"{name}.png", synthetic_dir / "masks" / f"{name}.png")
    module = load_module(tiny_checkpoint)
    with torch.inference_mode():
        pred = module.predict_probs(torch.from_numpy(image)).numpy() >= module.threshold
    truth, labelled = mask == 1, mask != 255
    tp = np.sum(pred & truth & labelled)
    fp = np.sum(pred & ~truth & labelled)
    fn = np.sum(~pred & truth & labelled)
    assert (row["tp"], row["fp"], row["fn"]) == (tp, fp, fn)
    assert row["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-12)


def test_another_folder_can_be_evaluated(tiny_checkpoint, tmp_path):
    """A held-out set: a folder the model never saw, every image of it (no split file, split=all)."""
    from rootseg.data.synthetic import write_dataset

    held_out = write_dataset(tmp_path / "held_out", n=4, size=(160, 160), seed=11)
    (held_out / "split.json").unlink()
    cfg = compose_run(
        "eval", [f"ckpt_path={tiny_checkpoint}", "data=folder", f"data.root={held_out}", "split=all"], tmp_path / "run"
    )
    result = evaluate(cfg)
    assert result["data"] == str(held_out) and result["split"] == "all"
    names = pd.read_csv(tmp_path / "run" / "per_image.csv")["name"].tolist()
    assert names == [f"synth_{i:04d}" for i in range(4)]
    assert "length_agreement" in result  # >= 3 images
    assert (tmp_path / "run" / "figures" / "root_length_agreement.png").is_file()


def test_unknown_split_and_missing_checkpoint_say_what_to_do(tiny_checkpoint, tmp_path):
    with pytest.raises(ValueError, match="ckpt_path is required"):
        evaluate(compose_run("eval", [], tmp_path / "a"))
    with pytest.raises(CheckpointLoadError, match="not found"):
        evaluate(compose_run("eval", [f"ckpt_path={tmp_path / 'missing.ckpt'}"], tmp_path / "b"))
    with pytest.raises(ValueError, match="split='tset'"):
        evaluate(compose_run("eval", [f"ckpt_path={tiny_checkpoint}", "split=tset"], tmp_path / "c"))
