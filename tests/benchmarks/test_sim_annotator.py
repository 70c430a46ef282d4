"""The simulated annotator of benchmarks/annotation_time.py: what its strokes and clicks cost, that it paints only
inside the class it labels, that corrections go only where the model is wrong, and that RootSAM clicks are
accepted only when they help. Hand-made regions, so every expected second is worked out here."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _load(name: str):
    sys.path.insert(0, str(REPO / "benchmarks"))
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


sim = _load("sim_annotator")
bench = _load("annotation_time")


def _bar(shape=(100, 240), rows=(45, 56), cols=(20, 220)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[rows[0] : rows[1], cols[0] : cols[1]] = True
    return mask


def _full(shape, window, crop) -> np.ndarray:
    full = np.zeros(shape, bool)
    full[window] = crop
    return full


def test_travel_clicks_and_painting_speed_cost_what_the_protocol_says():
    clock = sim.Clock()
    clock.travel((480, 640))  # 800 px at 800 px/s
    assert clock.seconds == pytest.approx(1.0)
    clock.click((480, 640))  # no travel, one press
    assert clock.seconds == pytest.approx(1.0 + sim.CLICK_SECONDS) and clock.clicks == 1
    # speed: 3 sigma of aim jitter (sigma = speed * 0.04 s) fits in the slack, within 30-200 px/s
    assert sim.paint_speed(0.0) == sim.MIN_PAINT_SPEED == 30.0
    assert sim.paint_speed(12.0) == pytest.approx(12 / 0.12)
    assert sim.paint_speed(1000.0) == sim.MAX_PAINT_SPEED == 200.0


def test_a_bar_is_painted_in_one_stroke_at_the_speed_its_width_allows():
    """An 11 px bar: the biggest brush that fits is radius 5, its centres one row; slack 6 - 5 = 1 px -> 30 px/s."""
    bar = _bar()
    assert sim.choose_radius(bar, bar) == 5
    clock = sim.Clock()
    painted = _full(bar.shape, *sim.paint(clock, sim.Region.whole(bar), bar))
    assert not (painted & ~bar).any()  # no paint outside the bar
    assert np.count_nonzero(painted) / np.count_nonzero(bar) > 0.95
    assert clock.strokes >= 1
    first = math.hypot(25, 50) / sim.TRAVEL_SPEED + (214 - 25) / 30.0  # travel to the first centre, paint to the last
    assert clock.seconds >= first - 1e-9  # then smaller brushes for the corners the first could not reach
    one = sim.Clock()
    brush = sim.Brush(bar, bar, 5)
    assert brush.stroke(one) and not brush.stroke(one)  # the radius-5 brush needs exactly one stroke
    assert one.seconds == pytest.approx(first, abs=0.05) and one.painted_px == pytest.approx(189, abs=1)


def test_paint_stops_when_told_and_leaves_what_no_brush_reaches():
    bar = _bar()
    clock = sim.Clock()
    window, half = sim.paint(clock, sim.Region.whole(bar), bar, done=lambda w, p: p.sum() >= 0.3 * bar.sum())
    assert 0.3 * bar.sum() <= half.sum() < 0.6 * bar.sum()
    # a target outside what it may paint gets nothing and costs nothing
    other = sim.Clock()
    assert not sim.paint(other, sim.Region.whole(bar), ~bar)[1].any() and other.seconds == 0.0


def test_a_region_is_painted_in_a_crop_with_the_cursor_in_image_pixels():
    """The second bar of an image is cut out with room for any brush; the clock still travels in image pixels."""
    truth = _bar(shape=(400, 400), rows=(300, 311), cols=(200, 380))
    (region,) = sim.components(truth)
    assert region.area == 11 * 180 and region.slices == (slice(300, 311), slice(200, 380))
    clock = sim.Clock()
    window, painted = sim.paint(clock, region, truth)
    assert window == (slice(300 - 82, 311 + 82), slice(200 - 82, 400))  # 82 px: room for the largest brush
    full = _full(truth.shape, window, painted)
    assert not (full & ~truth).any() and full.sum() > 0.95 * truth.sum()
    assert clock.travelled_px >= math.hypot(205, 305)  # from (0, 0) to the bar's first brush centre


def test_tally_keeps_f1_as_crops_change():
    truth = _bar()
    mask = np.zeros_like(truth)
    tally = sim.Tally(mask, truth)
    window = (slice(40, 60), slice(0, 120))
    crop = truth[window].copy()
    crop[0:3] = True  # 3 rows of false root above the bar
    assert tally.f1_with(window, crop) == pytest.approx(sim.f1(_full(truth.shape, window, crop), truth))
    tally.set(window, crop)
    assert tally.f1() == pytest.approx(sim.f1(tally.mask, truth)) and not mask.any()  # the caller's mask untouched


def test_corrections_go_only_where_the_model_is_wrong():
    truth = _bar() | _bar(rows=(80, 91))
    predicted = truth.copy()
    predicted[45:56, 150:220] = False  # a missed piece of the first root
    predicted[10:30, 60:100] = True  # false root in the background
    clock = sim.Clock()
    fixed, root, background = bench.correct(clock, predicted, truth, None)
    assert not (root & ~truth).any() and not (background & truth).any()
    assert not root[80:91].any() and not background[60:].any()  # nothing near the root the model got right
    assert root[45:56, 150:220].mean() > 0.9 and background[10:30, 60:100].mean() > 0.9
    assert sim.f1(fixed, truth) > 0.97
    perfect = sim.Clock()
    _, root, background = bench.correct(perfect, truth, truth, None)
    assert not root.any() and not background.any() and perfect.seconds == sim.LOOK_SECONDS


def test_a_speckled_patch_is_swept_as_one_region_not_speck_by_speck():
    """100 one-pixel false roots 6 px apart: one group, a brush sized to the patch, a few strokes."""
    truth = _bar(shape=(200, 200), rows=(180, 191), cols=(10, 190))
    predicted = truth.copy()
    predicted[40:100:6, 40:100:6] = True
    (group,) = sim.groups(predicted & ~truth, ~truth)
    assert group.area == 100 and group.size_hint > 60 * 60
    clock = sim.Clock()
    fixed, root, background = bench.correct(clock, predicted, truth, None)
    assert not root.any() and not (background & truth).any() and (fixed == truth).all()
    assert clock.strokes <= 10  # one by one would be 100 strokes


def test_manual_annotation_stops_at_the_goal():
    truth = _bar() | _bar(rows=(80, 91), cols=(20, 120))
    fast, slow = sim.Clock(), sim.Clock()
    mask = bench.manual(fast, truth, 0.5)
    assert sim.f1(mask, truth) >= 0.5 and not (mask & ~truth).any()
    assert sim.f1(bench.manual(slow, truth, 0.95), truth) >= 0.95
    assert fast.seconds < slow.seconds


def test_rootsam_clicks_are_accepted_when_they_help_and_the_brush_takes_over_when_not():
    import cv2

    truth = _bar() | _bar(rows=(80, 91), cols=(20, 120))
    count, labels = cv2.connectedComponents(truth.astype(np.uint8))

    def perfect(image, clicks):  # the root under the positive click
        x, y = int(clicks[0, 0]), int(clicks[0, 1])
        return labels == labels[y, x]

    clock = sim.Clock()
    mask, counts = bench.rootsam_clicks(clock, perfect, None, truth, 0.99, max_negative=2)
    assert sim.f1(mask, truth) == 1.0
    assert counts == {"proposals": 2, "accepted": 2, "brushed": 0, "background_brushed": 0}
    # look, then per root: travel to its most interior pixel, click, accept
    first, second = (bench.interior_point(sim.Region.whole(labels == i)) for i in (1, 2))
    expected = sim.LOOK_SECONDS + (math.dist((0, 0), first) + math.dist(first, second)) / sim.TRAVEL_SPEED
    assert clock.seconds == pytest.approx(expected + 4 * sim.CLICK_SECONDS)

    spilling = sim.Clock()  # a proposal that spills into the soil gets a negative click there, which clears it
    calls = []

    def spill(image, clicks):
        calls.append(clicks.tolist())
        out = perfect(image, clicks)
        return out if len(clicks) > 1 else out | _bar(rows=(5, 20), cols=(20, 60))

    mask, counts = bench.rootsam_clicks(spilling, spill, None, truth, 0.99, max_negative=2)
    assert sim.f1(mask, truth) == 1.0 and [c[-1][2] for c in calls] == [1, 0, 1, 0]  # per root: + then -
    assert counts["accepted"] == 2 and spilling.clicks == 4
    blob = sim.Region.whole(_bar(rows=(5, 20), cols=(20, 60)))
    assert all(bench.interior_point(blob) == tuple(c[1][:2]) for c in (calls[1], calls[3]))

    useless = sim.Clock()
    mask, counts = bench.rootsam_clicks(useless, lambda image, clicks: np.zeros_like(truth), None, truth, 0.9, 2)
    assert sim.f1(mask, truth) >= 0.9 and counts["accepted"] == 0 and counts["brushed"] >= 1
    assert not (mask & ~truth).any()


def test_the_stream_saves_about_one_val_annotation_per_five_train(tmp_path):
    image = np.zeros((16, 16, 3), np.uint8)
    project = bench.Project(tmp_path, [(image, np.zeros((16, 16), bool))] * 8)
    rgba = bench.annotation_rgba(np.eye(16, dtype=bool), ~np.eye(16, dtype=bool))
    splits = [project.save(i, rgba) for i in range(8)]
    assert splits == ["train", "val", "train", "train", "train", "train", "train", "val"]
    from rootseg.io.masks import read_mask

    labels = read_mask(project.folder / "annotations" / "val" / "s001.png")
    assert (labels == np.eye(16)).all()  # red root, green background: data=rootpainter reads 1 and 0


def test_summary_says_after_how_many_images_the_corrective_stream_pays_off():
    rounds = [
        {"image": 0, "phase": "initial", "stream_seconds": 100.0},
        {"image": 1, "stream_seconds": 300.0, "model_f1": 0.4, "correction_seconds": 160.0},
        {"image": 2, "stream_seconds": 400.0, "model_f1": 0.6, "correction_seconds": 80.0},
    ]
    result = {
        "settings": {"held_out": "4"},
        "a_manual": {"seconds": 240.0},
        "b_corrective": {"rounds": rounds},
        "c_rootsam": {"seconds": 120.0},
    }
    summary = bench.summarize(result)
    assert summary["a_manual_seconds_per_image"] == 60.0 and summary["c_rootsam_seconds_per_image"] == 30.0
    assert summary["c_rootsam_saving_per_image"] == 0.5
    assert summary["b_last_round"] == {
        "stream_images": 3,
        "stream_seconds": 400.0,
        "model_f1": 0.6,
        "correction_seconds_per_image": 20.0,
    }
    assert summary["b_pays_off_after_images"] == 10.0  # 400 s of stream / (60 - 20) s saved per image
    rounds[-1]["correction_seconds"] = 300.0  # 75 s per image: slower than manual, never pays off
    assert bench.summarize(result)["b_pays_off_after_images"] is None


@pytest.fixture(scope="module")
def micro_rootsam(tmp_path_factory) -> Path:
    """A RootSAM checkpoint of the micro SAM 2.1 (random weights) at resize 256, tile 128."""
    import hydra
    import lightning as L
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from rootseg.config.run_config import CONFIG_DIR

    root = tmp_path_factory.mktemp("rootsam")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        paths = [f"paths.{k}={root}" for k in ("data_dir", "output_dir", "work_dir")]
        overrides = ["+experiment=rootsam_stage1", "model/net=sam2.1_micro", "data.resize=256", "data.tile=128"]
        cfg = compose("train", [*overrides, *paths])
    GlobalHydra.instance().clear()
    L.seed_everything(0, verbose=False)
    model = hydra.utils.instantiate(cfg.model)
    model.run_config = OmegaConf.to_container(cfg, resolve=True)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(root / "rootsam.ckpt")
    return root / "rootsam.ckpt"


ARGS = ["--size", "64", "--held-out", "1", "--goal", "0.6"]


def test_without_a_rootsam_checkpoint_c_is_pending_and_earlier_results_stay(tmp_path):
    manual = bench.main([*ARGS, "--out", str(tmp_path), "--workflows", "a"])["a_manual"]
    assert manual["f1_per_image"][0] >= 0.6 and manual["seconds"] > sim.LOOK_SECONDS
    pending = bench.main([*ARGS, "--out", str(tmp_path), "--workflows", "c", "--rootsam-ckpt", str(tmp_path / "x")])
    assert pending["c_rootsam"]["seconds"] is None and "no RootSAM checkpoint" in pending["c_rootsam"]["pending"]
    assert pending["a_manual"] == manual  # a workflow run earlier with the same settings is kept
    other = bench.main([*ARGS[:-1], "0.7", "--out", str(tmp_path), "--workflows", "c"])
    assert "a_manual" not in other  # other settings: earlier results dropped


@pytest.mark.slow  # ~70 s on 2 busy cores (building the micro SAM, then its proposals); the fakes above are fast
def test_the_rootsam_workflow_runs_through_the_predictor(micro_rootsam, tmp_path):
    """(c) with the micro SAM (random weights: the mechanics, not a figure): the image reaches the goal and each
    proposal came from a click through `Predictor.probabilities(image, clicks=...)`."""
    result = bench.main([*ARGS, "--out", str(tmp_path), "--workflows", "a", "c", "--rootsam-ckpt", str(micro_rootsam)])
    rootsam, manual = result["c_rootsam"], result["a_manual"]
    assert rootsam["f1_per_image"][0] >= 0.6
    actions = rootsam["actions"][0]
    assert actions["clicks"] >= actions["proposals"] >= 1 and actions["accepted"] + actions["brushed"] >= 1
    assert rootsam["describe"]["kind"] == "rootsam"
    assert rootsam["saving_vs_manual"] == pytest.approx(1 - rootsam["seconds"] / manual["seconds"], abs=1e-3)
