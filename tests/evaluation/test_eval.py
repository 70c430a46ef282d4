"""`rootseg.eval` in-process on a tiny U-Net checkpoint: tables and figures, numbers checked independently."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import compose_run, torch_threads
from PIL import Image
from scipy import stats

from rootseg.evaluation.run import evaluate
from rootseg.inference.predictor import KINDS
from rootseg.io.masks import read_pair
from rootseg.io.rootpainter import encode_rootpainter_annotation
from rootseg.measure.length import skeleton_length
from rootseg.tasks.checkpoints import CheckpointLoadError, load_module
from rootseg.tiling.window import sliding_window_probs


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
    # the prediction of the image drawn is kept for rootseg.report, with where its image and mask are
    assert sorted(p.name for p in (run_dir / "predictions").iterdir()) == ["index.csv", f"{test_names[0]}.png"]
    index = pd.read_csv(run_dir / "predictions" / "index.csv", dtype={"name": str})
    assert index.to_dict("records") == [
        {
            "name": test_names[0],
            "prediction": f"predictions/{test_names[0]}.png",
            "image_path": str((synthetic_dir / "images" / f"{test_names[0]}.png").resolve()),
            "mask_path": str((synthetic_dir / "masks" / f"{test_names[0]}.png").resolve()),
            "mask_threshold": 127,
        }
    ]
    assert pd.read_csv(run_dir / "per_image.csv")["name"].tolist() == test_names
    assert result["model"] == {
        "kind": "unet",
        "experiment_name": "unet_demo",
        "model_target": "rootseg.tasks.unet.UNetModule",
    }
    assert set(result["patches"]) == {"512", "1024"} and result["split"] == "test"
    assert result["threshold"] == 0.5  # threshold=null: the checkpoint's own


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
    # eval's default window, written out: half-tile steps, Gaussian blending (what predict writes too)
    probs = sliding_window_probs(
        image, module.predict_tiles, module.tile_in, module.tile_out, step=module.tile_out // 2
    )
    pred = probs.numpy() >= module.threshold
    truth, labelled = mask == 1, mask != 255
    tp = np.sum(pred & truth & labelled)
    fp = np.sum(pred & ~truth & labelled)
    fn = np.sum(~pred & truth & labelled)
    assert (row["tp"], row["fp"], row["fn"]) == (tp, fp, fn)
    assert row["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-12)
    saved = Image.open(run_dir / "predictions" / f"{name}.png")  # the first image is drawn: figures=1
    assert saved.mode == "1" and np.array_equal(np.asarray(saved), pred)  # lossless, 1 bit per pixel


@pytest.mark.parametrize("split", ["val", "test"])
def test_training_logs_the_f1_eval_reports(tiny_run, tmp_path, split):
    """`val/f1` (which picked the checkpoint) and `test/f1` are rootseg.eval's pooled F1 of the same checkpoint
    on the same images: validation and test predict with eval's default window, not a cheaper one of their own."""
    logged = tiny_run["best_scores"]["val/f1"] if split == "val" else tiny_run["test/f1"]
    ckpt = tiny_run["best_checkpoint"]
    with torch_threads(1):  # as tiny_run trained: one thread, float32 sums that do not depend on the batch
        result = evaluate(compose_run("eval", [f"ckpt_path={ckpt}", f"split={split}", "figures=0"], tmp_path))
    assert result["split"] == split and result["n_images"] >= 2
    # both score integer counts with rootseg.metrics.pixels.scores, in float64
    assert logged == pytest.approx(result["pooled"]["f1"], rel=1e-12, abs=0)


def test_a_folder_without_split_file_is_scored_whole(tiny_checkpoint, tmp_path):
    """split=auto (the default) on a held-out folder without split.json scores every image."""
    from rootseg.synthetic.dataset import write_dataset

    held_out = write_dataset(tmp_path / "held_out", n=4, size=(160, 160), seed=11)
    (held_out / "split.json").unlink()
    cfg = compose_run(
        "eval", [f"ckpt_path={tiny_checkpoint}", "data=folder", f"data.root={held_out}"], tmp_path / "run"
    )
    result = evaluate(cfg)
    assert result["data"] == str(held_out) and result["split"] == "all" and result["n_images"] == 4
    assert "no split file" in result["split_reason"]
    names = pd.read_csv(tmp_path / "run" / "per_image.csv", dtype={"name": str})["name"].tolist()
    assert names == [f"synth_{i:04d}" for i in range(4)]
    assert "length_agreement" in result  # >= 3 images
    assert (tmp_path / "run" / "figures" / "root_length_agreement.png").is_file()
    assert "intensity_agreement" not in result  # no resolution given: no line-intersect columns
    assert "intensity_true_per_m" not in pd.read_csv(tmp_path / "run" / "per_image.csv").columns

    # asked for explicitly, the test split is what Smith's rule sets aside (1 of 4 at val_fraction 0.2)
    explicit = evaluate(
        compose_run(
            "eval",
            [f"ckpt_path={tiny_checkpoint}", "data=folder", f"data.root={held_out}", "split=test", "figures=0"],
            tmp_path / "explicit",
        )
    )
    assert explicit["split"] == "test" and explicit["n_images"] == 1

    # with a split file, auto means its test split
    (held_out / "split.json").write_text(json.dumps({"train": ["synth_0000"], "test": ["synth_0001", "synth_0003"]}))
    with_file = evaluate(
        compose_run(
            "eval",
            [f"ckpt_path={tiny_checkpoint}", "data=folder", f"data.root={held_out}", "figures=0"],
            tmp_path / "with_file",
        )
    )
    assert with_file["split"] == "test"
    names = pd.read_csv(tmp_path / "with_file" / "per_image.csv", dtype={"name": str})["name"].tolist()
    assert names == ["synth_0001", "synth_0003"]


def test_resolution_and_threshold_settings():
    from omegaconf import OmegaConf

    from rootseg.inference.predictor import Predictor
    from rootseg.inference.settings import InferenceSettings
    from rootseg.measure.settings import resolve_mm_per_pixel

    def mm(**keys):
        return resolve_mm_per_pixel(OmegaConf.create({"mm_per_pixel": None, "dpi": None, **keys}))

    assert mm() is None
    assert mm(dpi=600) == pytest.approx(25.4 / 600)
    assert mm(mm_per_pixel=0.05) == 0.05
    assert mm(mm_per_pixel=0.0423, dpi=600) == 0.0423  # 25.4 / 600 = 0.04233: agree to 0.1 %
    with pytest.raises(ValueError, match="disagree"):
        mm(mm_per_pixel=0.0423, dpi=300)
    with pytest.raises(ValueError, match=r"dpi must be a finite number > 0 or null, got 0"):
        mm(dpi=0)

    class Module(torch.nn.Module):
        kind, threshold = "frangi", 0.3

    assert Predictor(Module()).threshold == 0.3  # null: the checkpoint's own
    assert Predictor(Module(), InferenceSettings(threshold=0.9)).threshold == 0.9
    with pytest.raises(ValueError, match="threshold"):
        InferenceSettings(threshold=1.5)


def test_unknown_split_and_missing_checkpoint_say_what_to_do(tiny_checkpoint, tmp_path):
    with pytest.raises(ValueError, match="ckpt_path is required"):
        evaluate(compose_run("eval", [], tmp_path / "a"))
    with pytest.raises(CheckpointLoadError, match="not found"):
        evaluate(compose_run("eval", [f"ckpt_path={tmp_path / 'missing.ckpt'}"], tmp_path / "b"))
    with pytest.raises(ValueError, match="split='tset'"):
        evaluate(compose_run("eval", [f"ckpt_path={tiny_checkpoint}", "split=tset"], tmp_path / "c"))


# -- eval's numbers against an independent NumPy computation on a prediction we can recompute -----------
DPI, GRID_MM, THRESHOLD = 600, 5.0, 0.45
# the trait intervals: masks at 0.25 and 0.65, bounds widened by 10 %; flagged above a relative width of 30 (the
# blurred-brightness stand-in's looser mask covers much soil: its widths run from about 20 to 250)
DELTA, MARGIN, CUTOFF = 0.2, 0.1, 30
SECOND_GRID_MM = 12.0  # a further line-intersect grid: columns and agreement end in _12mm


def fake_probs(image: np.ndarray) -> np.ndarray:
    """A stand-in model: blurred brightness (synthetic roots are lighter than soil)."""
    return cv2.GaussianBlur(image.astype(np.float32).mean(axis=2) / 255.0, (0, 0), 1.5)


def read_independently(folder, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image, root and labelled masks straight from the files (RootPainter RGBA: red root, transparent
    unlabelled), without rootseg's readers."""
    image = np.asarray(Image.open(folder / "images" / f"{name}.png").convert("RGB"))
    rgba = np.asarray(Image.open(folder / "masks" / f"{name}.png"))
    labelled = rgba[..., 3] > 0
    return image, labelled & (rgba[..., 0] > 127), labelled


def ap_by_positives(prob: np.ndarray, truth: np.ndarray) -> float:
    """AP as the mean over root pixels of the precision at that pixel's probability (ties included)."""
    ordered, positives = np.sort(prob), np.sort(prob[truth])
    scored = prob.size - np.searchsorted(ordered, positives, "left")
    found = positives.size - np.searchsorted(positives, positives, "left")
    return float(np.mean(found / scored))


def crossings(mask: np.ndarray, labelled: np.ndarray, spacing: float) -> tuple[int, int]:
    """Runs of root along horizontal and vertical grid lines and the labelled grid length (pixels)."""
    runs, grid = 0, 0
    for lines, valid in ((mask, labelled), (mask.T, labelled.T)):
        for position in np.floor(np.arange(spacing / 2, lines.shape[0], spacing)).astype(int):
            line = np.r_[0, (lines[position] & valid[position]).astype(np.int8)]
            runs += int(np.sum(np.diff(line) == 1))
            grid += int(valid[position].sum())
    return runs, grid


@pytest.fixture(scope="module")
def recomputable(tmp_path_factory, tiny_checkpoint):
    """A folder of four 600 x 560 scans with RootPainter masks that leave a band and a column strip
    unlabelled, evaluated with `predict_probs` replaced by `fake_probs`, dpi=600, a 5 mm grid and
    threshold 0.45; no split file, so every image; no figures, but save_predictions=true."""
    from rootseg.synthetic.dataset import write_dataset

    tmp = tmp_path_factory.mktemp("recompute")
    folder = write_dataset(tmp / "set", n=4, size=(600, 560), seed=21)
    (folder / "split.json").unlink()
    for index, path in enumerate(sorted((folder / "masks").glob("*.png"))):
        rgba = encode_rootpainter_annotation((np.asarray(Image.open(path)) > 127).astype(np.uint8))
        rgba[200 + 40 * index : 330 + 40 * index, :, 3] = 0  # unlabelled band
        rgba[:, 500:, 3] = 0  # and strip
        Image.fromarray(rgba).save(path)

    run_dir = tmp / "run"
    overrides = [
        f"dpi={DPI}",
        f"line_intersect_grid_mm=[{GRID_MM},{SECOND_GRID_MM}]",
        "save_predictions=true",
        f"interval.delta={DELTA}",
        f"interval.unreliable_width={CUTOFF}",
        f"interval.margin={MARGIN}",
    ]
    return evaluate_with_fake_probs(tiny_checkpoint, folder, run_dir, overrides), run_dir, folder


def evaluate_with_fake_probs(checkpoint, folder, run_dir, overrides: list[str]) -> dict:
    """`rootseg.eval` of `folder` at THRESHOLD, no figures, with `predict_probs` replaced by `fake_probs`."""

    class FakeProbs:
        honours = frozenset()

        def __init__(self, module, settings, device, proposer=None):
            pass

        def __call__(self, image, clicks=None):
            return fake_probs(np.asarray(image))

        def describe(self):
            return {"fake": True}

    base = [f"ckpt_path={checkpoint}", "data=folder", f"data.root={folder}", f"threshold={THRESHOLD}", "figures=0"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(KINDS, "unet", FakeProbs)
        return evaluate(compose_run("eval", [*base, *overrides], run_dir))


def test_per_image_columns_equal_an_independent_computation(recomputable):
    """Soft Dice, counts, root pixels, lengths (px and mm) and line-intersect intensity per image, with the
    predicted side cut to labelled pixels like the annotation."""
    result, run_dir, folder = recomputable
    table = pd.read_csv(run_dir / "per_image.csv", dtype={"name": str})
    assert result["split"] == "all" and table["name"].tolist() == [f"synth_{i:04d}" for i in range(4)]
    assert result["threshold"] == THRESHOLD
    mm = 25.4 / DPI
    assert result["mm_per_pixel"] == pytest.approx(mm)
    spacing = GRID_MM / mm
    predicted_where_unlabelled = 0
    for row in table.itertuples():
        image, truth, labelled = read_independently(folder, row.name)
        prob = fake_probs(image).astype(np.float64)
        pred = prob >= THRESHOLD
        predicted_where_unlabelled += int(np.sum(pred & ~labelled))
        assert (row.tp, row.fp, row.fn) == (
            np.sum(pred & truth),
            np.sum(pred & ~truth & labelled),
            np.sum(~pred & truth),
        )
        soft = (2 * np.sum(prob * truth) + 1) / (np.sum(prob * labelled) + np.sum(truth) + 1)
        assert row.segroot_soft_dice == pytest.approx(soft, rel=1e-6)
        assert row.unlabelled_pixels == np.sum(~labelled)
        assert row.root_pixels_true == np.sum(truth)
        assert row.root_pixels_pred == np.sum(pred & labelled)
        assert row.length_true_px == pytest.approx(skeleton_length(truth))
        assert row.length_pred_px == pytest.approx(skeleton_length(pred & labelled))
        assert row.length_pred_mm == pytest.approx(row.length_pred_px * mm)
        for side, mask in (("true", truth), ("pred", pred)):
            runs, grid_px = crossings(mask, labelled, spacing)
            assert getattr(row, f"intersections_{side}") == runs
            assert getattr(row, f"intensity_{side}_per_m") == pytest.approx(runs / (grid_px * mm / 1000))
            runs, grid_px = crossings(mask, labelled, SECOND_GRID_MM / mm)
            assert getattr(row, f"intersections_{side}_12mm") == runs
            assert getattr(row, f"intensity_{side}_per_m_12mm") == pytest.approx(runs / (grid_px * mm / 1000))
    # the unlabelled areas hold predicted root, so counting it there would have changed the columns
    assert predicted_where_unlabelled > 1000


def test_save_predictions_keeps_every_hard_mask(recomputable):
    """save_predictions=true with figures=0: every image's hard mask, unlabelled pixels included as
    predicted, and index.csv rows that find the image and mask again."""
    _, run_dir, folder = recomputable
    assert not list((run_dir / "figures").glob("*_errors.png"))
    index = pd.read_csv(run_dir / "predictions" / "index.csv", dtype={"name": str})
    assert index["name"].tolist() == [f"synth_{i:04d}" for i in range(4)]
    for row in index.itertuples():
        assert row.image_path == str((folder / "images" / f"{row.name}.png").resolve())
        assert row.mask_path == str((folder / "masks" / f"{row.name}.png").resolve())
        image, _, labelled = read_independently(folder, row.name)
        saved = np.asarray(Image.open(run_dir / row.prediction))
        expected = fake_probs(image) >= THRESHOLD
        assert np.array_equal(saved, expected)
        assert (saved & ~labelled).any()  # not cut to the labelled pixels: the report greys those


def test_patch_metrics_and_agreement_equal_an_independent_computation(recomputable):
    """mIoU / Dice / mAP over 512 and 1024 patches (per patch, then the mean), pooled AP over all labelled
    pixels, and the length and intensity agreement; in summary.json and summary.csv alike."""
    result, run_dir, folder = recomputable
    table = pd.read_csv(run_dir / "per_image.csv", dtype={"name": str})
    summary_csv = pd.read_csv(run_dir / "summary.csv")

    def csv_value(group: str, statistic: str, metric: str) -> float:
        found = summary_csv[
            (summary_csv["group"] == group)
            & (summary_csv["statistic"] == statistic)
            & (summary_csv["metric"] == metric)
        ]
        assert len(found) == 1, (group, statistic, metric)
        return float(found["value"].iloc[0])

    images = [read_independently(folder, name) for name in table["name"]]
    probs = [fake_probs(image).astype(np.float64) for image, _, _ in images]
    for size in (512, 1024):
        ious, dices, aps, n_patches = [], [], [], 0
        for prob, (_, truth, labelled) in zip(probs, images):
            for top in range(0, prob.shape[0], size):
                for left in range(0, prob.shape[1], size):
                    window = (slice(top, top + size), slice(left, left + size))
                    p, t = prob[window][labelled[window]], truth[window][labelled[window]]
                    n_patches += 1
                    hard = p >= THRESHOLD
                    tp, fp, fn = np.sum(hard & t), np.sum(hard & ~t), np.sum(~hard & t)
                    if tp + fp + fn:  # a patch empty in both truth and prediction is not scored
                        ious.append(tp / (tp + fp + fn))
                        dices.append(2 * tp / (2 * tp + fp + fn))
                    if t.any():
                        aps.append(ap_by_positives(p, t))
        ours = result["patches"][str(size)]
        assert ours["n_patches"] == n_patches and ours["n_scored"] == len(ious) and ours["n_ap"] == len(aps)
        assert ours["iou"] == pytest.approx(np.mean(ious), abs=1e-12)
        assert ours["dice"] == pytest.approx(np.mean(dices), abs=1e-12)
        assert ours["ap"] == pytest.approx(np.mean(aps), abs=1e-9)
        group = f"patches {size}"
        assert csv_value(group, "per-patch mean", "iou") == pytest.approx(ours["iou"], abs=1e-12)
        assert csv_value(group, "per-patch mean", "ap") == pytest.approx(ours["ap"], abs=1e-12)
        assert csv_value(group, "pooled over all pixels", "ap") == pytest.approx(ours["ap_pooled"], abs=1e-12)
    all_prob = np.concatenate([prob[labelled] for prob, (_, _, labelled) in zip(probs, images)])
    all_truth = np.concatenate([truth[labelled] for _, truth, labelled in images])
    pooled_ap = ap_by_positives(all_prob, all_truth)
    assert result["patches"]["512"]["ap_pooled"] == pytest.approx(pooled_ap, abs=1e-5)  # 2^-20 bins
    assert result["patches"]["512"]["ap_pooled"] != pytest.approx(result["patches"]["512"]["ap"], abs=1e-4)
    tp, fp, fn = (int(table[key].sum()) for key in ("tp", "fp", "fn"))
    assert result["patches"]["1024"]["iou_pooled"] == pytest.approx(tp / (tp + fp + fn), abs=1e-12)
    assert csv_value("pixels", "pooled over all pixels", "f1") == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert csv_value("pixels", "per-image mean", "segroot_soft_dice") == pytest.approx(
        table["segroot_soft_dice"].mean()
    )
    f1_at = {}
    for t in np.arange(1, 100) / 100:
        hard = all_prob >= t
        f1_at[round(t, 2)] = 2 * np.sum(hard & all_truth) / (hard.sum() + all_truth.sum())
    best = max(f1_at, key=lambda t: (f1_at[t], -t))
    assert result["best_threshold"]["threshold"] == best
    assert result["best_threshold"]["f1"] == pytest.approx(f1_at[best], abs=1e-5)  # 2^-20 bins
    assert csv_value("pixels", "best threshold on these images", "threshold") == best
    assert f"Best threshold on these images: {best:g}" in (run_dir / "summary.md").read_text()

    for key, group, true_col, pred_col, grid in (
        ("length_agreement", "root length", "length_true_px", "length_pred_px", None),
        ("intensity_agreement", "root intensity", "intensity_true_per_m", "intensity_pred_per_m", GRID_MM),
        (
            "intensity_agreement_12mm",
            "root intensity",
            "intensity_true_per_m_12mm",
            "intensity_pred_per_m_12mm",
            SECOND_GRID_MM,
        ),
    ):
        x, y = table[true_col].to_numpy(), table[pred_col].to_numpy()
        assert result[key]["spearman"] == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
        assert result[key]["r2"] == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2, abs=1e-9)
        statistic = "predicted vs annotated" + (f" ({grid:g} mm grid)" if grid else "")
        assert csv_value(group, statistic, "r2") == pytest.approx(result[key]["r2"], abs=1e-12)
        assert result[key].get("grid_mm") == grid
    assert (run_dir / "figures" / "root_intensity_agreement.png").is_file()
    assert (run_dir / "figures" / "root_intensity_agreement_12mm.png").is_file()
    assert "Root intensity (12 mm line-intersect grid)" in (run_dir / "summary.md").read_text()
    assert "AP pooled" in (run_dir / "summary.md").read_text()


def test_length_method_and_grid_settings(tmp_path):
    """length_method=pixels counts skeleton pixels (Smith); a bad grid list or method is refused by name."""
    from omegaconf import OmegaConf

    from rootseg.evaluation.run import measure_image
    from rootseg.measure.settings import resolve_grids

    target = np.zeros((64, 64), np.uint8)
    for i in range(10, 50):
        target[i, i] = 1  # a diagonal root: 40 skeleton pixels, 39 diagonal steps
    probs = target.astype(np.float32)
    pixels, _ = measure_image(probs, target, 0.5, length_method="pixels")
    corrected, _ = measure_image(probs, target, 0.5)
    assert pixels["length_true_px"] == skeleton_length(target, method="pixels")
    assert corrected["length_true_px"] == skeleton_length(target)
    assert pixels["length_true_px"] != pytest.approx(corrected["length_true_px"], rel=0.05)

    assert resolve_grids(OmegaConf.create({"line_intersect_grid_mm": None})) == [10.0]
    assert resolve_grids(OmegaConf.create({"line_intersect_grid_mm": [10, 20, 40, 80]})) == [10, 20, 40, 80]
    for bad in (0, -5, [10, 10], [], "ten", [10, "x"]):
        with pytest.raises(ValueError, match="line_intersect_grid_mm must be"):
            resolve_grids(OmegaConf.create({"line_intersect_grid_mm": bad}))


def test_pixel_grid_counts_intersections_without_a_resolution(recomputable, tiny_checkpoint, tmp_path):
    """line_intersect_grid_px=40 and no dpi: intersection counts per image on a 40 px grid (labelled pixels
    only) and their agreement; no intensity per metre, which needs a resolution."""
    _, _, folder = recomputable
    run_dir = tmp_path / "px"
    result = evaluate_with_fake_probs(tiny_checkpoint, folder, run_dir, ["line_intersect_grid_px=40"])
    table = pd.read_csv(run_dir / "per_image.csv", dtype={"name": str})
    assert "intensity_true_per_m" not in table.columns and result["mm_per_pixel"] is None
    for row in table.itertuples():
        image, truth, labelled = read_independently(folder, row.name)
        pred = fake_probs(image).astype(np.float64) >= THRESHOLD
        assert row.intersections_true == crossings(truth, labelled, 40)[0]
        assert row.intersections_pred == crossings(pred, labelled, 40)[0]
    x, y = table["intersections_true"].to_numpy(), table["intersections_pred"].to_numpy()
    assert result["intersections_agreement"]["grid_px"] == 40
    assert result["intersections_agreement"]["spearman"] == pytest.approx(stats.spearmanr(x, y).statistic)
    summary = pd.read_csv(run_dir / "summary.csv")
    assert (
        (summary["statistic"] == "predicted vs annotated (40 px grid)").sum()
        == len(summary[summary["group"] == "root intersections"])
        > 0
    )
    assert "Root intersections (40 px line-intersect grid)" in (run_dir / "summary.md").read_text()
    with pytest.raises(ValueError, match=r"line_intersect_grid_px must be a finite number \(spacing in pixels\) > 0"):
        evaluate_with_fake_probs(tiny_checkpoint, folder, tmp_path / "bad", ["line_intersect_grid_px=-4"])


def test_trait_columns_of_prediction_and_annotation_equal_root_traits(recomputable):
    """per_image.csv carries the traits of both sides as `true_<trait>` and `pred_<trait>`, measured on labelled
    pixels only (the image area too), from the skeleton that gives the length columns."""
    from rootseg.measure.cleaning import Cleaning
    from rootseg.measure.traits import TRAIT_COLUMNS, root_traits

    _, run_dir, folder = recomputable
    table = pd.read_csv(run_dir / "per_image.csv", dtype={"name": str})
    mm = 25.4 / DPI
    for row in table.to_dict("records"):
        image, truth, labelled = read_independently(folder, row["name"])
        pred = fake_probs(image).astype(np.float64) >= THRESHOLD
        for side, mask in (("true", truth), ("pred", pred & labelled)):
            expected = root_traits(mask, mm, valid=labelled, clean=Cleaning())
            assert expected["image_area_px"] == labelled.sum() and expected["tips"] > 0
            for column in TRAIT_COLUMNS:
                assert row[f"{side}_{column}"] == pytest.approx(expected[column], rel=1e-6, abs=1e-9), column
        as_given = root_traits(pred & labelled, valid=labelled, max_hole_px=0)["length_px"]  # not cleaned
        assert row["length_pred_px"] == pytest.approx(as_given)
    reported = json.loads((run_dir / "summary.json").read_text())["trait_agreement"]  # as rootseg.compare reports
    assert len(reported) == 6
    for entry in reported:
        x, y = table[f"true_{entry['trait']}"].to_numpy(float), table[f"pred_{entry['trait']}"].to_numpy(float)
        assert entry["median_relative_error"] == pytest.approx(np.median(np.abs(y - x)[x != 0] / x[x != 0]))


def test_prediction_intervals_and_their_coverage_equal_an_independent_computation(recomputable):
    """per_image.csv carries the prediction's trait intervals (traits at THRESHOLD -/+ DELTA on labelled pixels,
    min and max with the threshold's own) and summary.json their coverage, counted here by hand."""
    from rootseg.measure.agreement import AGREEMENT_TRAITS
    from rootseg.measure.cleaning import Cleaning
    from rootseg.measure.traits import root_traits

    _, run_dir, folder = recomputable
    table = pd.read_csv(run_dir / "per_image.csv", dtype={"name": str})
    mm = 25.4 / DPI
    for row in table.to_dict("records"):
        image, _, labelled = read_independently(folder, row["name"])
        probs = fake_probs(image)
        cuts = (THRESHOLD, THRESHOLD - DELTA, THRESHOLD + DELTA)
        measured = [root_traits((probs >= cut) & labelled, mm, valid=labelled, clean=Cleaning()) for cut in cuts]
        for trait in (*AGREEMENT_TRAITS, "length_mm"):
            values = [m[trait] for m in measured]
            assert row[f"pred_{trait}_low"] == pytest.approx(min(values) / (1 + MARGIN), rel=1e-6), trait
            assert row[f"pred_{trait}_high"] == pytest.approx(max(values) * (1 + MARGIN), rel=1e-6), trait
        lengths = [m["length_px"] for m in measured]
        width = (max(lengths) * (1 + MARGIN) - min(lengths) / (1 + MARGIN)) / lengths[0]
        assert row["pred_interval_width"] == pytest.approx(width, rel=1e-6)
        assert row["pred_unreliable"] == int(width > CUTOFF)
    reported = json.loads((run_dir / "summary.json").read_text())["interval_coverage"]
    assert [entry["trait"] for entry in reported] == list(AGREEMENT_TRAITS)
    for entry in reported:
        true, pred = table[f"true_{entry['trait']}"], table[f"pred_{entry['trait']}"]
        low, high = table[f"pred_{entry['trait']}_low"], table[f"pred_{entry['trait']}_high"]
        inside = sum(lo <= t <= hi for t, lo, hi in zip(true, low, high))
        assert entry["coverage"] == pytest.approx(inside / len(table))
        errors = ((pred - true).abs() / true.abs())[true != 0]  # relative, where the annotation has some
        flagged = (table["pred_unreliable"] == 1)[true != 0]
        share = errors[flagged].sum() / errors.sum() if errors.sum() > 0 else None
        assert entry["flagged"] == pytest.approx((table["pred_unreliable"] == 1).mean())
        assert share is None or entry["flagged_error_share"] == pytest.approx(share)
    summary_csv = pd.read_csv(run_dir / "summary.csv")
    assert set(summary_csv[summary_csv["group"] == "trait interval"]["statistic"]) == set(AGREEMENT_TRAITS)
    assert "## Trait intervals" in (run_dir / "summary.md").read_text()
    assert 0 < table["pred_unreliable"].sum() < len(table)  # the flag's rule is exercised both ways
