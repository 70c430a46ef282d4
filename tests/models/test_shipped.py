"""Shipped models by name (`ckpt_path=NAME`, `model.init_ckpt=NAME`), their checksum, the list command and the
packaging script, on a model shipped into a temporary folder from the small checkpoint trained in conftest."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHIPPED_NAME, SHIPPED_THRESHOLD, TINY_TRAIN, compose_run, run_command, ship_script

from rootseg.io.files import sha256_file
from rootseg.models import shipped
from rootseg.tasks.checkpoints import CheckpointLoadError, load_module

NAME, THRESHOLD = SHIPPED_NAME, SHIPPED_THRESHOLD


def test_ship_writes_a_weights_only_file_with_its_checksum_and_threshold(shipped_here, tiny_checkpoint):
    entry = json.loads((shipped_here / "manifest.json").read_text())["models"][NAME]
    data = (shipped_here / entry["file"]).read_bytes()
    assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data)
    assert entry["threshold"] == THRESHOLD and "highest pooled F1 on the 12 val scans" in entry["threshold_source"]
    small = torch.load(shipped_here / entry["file"], map_location="cpu", weights_only=False)
    full = torch.load(tiny_checkpoint, map_location="cpu", weights_only=False)
    assert set(small) == {"state_dict", "rootseg"} and "optimizer_states" in full
    assert small["state_dict"].keys() == full["state_dict"].keys()
    assert all(torch.equal(small["state_dict"][k], v) for k, v in full["state_dict"].items())
    module = load_module(NAME)
    assert module.threshold == THRESHOLD and module.init_ckpt is None


def _images(folder: Path, synthetic_dir: Path, n: int = 2) -> Path:
    folder.mkdir()
    for path in sorted((synthetic_dir / "images").iterdir())[:n]:
        shutil.copy(path, folder / path.name)
    return folder


def test_predict_by_name_uses_the_shipped_weights_and_threshold(
    shipped_here, tiny_checkpoint, synthetic_dir, compose, tmp_path
):
    from PIL import Image

    from rootseg.inference.folder import predict
    from rootseg.inference.predictor import Predictor
    from rootseg.inference.settings import InferenceSettings

    images = _images(tmp_path / "in", synthetic_dir)
    predict(compose("predict", [f"ckpt_path={NAME}", f"input={images}", f"output={tmp_path / 'out'}"]))
    # the same weights from the original checkpoint at the shipped threshold give the same masks
    reference = Predictor.from_checkpoint(tiny_checkpoint, InferenceSettings(threshold=THRESHOLD))
    for path in sorted(images.iterdir()):
        image = np.asarray(Image.open(path).convert("RGB"))
        written = np.asarray(Image.open(tmp_path / "out" / f"{path.stem}.png")) > 0
        assert written.shape == image.shape[:2]
        np.testing.assert_array_equal(written, reference.mask(reference.probabilities(image)))
    recorded = (tmp_path / "out" / "predict_config.yaml").read_text()
    assert str(shipped_here / f"{NAME}.ckpt") in recorded


def test_eval_by_name_scores_the_shipped_model(shipped_here, tiny_checkpoint, synthetic_dir, tmp_path):
    from rootseg.evaluation.run import evaluate

    common = ["data=folder", f"data.root={synthetic_dir}", "figures=0"]
    by_name = evaluate(compose_run("eval", [f"ckpt_path={NAME}", *common], tmp_path / "a"))
    by_path = evaluate(
        compose_run("eval", [f"ckpt_path={tiny_checkpoint}", f"threshold={THRESHOLD}", *common], tmp_path / "b")
    )
    assert by_name["threshold"] == THRESHOLD and by_name["checkpoint"] == NAME
    assert by_name["pooled"] == by_path["pooled"]
    # the card is written from either eval (the same weights, the same threshold), with its measured scores
    ship = ship_script()
    for evaluation in (by_name, by_path):
        card = ship.ship_card(evaluation, NAME, "python -m rootseg.train ...", "An unfinished run.").read_text()
        assert f"| {by_name['pooled']['f1']:.4f} | {by_name['pooled']['precision']:.4f} |" in card
        assert f"threshold {THRESHOLD}" in card and "An unfinished run." in card
        assert not re.search(r"\{[a-z_0-9]+\}", card)  # every field filled
    with pytest.raises(SystemExit, match="threshold"):
        ship.ship_card({**by_path, "threshold": 0.5}, NAME, "recipe", "")
    assert "not measured" in ship.ship_card(None, NAME, "recipe", "").read_text()


def test_init_ckpt_by_name_starts_from_the_shipped_weights(shipped_here, synthetic_dir, tmp_path):
    import hydra

    cfg = compose_run("train", [*TINY_TRAIN, f"data.root={synthetic_dir}", f"model.init_ckpt={NAME}"], tmp_path)
    module = hydra.utils.instantiate(cfg.model)
    module.setup("fit")
    weights = torch.load(shipped_here / f"{NAME}.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    assert all(torch.equal(module.state_dict()[k], v) for k, v in weights.items())


def test_a_damaged_or_altered_file_is_refused(zoo, tmp_path, monkeypatch, capsys):
    damaged = tmp_path / "zoo"
    shutil.copytree(zoo, damaged)
    data = bytearray((damaged / f"{NAME}.ckpt").read_bytes())
    data[len(data) // 2] ^= 1  # one bit
    (damaged / f"{NAME}.ckpt").write_bytes(bytes(data))
    monkeypatch.setattr(shipped, "SHIPPED_DIR", damaged)
    with pytest.raises(CheckpointLoadError, match="damaged or altered") as error:
        load_module(NAME)
    assert hashlib.sha256(bytes(data)).hexdigest() in str(error.value) and "reinstall" in str(error.value).lower()
    assert run_command("models", [], tmp_path / "run") == 2
    assert "damaged or altered" in capsys.readouterr().err
    (damaged / f"{NAME}.ckpt").unlink()
    with pytest.raises(CheckpointLoadError, match="missing"):
        load_module(NAME)


def test_a_wrong_name_lists_the_shipped_models(shipped_here):
    with pytest.raises(CheckpointLoadError) as error:
        load_module("tiny-zo0")
    message = str(error.value)
    assert f"{NAME}:" in message and "python -m rootseg.models" in message and "tiny-zo0" in message
    with pytest.raises(CheckpointLoadError, match=f"checkpoint not found.*{NAME}"):
        load_module("runs/missing.ckpt")  # a path: reported missing, with the names as the alternative


def test_a_file_of_that_name_is_read_as_a_path(shipped_here, tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(tiny_checkpoint, tmp_path / NAME)
    assert shipped.resolve(NAME) == Path(NAME)
    assert load_module(NAME).threshold == 0.5  # the local file's own, not the shipped one's


def test_the_list_command_lists_and_prints_cards(shipped_here, capsys, tmp_path):
    assert run_command("models", [], tmp_path / "list") == 0
    out = capsys.readouterr().out
    assert f"{NAME}: tiny (threshold {THRESHOLD}" in out
    assert run_command("models", [f"card={NAME}"], tmp_path / "card") == 0
    assert capsys.readouterr().out.startswith("# Model card: tiny-zoo")
    assert run_command("models", ["crad=x"], tmp_path / "typo") != 0  # Hydra's grammar, with its typo hint
    assert "did you mean card?" in capsys.readouterr().err


def test_the_shipped_models_load_and_predict(tmp_path):
    """The real shipped files (not their accuracy): the checksum holds, and a scan gets a mask of its shape."""
    from rootseg.inference.predictor import Predictor
    from rootseg.inference.settings import InferenceSettings

    models = shipped.shipped_models()
    if not models:
        pytest.skip("no model ships in this checkout")
    for name, entry in models.items():
        assert set(shipped.FIELDS) <= set(entry)
        assert (shipped.SHIPPED_DIR / entry["card"]).is_file()
        assert sha256_file(shipped.shipped_file(name)) == entry["sha256"]
        assert (shipped.SHIPPED_DIR / entry["file"]).stat().st_size <= 20 * 2**20
        predictor = Predictor.from_checkpoint(name, InferenceSettings())
        assert predictor.threshold == entry["threshold"]
        image = np.random.default_rng(0).integers(0, 256, (300, 420, 3), dtype=np.uint8)
        assert predictor.mask(predictor.probabilities(image)).shape == (300, 420)
