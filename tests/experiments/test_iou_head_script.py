"""experiments/rootsam_modes/iou_head.py: the numbers it reports about an IoU head, checked on made-up heads
whose answers are known."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from conftest import REPO


@pytest.fixture(scope="module")
def iou_head():
    spec = importlib.util.spec_from_file_location("iou_head", REPO / "experiments" / "rootsam_modes" / "iou_head.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_threshold_keeps_the_most_root_clicks_and_the_fewest_soil_clicks(iou_head):
    root = np.array([0.2, 0.5, 0.6, 0.9])
    soil = np.array([0.1, 0.3, 0.55])
    # keeping >= 0.5: 3/4 root, 1/3 soil (J = 0.417); >= 0.6: 2/4, 0 (J = 0.5, the best); >= 0.2: 1, 2/3 (J = 0.33)
    assert iou_head.separating_threshold(root, soil) == 0.6
    assert iou_head.separating_threshold(root, np.array([])) is None


def test_summary_of_a_head_that_separates_and_of_one_that_is_flat(iou_head):
    rng = np.random.default_rng(0)
    real = rng.random(200)
    good = {
        "root_pred": 0.5 + real / 2,  # monotone in the real IoU, above every soil click
        "root_real": real,
        "root_stable": np.full(200, 0.9),
        "soil_pred": rng.random(100) * 0.4,
        "soil_stable": np.zeros(100),
        "soil_pixels": np.array([0] * 75 + [5] * 25),
    }
    found = iou_head.summary(good)
    assert found["spearman_predicted_vs_real_iou_root"] == pytest.approx(1.0)
    assert found["auc_root_over_soil"] == 1.0
    assert found["soil_clicks_with_an_empty_mask"] == 0.75
    assert found["root_clicks"] == 200 and found["soil_clicks"] == 100
    assert found["root_predicted_iou_q10_q50_q90"] == np.quantile(good["root_pred"], (0.1, 0.5, 0.9)).round(4).tolist()
    flat = dict(good, root_pred=np.full(200, 0.16), soil_pred=np.full(100, 0.16))
    assert iou_head.summary(flat)["auc_root_over_soil"] == 0.5  # ties: no better than chance
