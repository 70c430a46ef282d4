"""`rootseg.report`: several evaluations in one table (RootSAM Table 1 and Smith et al. columns)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from rootseg.report import main
from rootseg.reports import RunReadError, comparison_rows, load_run, read_csv, write_csv


def fake_run(
    run_dir: Path,
    f1s: list[float],
    pooled_f1: float,
    miou512: float,
    experiment: str | None,
    checkpoint: str = "/runs/x/checkpoints/epoch_003-f1_0.5.ckpt",
    lengths: bool = True,
) -> Path:
    """An evaluation folder as rootseg.eval writes it, with chosen numbers."""
    run_dir.mkdir(parents=True)
    names = [f"img_{i}" for i in range(len(f1s))]
    rows = [
        {"name": n, "tp": 1, "fp": 0, "fn": 0, "tn": 1, "f1": f}
        | ({"length_true_px": 100.0 * (i + 1), "length_pred_px": 90.0 * (i + 1) + 5} if lengths else {})
        for i, (n, f) in enumerate(zip(names, f1s))
    ]
    write_csv(run_dir / "per_image.csv", rows)
    summary = {
        "checkpoint": checkpoint,
        "model": {"kind": "unet", "experiment_name": experiment},
        "data": "/data/set",
        "split": "test",
        "pooled": {"precision": 0.8, "recall": 0.6, "f1": pooled_f1, "iou": 0.5, "accuracy": 0.9},
        "per_image": {"mean": {"f1": sum(f1s) / len(f1s)}, "sd": {"f1": 0.1}, "n": len(f1s)},
        "patches": {
            "512": {"iou": miou512, "dice": 0.77, "ap": 0.81, "ap_pooled": 0.83},
            "1024": {"iou": 0.495, "dice": 0.6, "ap": 0.7, "ap_pooled": 0.83},
        },
    }
    if lengths:
        summary["length_agreement"] = {"spearman": 0.97, "r2": 0.92, "n": len(f1s)}
        summary["intensity_agreement"] = {"spearman": 0.88, "r2": 0.79, "n": len(f1s), "grid_mm": 10.0}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


@pytest.fixture
def two_runs(tmp_path) -> tuple[Path, Path]:
    a = fake_run(tmp_path / "eval_a", [0.6, 0.7, 0.65], 0.66, 0.653, "rootsam_stage1")
    b = fake_run(tmp_path / "eval_b", [0.3, 0.5, 0.4], 0.41, 0.2, None, "/runs/y/checkpoints/frangi_best.ckpt")
    return a, b


def test_table_holds_each_runs_numbers_in_its_row(two_runs, tmp_path):
    out = tmp_path / "report"
    assert main([str(two_runs[0]), str(two_runs[1]), "--output", str(out)]) == 0
    table = pd.read_csv(out / "comparison.csv")
    # method names: the experiment name, else the checkpoint's name
    assert table["method"].tolist() == ["rootsam_stage1", "frangi_best"]
    first, second = table.iloc[0], table.iloc[1]
    assert first["mIoU@512"] == pytest.approx(0.653) and second["mIoU@512"] == pytest.approx(0.2)
    assert first["Dice@512"] == pytest.approx(0.77) and first["mAP@1024"] == pytest.approx(0.7)
    assert first["F1"] == pytest.approx(0.66) and second["F1"] == pytest.approx(0.41)
    assert first["precision"] == pytest.approx(0.8) and first["IoU"] == pytest.approx(0.5)
    assert first["F1 per-image mean"] == pytest.approx(0.65) and second["F1 per-image mean"] == pytest.approx(0.4)
    assert first["length Spearman"] == pytest.approx(0.97) and first["length r2"] == pytest.approx(0.92)
    assert first["AP pooled"] == pytest.approx(0.83)
    assert first["intensity Spearman"] == pytest.approx(0.88) and first["intensity r2"] == pytest.approx(0.79)
    assert (table["images"] == 3).all()
    text = (out / "comparison.md").read_text()
    assert "| rootsam_stage1 | 0.6530 | 0.7700 | 0.8100 |" in text
    assert "0.6500 ± 0.1000" in text and "0.4000 ± 0.1000" in text
    assert "not comparable" not in text
    for figure in ("f1_per_image.png", "root_length_agreement.png"):
        assert (out / figure).stat().st_size > 1000


def test_names_override_and_duplicates_stay_apart(two_runs, tmp_path):
    out = tmp_path / "report"
    assert main([*map(str, two_runs), "-o", str(out), "--names", "RootSAM", "Frangi"]) == 0
    assert pd.read_csv(out / "comparison.csv")["method"].tolist() == ["RootSAM", "Frangi"]
    rows = comparison_rows([load_run(two_runs[0]), load_run(two_runs[0])])
    assert [row["method"] for row in rows] == ["rootsam_stage1", "rootsam_stage1 (2)"]
    assert main([*map(str, two_runs), "-o", str(out), "--names", "only-one"]) == 2


def test_missing_lengths_and_missing_files(tmp_path, capsys):
    run = fake_run(tmp_path / "short", [0.5, 0.6], 0.55, 0.4, "unet_demo", lengths=False)
    out = tmp_path / "report"
    assert main([str(run), "-o", str(out)]) == 0
    row = pd.read_csv(out / "comparison.csv").iloc[0]
    assert pd.isna(row["length Spearman"])  # no agreement with fewer than 3 images: an empty cell
    assert not (out / "root_length_agreement.png").exists() and (out / "f1_per_image.png").is_file()
    with pytest.raises(RunReadError, match="rootseg.eval"):
        load_run(tmp_path / "nowhere")
    assert main([str(tmp_path / "nowhere")]) == 2
    assert "summary.json: not found" in capsys.readouterr().err


def test_runs_on_different_data_are_flagged(two_runs, tmp_path):
    summary_path = two_runs[1] / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["split"] = "val"
    summary_path.write_text(json.dumps(summary))
    out = tmp_path / "report"
    assert main([*map(str, two_runs), "-o", str(out)]) == 0
    assert "not comparable" in (out / "comparison.md").read_text()


def test_name_from_the_training_run_of_an_older_evaluation(tmp_path):
    """summary.json without a model entry: the training run's config names the experiment."""
    train_run = tmp_path / "train_run"
    (train_run / "checkpoints").mkdir(parents=True)
    (train_run / "config_resolved.yaml").write_text("experiment_name: frangi_cmaes\n")
    run = fake_run(tmp_path / "eval", [0.5, 0.6, 0.7], 0.6, 0.5, None, str(train_run / "checkpoints" / "e.ckpt"))
    summary = json.loads((run / "summary.json").read_text())
    del summary["model"]
    (run / "summary.json").write_text(json.dumps(summary))
    assert load_run(run)["name"] == "frangi_cmaes"


def test_image_names_that_look_like_numbers_stay_text(tmp_path):
    """per_image.csv read back: `0001`, `1e3`, `nan`, `12` are image names, the score columns are numbers."""
    names = ["0001", "1e3", "nan", "12", "inf", "tube1_depth10"]
    rows = [{"name": n, "tp": i, "f1": 0.5 + i / 100, "length_true_px": float("nan")} for i, n in enumerate(names)]
    write_csv(tmp_path / "per_image.csv", rows)
    back = read_csv(tmp_path / "per_image.csv")
    assert [row["name"] for row in back] == names
    assert all(isinstance(row["name"], str) for row in back)
    assert [row["tp"] for row in back] == list(range(len(names)))
    assert all(isinstance(row["tp"], int) for row in back)
    assert [row["f1"] for row in back] == pytest.approx([0.5 + i / 100 for i in range(len(names))])
    assert all(math.isnan(row["length_true_px"]) for row in back)


def test_report_keeps_numeric_looking_names_apart(tmp_path):
    """Two images named `1e3` and `1000` are different images: each keeps its own bar."""
    run = fake_run(tmp_path / "eval", [0.2, 0.9, 0.5], 0.5, 0.5, "unet_demo")
    table = pd.read_csv(run / "per_image.csv", dtype={"name": str})
    table["name"] = ["1e3", "1000", "0001"]
    table.to_csv(run / "per_image.csv", index=False)
    loaded = load_run(run)
    assert {row["name"]: row["f1"] for row in loaded["per_image"]} == {"1e3": 0.2, "1000": 0.9, "0001": 0.5}
    assert main([str(run), "-o", str(tmp_path / "report")]) == 0
