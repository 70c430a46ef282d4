"""`rootseg.report`: several evaluations in one table (RootSAM Table 1 and Smith et al. columns)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import compose_run, run_command
from PIL import Image

from rootseg.evaluation.compare import RunReadError, comparison_rows, load_run
from rootseg.evaluation.run import evaluate
from rootseg.figures.errors import compose_panels, error_comparison_figure, error_map, error_panels
from rootseg.io.tables import read_csv, write_csv


def report(runs, output: Path | None = None, *settings: str, run_dir: Path | None = None) -> int:
    """`python -m rootseg.report runs=[...] output=... settings` in this process; its exit code."""
    listed = f"runs=[{','.join(str(run) for run in runs)}]"
    where = [] if output is None else [f"output={output}"]
    return run_command("report", [listed, *where, *settings], run_dir or Path(runs[0]).parent / "report_run")


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
    assert report(two_runs, out) == 0
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
    assert report(two_runs, out, "names=[RootSAM,Frangi]") == 0
    assert pd.read_csv(out / "comparison.csv")["method"].tolist() == ["RootSAM", "Frangi"]
    rows = comparison_rows([load_run(two_runs[0]), load_run(two_runs[0])])
    assert [row["method"] for row in rows] == ["rootsam_stage1", "rootsam_stage1 (2)"]
    assert report(two_runs, out, "names=[only-one]") == 2


def test_missing_lengths_and_missing_files(tmp_path, capsys):
    run = fake_run(tmp_path / "short", [0.5, 0.6], 0.55, 0.4, "unet_demo", lengths=False)
    out = tmp_path / "report"
    assert report([run], out) == 0
    row = pd.read_csv(out / "comparison.csv").iloc[0]
    assert pd.isna(row["length Spearman"])  # no agreement with fewer than 3 images: an empty cell
    assert not (out / "root_length_agreement.png").exists() and (out / "f1_per_image.png").is_file()
    with pytest.raises(RunReadError, match="rootseg.eval"):
        load_run(tmp_path / "nowhere")
    assert report([tmp_path / "nowhere"], tmp_path / "nothing") == 2
    assert "summary.json: not found" in capsys.readouterr().err


def test_runs_on_different_data_are_flagged(two_runs, tmp_path):
    summary_path = two_runs[1] / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["split"] = "val"
    summary_path.write_text(json.dumps(summary))
    out = tmp_path / "report"
    assert report(two_runs, out) == 0
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
    assert report([run], tmp_path / "report") == 0


# -- errors_<image>.png: several methods' error maps on one image (Smith et al. Fig. 7-9) ---------------
WHITE, RED, GREEN, BLACK, GREY = (255, 255, 255), (255, 0, 0), (0, 255, 0), (0, 0, 0), (96, 96, 96)


class StubModule:
    """A stand-in checkpoint for rootseg.eval: root wherever `rule(height, width)` says, whatever the image
    (predicted as the Frangi baseline is: `predict_probs` of the whole image)."""

    kind, threshold = "frangi", 0.5

    def __init__(self, experiment: str, rule) -> None:
        self.run_config = {"experiment_name": experiment}
        self.rule = rule

    def to(self, device):
        return self

    def eval(self):
        return self

    def describe(self):
        return {"stub": self.run_config["experiment_name"]}

    def predict_probs(self, image, **_):
        height, width = image.shape[:2]
        return torch.from_numpy(self.rule(height, width).astype(np.float32))


def left_half(height: int, width: int) -> np.ndarray:
    return np.broadcast_to(np.arange(width) < width // 2, (height, width))


def top_half(height: int, width: int) -> np.ndarray:
    return np.broadcast_to((np.arange(height) < height // 2)[:, None], (height, width))


@pytest.fixture(scope="module")
def stub_runs(tmp_path_factory, synthetic_dir) -> dict[str, Path]:
    """rootseg.eval runs of the stub models on the small synthetic set (test split synth_0000, synth_0007):
    left (both test images drawn), top (the first only), top_val (the val split), none (figures=0)."""

    tmp = tmp_path_factory.mktemp("stub_evals")
    plans = {
        "left": (left_half, ["figures=2"]),
        "top": (top_half, ["figures=1"]),
        "top_val": (top_half, ["figures=1", "split=val"]),
        "none": (left_half, ["figures=0"]),
    }
    runs = {}
    for key, (rule, overrides) in plans.items():
        with pytest.MonkeyPatch.context() as patch:
            stub = StubModule(key, rule)
            patch.setattr("rootseg.evaluation.run.load_module", lambda path, stub=stub: stub)
            cfg = compose_run(
                "eval",
                [f"ckpt_path={tmp / key}.ckpt", "data=folder", f"data.root={synthetic_dir}", *overrides],
                tmp / key,
            )
            evaluate(cfg)
        runs[key] = tmp / key
    return runs


def expected_error_map(pred: np.ndarray, root: np.ndarray) -> np.ndarray:
    expected = np.zeros((*root.shape, 3), np.uint8)
    expected[pred & root] = WHITE
    expected[pred & ~root] = RED
    expected[~pred & root] = GREEN
    return expected


def test_error_figure_shows_each_methods_errors_on_the_shared_image(stub_runs, synthetic_dir, tmp_path, monkeypatch):
    """The report reads each run's saved prediction and draws photo | annotation | one error map per method
    for the image both runs saved (synth_0000; `left` also saved synth_0007, `top` did not)."""
    index = pd.read_csv(stub_runs["left"] / "predictions" / "index.csv", dtype={"name": str})
    assert index["name"].tolist() == ["synth_0000", "synth_0007"]
    assert index["image_path"][0] == str((synthetic_dir / "images" / "synth_0000.png").resolve())
    assert index["mask_path"][0] == str((synthetic_dir / "masks" / "synth_0000.png").resolve())

    drawn = {}
    real_figure = error_comparison_figure

    def keep_panels(panels, path, title=""):
        drawn[title] = panels
        return real_figure(panels, path, title)

    monkeypatch.setattr("rootseg.evaluation.compare.error_comparison_figure", keep_panels)
    out = tmp_path / "report"
    assert report([stub_runs["left"], stub_runs["top"]], out, "names=[Left,Top]") == 0
    assert sorted(p.name for p in out.glob("errors_*.png")) == ["errors_synth_0000.png"]
    assert list(drawn) == ["synth_0000"]

    image = np.asarray(Image.open(synthetic_dir / "images" / "synth_0000.png").convert("RGB"))
    root = np.asarray(Image.open(synthetic_dir / "masks" / "synth_0000.png")) > 127
    height, width = root.shape
    titles = [title for title, _ in drawn["synth_0000"]]
    panels = [panel for _, panel in drawn["synth_0000"]]
    assert titles[:2] == ["image", "annotation"] and len(panels) == 4
    assert np.array_equal(panels[0], image)  # 192 px wide: not scaled down
    assert np.array_equal(panels[1], np.where(root[..., None], 255, 0).astype(np.uint8) * np.ones(3, np.uint8))
    for title, panel, key, rule in zip(titles[2:], panels[2:], ("left", "top"), (left_half, top_half)):
        pred = rule(height, width)
        tp, fp, fn = np.sum(pred & root), np.sum(pred & ~root), np.sum(~pred & root)
        assert min(tp, fp, fn) > 0  # every kind of pixel is there to check
        assert np.array_equal(panel, expected_error_map(pred, root))
        # one pixel of each kind, by position
        for where, colour in ((pred & root, WHITE), (pred & ~root, RED), (~pred & root, GREEN)):
            y, x = np.argwhere(where)[len(np.argwhere(where)) // 2]
            assert tuple(panel[y, x]) == colour, (key, colour)
        f1 = 2 * tp / (2 * tp + fp + fn)
        table = pd.read_csv(stub_runs[key] / "per_image.csv", dtype={"name": str}).set_index("name")
        assert table.loc["synth_0000", "f1"] == pytest.approx(f1)
        assert title == f"{'Left' if key == 'left' else 'Top'} (F1 {f1:.3f})"
    # the two methods err in different places: left-half vs top-half predictions
    assert not np.array_equal(panels[2], panels[3])
    saved = np.asarray(Image.open(out / "errors_synth_0000.png").convert("RGB"))
    for colour in (RED, GREEN, WHITE):
        assert np.all(saved == colour, axis=2).sum() > 100, colour

    assert report([stub_runs["left"], stub_runs["left"]], tmp_path / "two", "figures=1") == 0
    assert [p.name for p in (tmp_path / "two").glob("errors_*.png")] == ["errors_synth_0000.png"]


def test_no_shared_image_is_said_and_skipped(stub_runs, tmp_path, capsys):
    out = tmp_path / "report"
    assert report([stub_runs["left"], stub_runs["top_val"]], out) == 0
    assert not list(out.glob("errors_*.png")) and (out / "comparison.md").is_file()
    logged = capsys.readouterr().out  # Hydra's log handler writes to stdout
    assert "share no image with a saved prediction" in logged
    assert "synth_0000" in logged and "synth_0003" in logged  # what each run holds
    assert report([stub_runs["left"], stub_runs["none"]], tmp_path / "none") == 0
    assert not list((tmp_path / "none").glob("errors_*.png"))
    logged = capsys.readouterr().out
    assert "holds no saved predictions" in logged and "save_predictions=true" in logged


def test_error_map_colours_unlabelled_pixels_and_scales_down():
    truth = np.array([[1, 1, 0, 0, 255, 255]], np.uint8)
    pred = np.array([[1, 0, 1, 0, 1, 0]], bool)
    assert [tuple(c) for c in error_map(pred, truth)[0]] == [WHITE, GREEN, RED, BLACK, GREY, GREY]

    # a 3000 px wide scan: three panels in a 1200 px row are 400 px wide, large regions keep their colour
    truth = np.zeros((300, 3000), np.uint8)
    truth[:, :1500] = 1
    pred = np.zeros_like(truth, dtype=bool)
    pred[:150] = True
    panels = error_panels(np.zeros((300, 3000, 3), np.uint8), truth, {"m": (pred, 0.5)}, width=1200)
    assert [panel.shape for _, panel in panels] == [(40, 400, 3)] * 3
    errors = panels[2][1]
    assert tuple(errors[5, 100]) == WHITE and tuple(errors[5, 300]) == RED
    assert tuple(errors[35, 100]) == GREEN and tuple(errors[35, 300]) == BLACK
    assert compose_panels(panels, gap=8).shape == (40, 3 * 400 + 2 * 8, 3)


# -- a run folder whose files are not what rootseg.eval writes: one paragraph naming the file, exit 2 ---------
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda run: (run / "summary.json").write_text("[1, 2]"), "summary.json: holds a JSON list, not the object"),
        (lambda run: (run / "summary.json").write_bytes(b'{"a": "\xff\xfe"}'), "summary.json: not valid UTF-8 JSON"),
        (
            lambda run: (run / "per_image.csv").write_text("name,tp\nimg_0,1\n"),
            "per_image.csv: no f1 column (columns: ['name', 'tp'])",
        ),
        (lambda run: (run / "per_image.csv").write_text("name,f1\nimg_0,0.5\nimg_1,\n"), "line 3 (img_1): f1 is ''"),
        (lambda run: (run / "per_image.csv").write_bytes(b"name,f1\n\xffimg,0.5\n"), "not a readable UTF-8 CSV"),
    ],
    ids=["summary-list", "summary-latin1", "no-f1-column", "empty-f1-cell", "csv-latin1"],
)
def test_a_damaged_run_folder_is_named_not_a_traceback(tmp_path, capsys, damage, message):
    run = fake_run(tmp_path / "eval", [0.5, 0.6, 0.7], 0.6, 0.5, "unet_demo")
    damage(run)
    assert report([run], tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert message in err and str(run) in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_pipe_or_a_line_break_in_a_run_name_keeps_the_table_whole(two_runs, tmp_path):
    for run, name in zip(two_runs, ["a|b", "two\nlines"]):
        summary = json.loads((run / "summary.json").read_text())
        summary["model"]["experiment_name"] = name
        (run / "summary.json").write_text(json.dumps(summary))
    out = tmp_path / "report"
    assert report(two_runs, out) == 0
    lines = (out / "comparison.md").read_text().splitlines()
    rows = [line for line in lines if line.startswith("| ")]
    headers = {line for line in rows if line.startswith("| method |")}
    for header in headers:  # every row of every table has its header's number of cells
        width = header.count(" | ")
        block = rows[rows.index(header) : rows.index(header) + 3]
        assert [row.replace("\\|", "").count(" | ") for row in block] == [width] * 3, block
    assert any(r"| a\|b |" in row for row in rows) and any("| two lines |" in row for row in rows)
