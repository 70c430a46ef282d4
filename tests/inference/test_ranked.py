"""predict's uncertainty: the `uncertainty` column of results.csv and ranked.csv, most uncertain first.

A stand-in model returns hand-made probability maps, so each image's score is counted here independently:
the share of pixels with |p - threshold| < 0.25.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rootseg.inference.folder import predict
from rootseg.inference.predictor import KINDS

#: image stem -> (height, width, share of pixels at p = 0.6, share at p = 0.95; the rest p = 0.02)
MAPS = {"tube1": (40, 50, 0.10, 0.30), "tube2": (30, 60, 0.55, 0.05), "tube3": (50, 40, 0.30, 0.00)}


def _probs(shape: tuple[int, ...]) -> np.ndarray:
    stem = next(stem for stem, (h, w, _, _) in MAPS.items() if (h, w) == tuple(shape[:2]))
    h, w, unsure, sure = MAPS[stem]
    probs = np.full(h * w, 0.02, np.float32)
    probs[: round(unsure * h * w)] = 0.6
    probs[round(unsure * h * w) : round((unsure + sure) * h * w)] = 0.95
    return probs.reshape(h, w)


class MapInference:
    honours = frozenset()

    def __init__(self, module, settings, device, proposer=None) -> None:
        pass

    def __call__(self, image, clicks=None):
        return _probs(np.asarray(image).shape)

    def describe(self):
        return {}


class FakeModel(torch.nn.Module):
    kind = "maps"
    threshold = 0.5


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def scans(tmp_path) -> Path:
    folder = tmp_path / "scans"
    folder.mkdir()
    for stem, (h, w, _, _) in MAPS.items():
        Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(folder / f"{stem}.png")
    return folder


def test_results_and_ranked_csv_hold_each_images_uncertainty(compose, scans, tmp_path, monkeypatch):
    monkeypatch.setitem(KINDS, "maps", MapInference)
    monkeypatch.setattr("rootseg.inference.predictor.load_module", lambda path: FakeModel())
    output = tmp_path / "out"
    args = ["ckpt_path=m.ckpt", f"input={scans}", f"output={output}", "save_overlay=false", "save_rootpainter=false"]
    predict(compose("predict", args))
    rows = {row["name"]: row for row in _read(output / "results.csv")}
    for stem, (h, w, unsure, _) in MAPS.items():
        # 0.6 lies within 0.25 of 0.5; 0.95 and 0.02 do not
        assert float(rows[f"{stem}.png"]["uncertainty"]) == pytest.approx(round(unsure * h * w) / (h * w), abs=1e-6)
    ranked = _read(output / "ranked.csv")
    assert [row["name"] for row in ranked] == ["tube2.png", "tube3.png", "tube1.png"]
    assert [row["rank"] for row in ranked] == ["1", "2", "3"]
    assert list(ranked[0]) == ["rank", "name", "path", "uncertainty"]
    assert ranked[0]["path"] == str(scans / "tube2.png")

    # an image measured from an older run's mask (no probabilities, no score) is ranked last, not dropped
    record = output / ".rootseg" / "records" / "tube2.json"
    older = {k: v for k, v in json.loads(record.read_text()).items() if k != "uncertainty"}
    record.write_text(json.dumps(older))
    predict(compose("predict", args))  # every mask exists: nothing segmented, the tables rebuilt
    ranked = _read(output / "ranked.csv")
    assert [(row["name"], row["uncertainty"]) for row in ranked][-1] == ("tube2.png", "")
    assert [row["name"] for row in ranked] == ["tube3.png", "tube1.png", "tube2.png"]
