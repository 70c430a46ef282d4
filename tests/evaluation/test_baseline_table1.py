"""Table 1's baseline row from commands: `+experiment=rootsam_baseline` (zero-shot SAM, nothing trained) writes
the checkpoint of the weights it tests, `rootseg.eval` scores it on both stage grids and `rootseg.report` puts
the two runs in one row. The micro SAM 2.1 with random weights: the numbers check the plumbing, not accuracy."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from conftest import compose_run, run_command
from micro_rootsam import micro_overrides, write_micro_sam_file

from rootseg.evaluation.run import evaluate
from rootseg.tasks.checkpoints import load_module
from rootseg.tasks.fit import train

pytestmark = pytest.mark.usefixtures("one_thread")


def test_baseline_row_of_table_1_from_the_baseline_run(tmp_path):
    sam = write_micro_sam_file(tmp_path / "sam2.1_micro_random.pt")
    overrides = micro_overrides(
        tmp_path / "data", f"model.net.ckpt_path={sam}", n=5, size=(200, 240), grid=2, experiment="rootsam_baseline"
    )
    run_dir = tmp_path / "baseline"
    metrics = train(compose_run("train", overrides, run_dir))
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    assert metrics["checkpoint"] == str(ckpt) and "test/f1" in metrics and "val/f1" not in metrics
    stored = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert stored["rootseg"]["config"]["experiment_name"] == "rootsam_baseline"
    assert not any(k.startswith("net.sam.image_encoder.") for k in stored["state_dict"])  # reloaded from the file
    # zero-shot: every weight of the scored model is the SAM file's
    meta = torch.load(sam, map_location="cpu", weights_only=True)["model"]
    loaded = load_module(ckpt, expected_kind="rootsam").net.sam.state_dict()
    assert set(loaded) == set(meta) and all(torch.equal(loaded[k], meta[k]) for k in meta)

    summaries = {}
    for stage, patch in (("stage1", 512), ("stage2", 1024)):
        eval_dir = tmp_path / f"eval_{patch}"
        evaluate(
            compose_run(
                "eval",
                [f"ckpt_path={ckpt}", f"stage={stage}", "figures=0", "min_predicted_iou=0", "min_stability=0"],
                eval_dir,
            )
        )
        summaries[patch] = json.loads((eval_dir / "summary.json").read_text())["stage_patches"]
        assert summaries[patch]["patch"] == patch and summaries[patch]["n_scored"] > 0
    out = tmp_path / "report"
    runs = [str(tmp_path / "eval_512"), str(tmp_path / "eval_1024")]
    overrides = [f"runs=[{','.join(runs)}]", f"output={out}", "names=[baseline,baseline]", "figures=0"]
    assert run_command("report", overrides, tmp_path / "report_run") == 0
    table = pd.read_csv(out / "table1.csv")
    assert table["method"].tolist() == ["baseline"]
    for patch, scored in summaries.items():
        for label, key in (("mIoU", "iou"), ("Dice", "dice"), ("mAP", "ap")):
            assert table[f"{label}@{patch}"][0] == pytest.approx(scored[key], abs=1e-9), (label, patch)
