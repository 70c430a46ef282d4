"""rootseg.annotate's API through Starlette's test client: queue, overlay, saving, and every refusal."""

from __future__ import annotations

import io

import numpy as np
import pytest
from annotate_fixtures import SIZES, WRITE, annotation, client_for, png, project_fixture, unet_ckpt_fixture  # noqa: F401
from PIL import Image

from rootseg.annotate import backend
from rootseg.annotate.service import SEGMENTATION_RGBA
from rootseg.figures.colours import ANNOTATE_PREDICTED
from rootseg.io.masks import read_mask
from rootseg.sources.rootpainter import RootPainterSource

H, W = SIZES["b"]


# ------------------------------------------------------------------------------------------------ queue
def test_queue_is_most_uncertain_first(compose, project, unet_ckpt, monkeypatch):
    """Hand-made probability maps per image: the queue follows their share of pixels near the threshold."""
    ambiguous = {"scan a": 0.60, "b": 0.10, "c": 0.35}  # share of pixels at p = 0.5, the rest at 0

    sizes = {image_size: stem for stem, image_size in SIZES.items()}

    def fake_predict(model, image):
        probs = np.zeros(image.shape[:2], np.float32)
        probs.flat[: int(round(ambiguous[sizes[image.shape[:2]]] * probs.size))] = 0.5
        return probs

    monkeypatch.setattr(backend, "predict_probs", fake_predict)
    client, app = client_for(compose, project, f"ckpt_path={unet_ckpt}")
    before = client.get("/api/queue").json()
    assert before["pending"] == 3 and all(item["score"] is None for item in before["images"])
    app.state.service._score_all()
    queue = client.get("/api/queue").json()
    assert [item["id"] for item in queue["images"]] == ["scan a", "c", "b"]
    assert [item["score"] for item in queue["images"]] == pytest.approx([0.60, 0.35, 0.10], abs=1e-3)
    assert queue["pending"] == 0
    by_name, _ = client_for(compose, project, f"ckpt_path={unet_ckpt}", "rank=name")
    assert [item["id"] for item in by_name.get("/api/queue").json()["images"]] == ["b", "c", "scan a"]


def test_queue_without_a_model_is_by_name_and_marks_annotated_images(compose, project):
    client, _ = client_for(compose, project)
    assert client.get("/api/config").json()["model"] is None
    assert client.put("/api/images/c/annotation?split=val", content=png(annotation(80, 90)), headers=WRITE).is_success
    queue = client.get("/api/queue").json()
    assert [(i["id"], i["split"]) for i in queue["images"]] == [("b", None), ("c", "val"), ("scan a", None)]
    assert queue["pending"] == 0
    assert client.get("/api/images/b/segmentation").status_code == 404


def test_overlay_is_the_mask_predict_writes(compose, project, unet_ckpt, tmp_path):
    """The blue overlay equals the mask file `rootseg.predict` writes for the same image and checkpoint."""
    from conftest import compose_run

    from rootseg.inference.folder import predict

    client, _ = client_for(compose, project, f"ckpt_path={unet_ckpt}")
    response = client.get("/api/images/scan a/segmentation")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    rgba = np.array(Image.open(io.BytesIO(response.content)))
    images = project.parent.parent / "datasets" / "scans"
    args = [f"ckpt_path={unet_ckpt}", f"input='{images}'", f"output={tmp_path / 'out'}", "save_overlay=false"]
    predict(compose_run("predict", args, tmp_path / "run"))
    written = np.array(Image.open(tmp_path / "out" / "scan a.png")) == 255
    assert rgba.shape == (*SIZES["scan a"], 4) and 0 < written.sum() < written.size
    np.testing.assert_array_equal(rgba[:, :, 3] == 255, written)
    assert {tuple(v) for v in rgba.reshape(-1, 4)} <= {SEGMENTATION_RGBA, (0, 0, 0, 0)}
    assert SEGMENTATION_RGBA[:3] == ANNOTATE_PREDICTED  # the one colour scheme's


def test_image_is_served_as_rootseg_reads_it(compose, project):
    client, _ = client_for(compose, project)
    response = client.get("/api/images/b/image")
    source = project.parent.parent / "datasets" / "scans" / "b.png"
    assert response.status_code == 200 and response.content == source.read_bytes()
    # a 16-bit scan is re-encoded as the 8-bit RGB the model sees
    deep = (np.arange(H * W, dtype=np.uint16).reshape(H, W) * 7) % 4096
    Image.fromarray(deep).save(source)
    shown = np.array(Image.open(io.BytesIO(client.get("/api/images/b/image").content)))
    np.testing.assert_array_equal(shown, backend.read_image(source))


# ------------------------------------------------------------------------------------------------ saving
def test_saved_annotation_is_what_rootpainter_and_data_rootpainter_read(compose, project):
    client, _ = client_for(compose, project)
    rgba = annotation(H, W)
    response = client.put("/api/images/b/annotation?split=train", content=png(rgba), headers=WRITE)
    assert response.status_code == 200 and response.json()["saved"] == "annotations/train/b.png"
    saved = project / "annotations" / "train" / "b.png"
    np.testing.assert_array_equal(np.array(Image.open(saved)), rgba)
    assert Image.open(saved).mode == "RGBA"
    labels = read_mask(saved)
    assert (labels[10:20] == 1).all() and (labels[30:40] == 0).all() and (labels[:10] == 255).all()
    splits = RootPainterSource(project).splits()
    assert [s.name for s in splits["train"]] == ["b"] and splits["val"] == []
    got = client.get("/api/images/b/annotation")
    assert got.headers["x-split"] == "train" and got.content == saved.read_bytes()
    # saved again as val: it moves, so the image is never in both splits (data=rootpainter refuses that)
    assert client.put("/api/images/b/annotation?split=val", content=png(rgba), headers=WRITE).is_success
    assert not saved.exists() and (project / "annotations" / "val" / "b.png").is_file()
    assert [s.name for s in RootPainterSource(project).splits()["val"]] == ["b"]
    assert [p.name for p in (project / "annotations").rglob(".*")] == []  # no temporary file left


def test_data_rootpainter_trains_on_a_saved_annotation(compose, project):
    """The datamodule `data=rootpainter` builds reads the saved file as it is."""
    import hydra

    client, _ = client_for(compose, project)
    assert client.put("/api/images/b/annotation?split=train", content=png(annotation(H, W)), headers=WRITE).is_success
    assert client.put("/api/images/c/annotation?split=val", content=png(annotation(80, 90)), headers=WRITE).is_success
    cfg = compose("train", ["+experiment=unet_demo", "data=rootpainter", f"data.root='{project}'"])
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")
    assert [s.name for s in datamodule.source.split("train")] == ["b"]
    batch = next(iter(datamodule.val_dataloader()))  # the val image with its mask, as validation sees it
    mask = {k: v for k, v in batch.items() if getattr(v, "ndim", 0) >= 2 and v.shape[-2:] == (80, 90)}
    expected = read_mask(project / "annotations" / "val" / "c.png")
    assert any((np.asarray(v).reshape(80, 90) == expected).all() for v in mask.values() if v.numel() == 80 * 90)
    assert set(np.unique(expected)) == {0, 1, 255}


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: b"\xff\xd8\xff\xe0 a jpeg", "not a PNG file"),
        (lambda: png(annotation(H, W))[:20], "not a readable PNG"),
        (lambda: png(annotation(H, W))[:60], "the PNG is damaged"),
        (lambda: png(annotation(H + 1, W)), f"is {W}x{H + 1} pixels but its image is {W}x{H}"),
        (lambda: png(annotation(H, W)[:, :, :3]), "a RGB PNG, not RGBA"),
        (lambda: png(np.zeros((H, W), np.uint8)), "a L PNG, not RGBA"),
        (lambda: png(np.where(annotation(H, W) == 255, 180, 0).astype(np.uint8)), "neither red"),
        (lambda: png(np.full((H, W, 4), (0, 0, 255, 255), np.uint8)), "is (0, 0, 255, 255)"),
    ],
    ids=["jpeg", "header-only", "truncated", "wrong-size", "rgb", "grey", "half-alpha", "blue"],
)
def test_malformed_annotations_are_refused_and_change_nothing(compose, project, make, words):
    client, _ = client_for(compose, project)
    good = png(annotation(H, W))
    assert client.put("/api/images/b/annotation", content=good, headers=WRITE).is_success
    response = client.put("/api/images/b/annotation?split=val", content=make(), headers=WRITE)
    assert response.status_code == 422, response.text
    assert words in response.json()["error"]
    assert (project / "annotations" / "train" / "b.png").read_bytes() == good
    assert not (project / "annotations" / "val" / "b.png").exists()


def test_oversized_uploads_are_refused(compose, project):
    client, _ = client_for(compose, project, "max_upload_mb=0.001")  # 1048 bytes
    big = png(np.random.default_rng(0).integers(0, 2, (H, W, 4), dtype=np.uint8) * 255)
    assert len(big) > 1048
    response = client.put("/api/images/b/annotation", content=big, headers=WRITE)
    assert response.status_code == 413 and "the limit is 1048 bytes" in response.json()["error"]

    def chunks():  # no Content-Length: refused while streaming
        for start in range(0, len(big), 256):
            yield big[start : start + 256]

    response = client.put("/api/images/b/annotation", content=chunks(), headers=WRITE)
    assert response.status_code == 413 and "exceeds the limit" in response.json()["error"]
    assert not (project / "annotations" / "train" / "b.png").exists()
    assert client.put("/api/images/b/annotation?split=nope", content=b"x", headers=WRITE).status_code in (400, 422)
    assert "split must be one of" in client.put("/api/images/b/annotation?split=x", content=b"", headers=WRITE).text
