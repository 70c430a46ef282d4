"""`python -m rootseg.compare pred=DIR truth=DIR`: two mask folders, no model, against an independent NumPy
count of the pixels and scipy's statistics of the per-image traits."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy import stats

from rootseg.evaluation.folders import compare_folders
from rootseg.measure.cleaning import Cleaning
from rootseg.measure.settings import resolve_traits
from rootseg.measure.traits import TraitSettings, root_traits


def _roots(rng: np.random.Generator, n: int) -> np.ndarray:
    canvas = np.zeros((160, 200), np.uint8)
    for _ in range(n):
        x0, y0, x1, y1 = (int(v) for v in rng.integers(10, 150, 4))
        cv2.line(canvas, (x0, y0), (x1 + 40, y1), 1, thickness=int(rng.integers(3, 7)))
    return canvas.astype(bool)


@pytest.fixture
def folders(tmp_path):
    """Five references and predictions (the reference shifted, with false specks and a missed root)."""
    rng = np.random.default_rng(3)
    truth_dir, pred_dir = tmp_path / "truth", tmp_path / "pred"
    truth_dir.mkdir(), pred_dir.mkdir()
    pairs = {}
    for index in range(5):
        truth = _roots(rng, 2 + index)
        pred = np.roll(truth, 1, axis=1) | (rng.random(truth.shape) < 0.002)
        pred[:, :20] = False
        Image.fromarray(truth.astype(np.uint8) * 255).save(truth_dir / f"scan_{index}.png")
        Image.fromarray(pred.astype(np.uint8) * 255).save(pred_dir / f"scan_{index}.png")
        pairs[f"scan_{index}"] = (pred, truth)
    return pred_dir, truth_dir, pairs


def test_pixel_scores_and_trait_agreement_against_an_independent_count(folders, tmp_path) -> None:
    pred_dir, truth_dir, pairs = folders
    settings = TraitSettings(clean=Cleaning())
    result = compare_folders(pred_dir, truth_dir, tmp_path / "out", None, settings)
    totals = np.zeros(4, np.int64)
    with open(tmp_path / "out" / "per_image.csv", newline="") as handle:
        rows = {row["name"]: row for row in csv.DictReader(handle)}
    for name, (pred, truth) in pairs.items():
        counts = np.array([(pred & truth).sum(), (pred & ~truth).sum(), (~pred & truth).sum(), (~pred & ~truth).sum()])
        totals += counts
        assert [int(rows[name][k]) for k in ("tp", "fp", "fn", "tn")] == counts.tolist()
        assert float(rows[name]["dice"]) == pytest.approx(2 * counts[0] / (2 * counts[0] + counts[1] + counts[2]))
        assert float(rows[name]["true_tips"]) == root_traits(truth, clean=Cleaning())["tips"]
        assert float(rows[name]["pred_length_px"]) == pytest.approx(root_traits(pred, clean=Cleaning())["length_px"])
    tp, fp, fn, _ = totals
    assert result["pooled"]["dice"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    for entry in result["trait_agreement"]:
        x = np.array([float(rows[n][f"true_{entry['trait']}"]) for n in sorted(rows)])
        y = np.array([float(rows[n][f"pred_{entry['trait']}"]) for n in sorted(rows)])
        assert entry["median_relative_error"] == pytest.approx(np.median(np.abs(y - x)[x != 0] / x[x != 0]))
        if np.ptp(x) > 0:
            assert entry["spearman"] == pytest.approx(stats.spearmanr(x, y).statistic)
            assert entry["slope"] == pytest.approx(np.polyfit(x, y, 1)[0])
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["n_images"] == 5
    assert "median_relative_error" in (tmp_path / "out" / "summary.csv").read_text()
    assert "| length_px |" in (tmp_path / "out" / "summary.md").read_text()
    assert (tmp_path / "out" / "traits_agreement.png").stat().st_size > 0


def test_folders_whose_names_differ_are_refused_by_name(folders, tmp_path) -> None:
    pred_dir, truth_dir, _ = folders
    (pred_dir / "scan_4.png").rename(pred_dir / "extra.png")
    with pytest.raises(ValueError, match=r"only in pred \['extra'\].*only in truth \['scan_4'\]"):
        compare_folders(pred_dir, truth_dir, tmp_path / "out", None, TraitSettings())


def test_the_command_takes_hydra_overrides_and_exits_2_on_bad_input(folders, tmp_path, compose) -> None:
    pred_dir, truth_dir, _ = folders
    cfg = compose("compare", [f"pred={pred_dir}", f"truth={truth_dir}", "clean.prune_px=7"])
    assert resolve_traits(cfg).clean == Cleaning(prune_px=7)
    out = tmp_path / "cli"
    command = [sys.executable, "-m", "rootseg.compare", f"pred={pred_dir}", f"truth={truth_dir}", f"output={out}"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "pooled Dice" in done.stdout and (out / "summary.json").is_file()
    bad = subprocess.run([*command, "clean.bridge_gap_px=-1"], capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 2 and "clean.bridge_gap_px" in bad.stderr and "Traceback" not in bad.stderr
    # threshold is a probability here as in eval, predict and measure: a grey level is refused with the rule
    grey = subprocess.run([*command, "threshold=127"], capture_output=True, text=True, cwd=tmp_path)
    assert grey.returncode == 2 and "threshold" in grey.stderr and "probability" in grey.stderr
    assert "Traceback" not in grey.stderr
    missing = subprocess.run([*command, f"intervals={tmp_path / 'no.csv'}"], capture_output=True, text=True)
    assert missing.returncode == 2 and "no.csv: no such file" in missing.stderr and "Traceback" not in missing.stderr


def test_coverage_of_predict_intervals_against_a_hand_count(folders, tmp_path) -> None:
    """With predict's results.csv in the pred folder, compare counts how often the reference trait lies in the
    prediction's interval and how much of the |error| the flagged images hold; without one it says why not."""
    pred_dir, truth_dir, pairs = folders
    settings = TraitSettings(clean=Cleaning())
    result = compare_folders(pred_dir, truth_dir, tmp_path / "none", None, settings)
    assert result["interval_coverage"] is None and "unavailable" in result["interval_coverage_missing"]
    assert "Coverage unavailable" in (tmp_path / "none" / "summary.md").read_text()

    names = sorted(pairs)
    truth = {name: root_traits(pairs[name][1], clean=Cleaning())["length_px"] for name in names}
    pred = {name: root_traits(pairs[name][0], clean=Cleaning())["length_px"] for name in names}
    # intervals: the first three hold the truth, the last two miss it; the last three are flagged
    bounds = [(truth[n] - 1, truth[n] + 1) if i < 3 else (truth[n] + 5, truth[n] + 9) for i, n in enumerate(names)]
    columns = ["name", "length_px_low", "length_px_high", "unreliable"]
    columns += [f"{t}{end}" for t in ("diameter_median_px", "projected_area_px2", "tips") for end in ("_low", "_high")]
    columns += [f"{t}{end}" for t in ("branch_points", "connected_roots") for end in ("_low", "_high")]
    with open(pred_dir / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, restval="0")
        writer.writeheader()
        for i, name in enumerate(names):
            low, high = bounds[i]
            writer.writerow(
                {"name": f"{name}.jpg", "length_px_low": low, "length_px_high": high, "unreliable": int(i >= 2)}
            )
    result = compare_folders(pred_dir, truth_dir, tmp_path / "out", None, settings)
    [length] = [entry for entry in result["interval_coverage"] if entry["trait"] == "length_px"]
    errors = [abs(pred[n] - truth[n]) / truth[n] for n in names]  # relative
    assert length["n"] == 5 and length["coverage"] == pytest.approx(3 / 5) and length["flagged"] == pytest.approx(3 / 5)
    assert length["flagged_error_share"] == pytest.approx(sum(errors[2:]) / sum(errors))
    assert "coverage" in (tmp_path / "out" / "summary.csv").read_text().splitlines()[0]
    with pytest.raises(ValueError, match="intervals=.*no such file"):
        compare_folders(pred_dir, truth_dir, tmp_path / "x", None, settings, intervals=tmp_path / "missing.csv")
