"""RootSAM Table 1's protocol in eval (`stage=stage1|stage2`: patch metrics on the stage's resized grid, a
RootSAM checkpoint run on it) and in report (baseline / stage 1 / stage 1+2, both scales in one table)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import compose_run, run_command
from micro_rootsam import micro_config, micro_module

from rootseg.config.run_config import resolved_container
from rootseg.evaluation.run import evaluate
from rootseg.inference.predictor import Predictor
from rootseg.inference.settings import InferenceSettings
from rootseg.io.masks import read_pair
from rootseg.io.tables import write_csv
from rootseg.sources.synthetic import SyntheticSource
from rootseg.tasks.checkpoints import load_module

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def rootsam_ckpt(tmp_path_factory) -> Path:
    """A stage 1 micro RootSAM checkpoint (random weights, the grid of clicks) of a 256 px stage grid."""
    root = tmp_path_factory.mktemp("stage_ckpt")
    cfg = micro_config(
        root, root / "run", "model.min_predicted_iou=0", "model.min_stability=0", n=5, size=(200, 240), grid=2
    )
    module = micro_module(cfg)
    module.run_config = resolved_container(cfg)
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, root / "stage1.ckpt")
    return root / "stage1.ckpt"


def patch_overlap(probs: np.ndarray, target: np.ndarray, size: int, patch: int) -> tuple[list, list]:
    """IoU and Dice of each scored patch of the resized grid, by hand: cv2 resizes (area for shrinking
    probabilities, linear for growing, nearest for the annotation), every patch with root in truth or
    prediction scored, unlabelled pixels ignored."""
    shrink = size <= probs.shape[0] and size <= probs.shape[1]
    grid_probs = cv2.resize(probs, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    grid_target = cv2.resize(target.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
    ious, dices = [], []
    for y in range(0, size, patch):
        for x in range(0, size, patch):
            pred = grid_probs[y : y + patch, x : x + patch] >= 0.5
            truth = grid_target[y : y + patch, x : x + patch]
            labelled = truth != 255
            tp = np.sum(pred & (truth == 1))
            fp = np.sum(pred & (truth == 0))
            fn = np.sum(~pred & (truth == 1))
            if tp + fp + fn:
                ious.append(tp / (tp + fp + fn))
                dices.append(2 * tp / (2 * tp + fp + fn))
            assert labelled.any()
    return ious, dices


@pytest.mark.parametrize(("stage", "grid"), [(None, (256, 128)), ("stage2", (2048, 1024))])
def test_eval_scores_patches_on_the_stage_grid(rootsam_ckpt, tmp_path, stage, grid):
    """Without stage=, the checkpoint's own grid (256 / 128 here); stage=stage2 runs the stage 1 checkpoint on
    2048 / 1024 (the paper's cross-scale validation) and scores that grid's patches."""
    overrides = [f"ckpt_path={rootsam_ckpt}", "figures=0"] + ([f"stage={stage}"] if stage else [])
    result = evaluate(compose_run("eval", overrides, tmp_path / "eval"))
    scored = result["stage_patches"]
    assert (scored["resize"], scored["patch"]) == grid
    assert scored["stage"] == ("stage2" if stage else "stage1")
    assert scored["source"] == ("stage=" if stage else "checkpoint")
    assert (result["inference"]["resize"], result["inference"]["tile"]) == grid  # the model ran on it
    module = load_module(rootsam_ckpt)
    predictor = Predictor(module, InferenceSettings(resize=grid[0], tile=grid[1]))
    source = SyntheticSource(**{k: v for k, v in module.run_config["data"]["source"].items() if k != "_target_"})
    ious, dices, n = [], [], 0
    for sample in source.split("test"):
        image, target = read_pair(sample.image_path, sample.mask_path, source.mask_threshold)
        image_ious, image_dices = patch_overlap(predictor.probabilities(image), target, *grid)
        ious, dices, n = ious + image_ious, dices + image_dices, n + (grid[0] // grid[1]) ** 2
    assert scored["n_patches"] == n and scored["n_scored"] == len(ious) > 0
    assert scored["iou"] == pytest.approx(np.mean(ious), abs=1e-6)
    assert scored["dice"] == pytest.approx(np.mean(dices), abs=1e-6)
    summary_csv = pd.read_csv(tmp_path / "eval" / "summary.csv")
    assert f"stage patches {grid[1]}" in set(summary_csv["group"])
    assert f"Patches on the {scored['stage']} grid" in (tmp_path / "eval" / "summary.md").read_text()


def test_a_unet_is_scored_on_the_grid_and_predicts_as_always(tiny_checkpoint, tmp_path):
    """stage= on a U-Net: its probabilities are resized to the stage grid for scoring only; without stage= it
    has no stage patches (its patches are those of the original images)."""
    plain = evaluate(compose_run("eval", [f"ckpt_path={tiny_checkpoint}", "figures=0"], tmp_path / "plain"))
    assert "stage_patches" not in plain
    staged = evaluate(
        compose_run("eval", [f"ckpt_path={tiny_checkpoint}", "figures=0", "stage=stage1"], tmp_path / "staged")
    )
    assert (staged["stage_patches"]["resize"], staged["stage_patches"]["patch"]) == (2560, 512)
    assert "resize" not in staged["inference"]
    assert staged["pooled"] == plain["pooled"]  # the same masks: only the patch grid changed


def _fake(run_dir: Path, stage: str, patch: int, iou: float) -> Path:
    run_dir.mkdir(parents=True)
    write_csv(run_dir / "per_image.csv", [{"name": "a", "tp": 1, "fp": 0, "fn": 0, "tn": 1, "f1": 1.0}])
    summary = {
        "checkpoint": "/runs/x.ckpt",
        "model": {"kind": "rootsam", "experiment_name": "rootsam_stage1"},
        "data": "/data",
        "split": "test",
        "pooled": {"precision": 1, "recall": 1, "f1": 1, "iou": 1, "accuracy": 1},
        "per_image": {"mean": {"f1": 1}, "sd": {"f1": 0}, "n": 1},
        "patches": {},
        "stage_patches": {
            "stage": stage,
            "source": "stage=",
            "resize": 2560 if patch == 512 else 2048,
            "patch": patch,
            "iou": iou,
            "dice": iou + 0.1,
            "ap": iou + 0.2,
        },
    }
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


def test_report_renders_table_1(tmp_path):
    """Six eval runs (three methods x two scales) named by method give Table 1's three rows, each scale from
    the run that scored it; a method scored at one scale only has the other empty."""
    runs = [
        _fake(tmp_path / "b512", "stage1", 512, 0.482),
        _fake(tmp_path / "b1024", "stage2", 1024, 0.163),
        _fake(tmp_path / "s1_512", "stage1", 512, 0.653),
        _fake(tmp_path / "s1_1024", "stage2", 1024, 0.474),
        _fake(tmp_path / "s12_512", "stage1", 512, 0.660),
    ]
    names = ["baseline", "baseline", "stage 1", "stage 1", "stage 1+2"]
    out = tmp_path / "report"
    settings = [f"runs=[{','.join(map(str, runs))}]", f"output={out}", f"names=[{','.join(map(repr, names))}]"]
    assert run_command("report", [*settings, "figures=0"], tmp_path / "run") == 0
    table = pd.read_csv(out / "table1.csv")
    assert table["method"].tolist() == ["baseline", "stage 1", "stage 1+2"]
    assert table["mIoU@512"].tolist() == pytest.approx([0.482, 0.653, 0.660])
    assert table["mIoU@1024"][:2].tolist() == pytest.approx([0.163, 0.474]) and math.isnan(table["mIoU@1024"][2])
    assert table["Dice@512"][0] == pytest.approx(0.582) and table["mAP@1024"][1] == pytest.approx(0.674)
    text = (out / "comparison.md").read_text()
    assert "## RootSAM Table 1" in text
    assert "| baseline | 0.4820 | 0.5820 | 0.6820 | 0.1630 | 0.2630 | 0.3630 |" in text
