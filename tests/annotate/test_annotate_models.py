"""rootseg.annotate with models: RootSAM clicks through the adapter, and fine-tuning that swaps only when better."""

from __future__ import annotations

import io
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from annotate_fixtures import (  # noqa: F401
    SIZES,
    WRITE,
    annotation,
    client_for,
    make_project,
    png,
    project_fixture,
    unet_ckpt_fixture,
)
from PIL import Image

from rootseg.annotate import backend
from rootseg.annotate.finetune import FineTuner, hydra_quote, read_progress, train_command
from rootseg.io.rootpainter import encode_rootpainter_annotation


def _mask(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.array(Image.open(io.BytesIO(response.content)))


# ------------------------------------------------------------------------------------------------ clicks
def test_clicks_go_through_the_adapter_and_come_back_as_a_mask(compose, project, unet_ckpt, monkeypatch):
    calls = []

    def fake_click_mask(model, image, points):
        calls.append((image.shape, points.tolist()))
        mask = np.zeros(image.shape[:2], bool)
        x, y = points[points[:, 2] == 1][0, :2].astype(int)
        mask[max(0, y - 5) : y + 5, max(0, x - 5) : x + 5] = True
        return mask

    monkeypatch.setattr(backend, "click_mask", fake_click_mask)
    client, app = client_for(compose, project, f"ckpt_path={unet_ckpt}")
    response = client.post("/api/images/b/clicks", json={"points": [[30, 40, 1], [60, 70, 0]]}, headers=WRITE)
    assert response.status_code == 400 and "need a RootSAM checkpoint" in response.json()["error"]
    app.state.service.model = backend.Model(predictor=None, kind="rootsam", path=Path("rootsam.ckpt"))
    assert client.get("/api/config").json()["clicks"] is True
    mask = _mask(client.post("/api/images/b/clicks", json={"points": [[30, 40, 1], [60, 70, 0]]}, headers=WRITE))
    assert calls == [((120, 100, 3), [[30, 40, 1], [60, 70, 0]])]
    assert mask.shape == (120, 100) and set(np.unique(mask)) == {0, 255}
    assert (mask[35:45, 25:35] == 255).all() and mask.sum() == 100 * 255
    for points, words in [
        ([[30, 40, 0]], "at least one of them positive"),
        ([[300, 40, 1]], "inside the 100x120 image"),
        ([[30, 40, 2]], "labelled 1 or 0"),
        ([[30, 40]], "[[x, y, label], ...]"),
        ([[30, 40, 1]] * 65, "1 to 64 clicks"),
    ]:
        response = client.post("/api/images/b/clicks", json={"points": points}, headers=WRITE)
        assert response.status_code == 400 and words in response.json()["error"], (points, response.text)
    assert client.post("/api/images/b/clicks", content=b"not json", headers=WRITE).status_code == 400
    assert len(calls) == 1


def test_rootsam_clicks_segment_one_window_of_the_image(compose, tmp_path, micro_rootsam_ckpt):
    """A real (random-weight) RootSAM: the app's mask is the one inference path's (Predictor with labelled
    clicks), has the image's size and nothing outside the clicked window."""
    from rootseg.inference.predictor import Predictor

    project = make_project(tmp_path, {"wide": (300, 512)})
    client, app = client_for(compose, project, f"ckpt_path={micro_rootsam_ckpt}", "rank=name")
    assert client.get("/api/config").json()["clicks"] is True
    points = [[40, 50, 1], [60, 20, 0]]
    mask = _mask(client.post("/api/images/wide/clicks", json={"points": points}, headers=WRITE))
    assert mask.shape == (300, 512) and set(np.unique(mask)) <= {0, 255}
    # resize 256 and tile 128: the window is the image's top-left quarter (x < 256, y < 150) plus resize blur
    assert not mask[160:, :].any() and not mask[:, 270:].any()
    predictor = Predictor.from_checkpoint(micro_rootsam_ckpt)
    image = app.state.project.read_image("wide")
    probs = predictor.probabilities(image, clicks=np.array(points, np.float32))
    np.testing.assert_array_equal(probs >= predictor.threshold, mask == 255)


# --------------------------------------------------------------------------------------------- fine-tune
FAKE_TRAIN = """
import shutil, sys
from pathlib import Path
run, ckpt = Path(sys.argv[1]), sys.argv[2]
(run / "csv").mkdir(parents=True)
(run / "csv" / "metrics.csv").write_text("epoch,step,val/f1,train/loss\\n0,3,0.41,\\n0,3,,0.9\\n1,6,0.52,\\n")
(run / "checkpoints").mkdir()
shutil.copy(ckpt, run / "checkpoints" / "epoch_001-f1_0.5200.ckpt")
"""


def _annotate_both_splits(client) -> None:
    for stem, split, (h, w) in (("b", "train", (120, 100)), ("c", "val", (80, 90))):
        assert client.put(
            f"/api/images/{stem}/annotation?split={split}", content=png(annotation(h, w)), headers=WRITE
        ).is_success


def _wait(tuner: FineTuner, timeout: float = 300.0) -> dict:
    deadline = time.monotonic() + timeout
    while tuner.status()["state"] in ("running", "evaluating"):
        assert time.monotonic() < deadline, tuner.status()
        time.sleep(0.2)
    return tuner.status()


@pytest.mark.parametrize(("old_f1", "new_f1", "swapped"), [(0.5, 0.7, True), (0.7, 0.5, False), (0.6, 0.6, False)])
def test_finetune_swaps_only_a_better_model(compose, project, unet_ckpt, monkeypatch, old_f1, new_f1, swapped):
    client, app = client_for(compose, project, f"ckpt_path={unet_ckpt}")
    service = app.state.service
    tuner = FineTuner(
        service,
        project / "rootseg_annotate",
        max_epochs=2,
        launcher=lambda run, ckpt: [sys.executable, "-c", FAKE_TRAIN, str(run), str(ckpt)],
    )
    app.state.tuner = tuner
    monkeypatch.setattr(service, "val_f1", lambda model: old_f1 if model.path == unet_ckpt.resolve() else new_f1)
    response = client.post("/api/finetune", headers=WRITE)
    assert response.status_code == 400 and "0 train, 0 val" in response.json()["error"]
    _annotate_both_splits(client)
    response = client.post("/api/finetune", headers=WRITE)
    assert response.status_code == 202 and response.json()["state"] == "running"
    status = _wait(tuner)
    assert status["state"] == "done" and status["swapped"] is swapped, status
    assert (status["old_f1"], status["new_f1"]) == (old_f1, new_f1)
    assert status["progress"] == [{"epoch": 0, "val/f1": 0.41}, {"epoch": 1, "val/f1": 0.52}]
    assert status["epochs_done"] == 2 and status["max_epochs"] == 2
    assert client.get("/api/finetune").json()["swapped"] is swapped
    expected = Path(status["checkpoint"]) if swapped else unet_ckpt.resolve()
    assert service.model.path == expected and expected.is_file()


def test_finetune_failure_keeps_the_model_and_says_why(compose, project, unet_ckpt):
    client, app = client_for(compose, project, f"ckpt_path={unet_ckpt}")
    _annotate_both_splits(client)
    crash = [sys.executable, "-c", "import sys, time; time.sleep(1); print('out of memory'); sys.exit(3)"]
    app.state.tuner = tuner = FineTuner(
        app.state.service, project / "rootseg_annotate", launcher=lambda run, ckpt: crash
    )
    assert client.post("/api/finetune", headers=WRITE).status_code == 202
    assert client.post("/api/finetune", headers=WRITE).status_code == 409  # one run at a time
    status = _wait(tuner)
    assert status["state"] == "failed" and "status 3" in status["message"] and "out of memory" in status["message"]
    assert app.state.service.model.path == unet_ckpt.resolve()


def test_train_command_rebuilds_the_checkpoints_model(project, unet_ckpt, compose, tmp_path):
    """The generated config composes to the checkpoint's own model and data settings, with data=rootpainter."""
    location = backend.locate_project(project)
    run_dir = tmp_path / "odd, 'name'" / "run"
    argv = train_command(unet_ckpt, run_dir, location, 3, ["trainer.limit_train_batches=2"])
    assert argv[1:3] == ["-m", "rootseg.train"] and hydra_quote("a'b") == "'a\\'b'"
    overrides = [a for a in argv[3:] if not a.startswith("hydra.")]
    conf_dir = run_dir.parent / "run_conf"
    assert any(a.startswith("hydra.searchpath=") and "odd, \\'name\\'/run_conf" in a for a in argv), argv
    assert (conf_dir / "model" / "annotate_ckpt.yaml").is_file()
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from rootseg.config.run_config import CONFIG_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = hydra_compose("train", [*overrides, next(a for a in argv if a.startswith("hydra.searchpath="))])
    GlobalHydra.instance().clear()
    stored = backend.checkpoint_summary(unet_ckpt)["config"]
    assert cfg.model.net == stored["model"]["net"] and cfg.model.optimizer == stored["model"]["optimizer"]
    assert cfg.model.init_ckpt == str(unet_ckpt) and cfg.data.tile_in == stored["data"]["tile_in"] == 276
    assert cfg.data.source._target_.endswith("RootPainterSource") and cfg.data.root == str(location.project_file)
    assert cfg.trainer.max_epochs == 3 and cfg.trainer.limit_train_batches == 2 and cfg.test is False


@pytest.mark.slow  # ~30 s on 2 CPU cores: a real training run in a child process
def test_finetune_runs_rootseg_train_and_judges_on_val(compose, tmp_path, unet_ckpt):
    """A real one-epoch `python -m rootseg.train` from the tiny U-Net on annotations saved through the API."""
    from rootseg.synthetic.generator import generate_sample

    sizes = {f"s{i}": (160, 192) for i in range(4)}
    project = make_project(tmp_path, sizes)
    limits = ["trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "data.max_tiles_per_image=2"]
    client, app = client_for(
        compose,
        project,
        f"ckpt_path={unet_ckpt}",
        "finetune.max_epochs=1",
        "finetune.overrides=[" + ",".join(f"'{o}'" for o in limits) + "]",
    )
    for i, stem in enumerate(sizes):
        rgba = encode_rootpainter_annotation(generate_sample(i, sizes[stem]).mask)
        split = "val" if i == 3 else "train"
        assert client.put(f"/api/images/{stem}/annotation?split={split}", content=png(rgba), headers=WRITE).is_success
    assert client.post("/api/finetune", headers=WRITE).status_code == 202
    status = _wait(app.state.tuner)
    assert status["state"] == "done", Path(status["log"]).read_text()[-3000:]
    run_dir = Path(status["run_dir"])
    assert status["progress"] and status["progress"] == read_progress(run_dir)
    assert status["swapped"] is (status["new_f1"] > status["old_f1"])
    assert app.state.service.model.path == (Path(status["checkpoint"]) if status["swapped"] else unet_ckpt.resolve())
    resolved = (run_dir / "config_resolved.yaml").read_text()
    assert f"init_ckpt: {unet_ckpt}" in resolved and "RootPainterSource" in resolved
    shutil.rmtree(run_dir)


@pytest.mark.parametrize(
    ("with_root", "predicted_rows", "expected"),
    [
        (True, (15, 35), 0.5),  # per image 5 root rows found, 5 missed, 5 background rows claimed
        (False, (15, 35), 0.0),  # no root to find, background claimed
        (True, (0, 0), 0.0),  # root missed, nothing claimed
        (False, (0, 0), 1.0),  # nothing to find, nothing claimed: eval's rule, not torchmetrics' 0.0
    ],
)
def test_val_f1_counts_and_scores_as_eval_does(
    compose, project, unet_ckpt, monkeypatch, with_root, predicted_rows, expected
):
    """The fine-tune's swap compares val F1s pooled over the val annotations by eval's counts and empty rule;
    unlabelled pixels (all rows but 10-19 root and 30-39 background) count nowhere."""

    def band(model, image):
        probs = np.zeros(image.shape[:2], np.float32)
        probs[slice(*predicted_rows)] = 0.9
        return probs

    monkeypatch.setattr(backend, "predict_probs", band)
    client, app = client_for(compose, project, f"ckpt_path={unet_ckpt}")
    for stem, (h, w) in (("b", SIZES["b"]), ("c", SIZES["c"])):
        rgba = annotation(h, w, root_rows=(10, 20) if with_root else (0, 0))
        assert client.put(f"/api/images/{stem}/annotation?split=val", content=png(rgba), headers=WRITE).is_success
    service = app.state.service
    assert service.val_f1(service.model) == pytest.approx(expected, abs=1e-12)
