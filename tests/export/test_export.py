"""rootseg.export: TorchScript and ONNX models reproduce PyTorch at any batch size, or nothing is written."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import random_checkpoint

from rootseg.export.rootsam import ROOTSAM_INPUTS
from rootseg.export.run import export
from rootseg.export.unet import ExportError, _run_torchscript, check_written_opset
from rootseg.tasks.checkpoints import load_module
from rootseg.tiling.window import sliding_window_probs

TILE_IN, TILE_OUT = 92, 52  # a two-level U-Net with valid convs: 92 -> 52


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    """A checkpoint of a very small U-Net, written through Lightning like rootseg.train's."""
    overrides = [
        "+experiment=unet_demo",
        "model.net.base_channels=4",
        "model.net.depth=2",
        "model.net.groups=2",
        f"data.tile_in={TILE_IN}",
        f"data.tile_out={TILE_OUT}",
    ]
    return random_checkpoint(overrides, tmp_path_factory.mktemp("tiny") / "tiny.ckpt", seed=1)


def _cfg(compose, ckpt: Path, *overrides: str):
    return compose("export", [f"ckpt_path={ckpt}", *overrides])


def _reference(ckpt: Path, tiles: torch.Tensor) -> np.ndarray:
    module = load_module(ckpt)
    with torch.no_grad():
        return module.predict_tiles(tiles).numpy()


def test_torchscript_matches_pytorch_at_any_batch(compose, tiny_ckpt, tmp_path):
    out = tmp_path / "tiny.pt"
    summary = export(_cfg(compose, tiny_ckpt, "format=torchscript", f"output={out}"))
    assert summary["max_abs_diff"] <= 1e-4 and summary["tile_out"] == TILE_OUT
    assert 0 <= summary["max_abs_diff_whole_image"] <= 1e-4  # the whole check image through the one predictor
    extra = {"rootseg.json": ""}
    loaded = torch.jit.load(str(out), _extra_files=extra)
    assert json.loads(extra["rootseg.json"])["tile_in"] == TILE_IN
    for batch in (1, 3):
        tiles = torch.rand(batch, 3, TILE_IN, TILE_IN) * 255
        with torch.no_grad():
            got = loaded(tiles).numpy()
        assert got.shape == (batch, TILE_OUT, TILE_OUT)
        np.testing.assert_allclose(got, _reference(tiny_ckpt, tiles), atol=1e-5)


def test_onnx_matches_pytorch_at_any_batch_and_works_as_a_tile_predictor(compose, tiny_ckpt, tmp_path):
    import onnx
    import onnxruntime as ort

    out = tmp_path / "tiny.onnx"
    summary = export(_cfg(compose, tiny_ckpt, "format=onnx", f"output={out}"))
    assert summary["max_abs_diff"] <= 1e-3 and set(summary["max_abs_diff_by_batch"]) == {1, 3}
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert [o.version for o in onnx.load(str(out)).opset_import if o.domain in ("", "ai.onnx")] == [21]  # asked
    assert meta["rootseg.tile_in"] == str(TILE_IN) and meta["rootseg.tile_out"] == str(TILE_OUT)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] not in (1, 2, 3)  # a symbolic batch dimension
    for batch in (1, 3):
        tiles = torch.rand(batch, 3, TILE_IN, TILE_IN) * 255
        got = session.run(None, {"tiles": tiles.numpy()})[0]
        assert got.shape == (batch, TILE_OUT, TILE_OUT)
        np.testing.assert_allclose(got, _reference(tiny_ckpt, tiles), atol=1e-4)

    # the exported model drops into the sliding window in place of the PyTorch module
    image = (np.random.default_rng(0).random((70, 130, 3)) * 255).astype(np.uint8)
    module = load_module(tiny_ckpt)

    def onnx_tiles(tiles: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {"tiles": tiles.float().numpy()})[0])

    kwargs = {"tile_in": TILE_IN, "tile_out": TILE_OUT, "batch_size": 3}
    np.testing.assert_allclose(
        sliding_window_probs(image, onnx_tiles, **kwargs).numpy(),
        sliding_window_probs(image, module.predict_tiles, **kwargs).numpy(),
        atol=1e-4,
    )


def test_a_mismatch_fails_and_leaves_no_file(compose, tiny_ckpt, tmp_path, monkeypatch):
    real = _run_torchscript
    monkeypatch.setattr("rootseg.export.run._run_torchscript", lambda path, tiles: real(path, tiles) + 0.01)
    out = tmp_path / "bad.pt"
    with pytest.raises(ExportError, match="differs from PyTorch"):
        export(_cfg(compose, tiny_ckpt, "format=torchscript", f"output={out}"))
    assert list(tmp_path.iterdir()) == []


def test_a_file_right_on_the_check_tiles_but_wrong_in_the_sliding_window_is_refused(
    compose, tiny_ckpt, tmp_path, monkeypatch
):
    """Wrong only at the predictor's batch size (4): the tile checks (batches 1 and 3) pass, the whole image fails."""
    real = _run_torchscript
    wrong = lambda path, tiles: real(path, tiles) * (0.9 if len(tiles) not in (1, 3) else 1.0)  # noqa: E731
    monkeypatch.setattr("rootseg.export.run._run_torchscript", wrong)
    with pytest.raises(ExportError, match="whole check image"):
        export(_cfg(compose, tiny_ckpt, "format=torchscript", f"output={tmp_path / 'bad.pt'}"))
    assert list(tmp_path.iterdir()) == []


def test_rootsam_torchscript_and_unknown_formats_are_refused(compose, tiny_ckpt, monkeypatch):
    with pytest.raises(ValueError, match="format must be one of"):
        export(_cfg(compose, tiny_ckpt, "format=tflite"))
    monkeypatch.setattr("rootseg.export.run.load_module", lambda path: SimpleNamespace(kind="rootsam"))
    with pytest.raises(ValueError, match="RootSAM checkpoint.*ONNX only"):
        export(_cfg(compose, tiny_ckpt, "format=torchscript"))


@pytest.mark.parametrize(
    ("opset", "why"),
    [
        (7, "opset=7: .*give an opset >= 18"),
        (17, "opset=17: .*give an opset >= 18"),
        ("abc", "opset must be a whole number"),  # the typed settings layer, before the exporter's own rule
        (True, "opset must be a whole number"),
    ],
)
def test_an_opset_the_exporter_cannot_write_is_refused_before_loading(compose, tiny_ckpt, monkeypatch, opset, why):
    """torch.onnx's exporter writes opset 18 when asked for 7 (issue 26): refused by name before any work."""
    monkeypatch.setattr("rootseg.export.run.load_module", lambda path: pytest.fail("loaded before the check"))
    with pytest.raises(ValueError, match=why):
        export(_cfg(compose, tiny_ckpt, "format=onnx", f"opset={opset}"))


def test_an_output_that_is_the_checkpoint_is_refused_and_the_checkpoint_kept(compose, tiny_ckpt, tmp_path, monkeypatch):
    monkeypatch.setattr("rootseg.export.run.load_module", lambda path: pytest.fail("loaded before the check"))
    before = tiny_ckpt.read_bytes()
    link = tmp_path / "model.onnx"
    link.symlink_to(tiny_ckpt)
    for output in (tiny_ckpt, link, tiny_ckpt.parent / ".." / tiny_ckpt.parent.name / tiny_ckpt.name):
        with pytest.raises(ValueError, match=r"is also an input .*tiny\.ckpt"):
            export(_cfg(compose, tiny_ckpt, "format=onnx", f"output={output}"))
    assert tiny_ckpt.read_bytes() == before


def test_a_file_of_another_opset_than_asked_is_refused():
    import onnx
    from onnx import helper

    graph = helper.make_graph([], "empty", [], [])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    check_written_opset(proto, 18)
    with pytest.raises(ExportError, match="opset=21: the exporter wrote ONNX opset 18 instead"):
        check_written_opset(proto, 21)
    assert onnx.defs.onnx_opset_version() >= 21


# ---------------------------------------------------------------------------------------------- RootSAM
@pytest.mark.parametrize("multimask", [True, False])
def test_rootsam_decoder_onnx_matches_pytorch_with_the_encoder_apart(compose, micro_rootsam_ckpt, tmp_path, multimask):
    import onnx
    import onnxruntime as ort

    from rootseg.models.rootsam import sam_normalize

    out = tmp_path / "decoder.onnx"
    summary = export(_cfg(compose, micro_rootsam_ckpt, f"output={out}", f"+multimask={str(multimask).lower()}"))
    assert summary["max_abs_diff"] <= 1e-3 and set(summary["max_abs_diff_by_clicks"]) == {"1x1", "3x2", "5x3"}
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert [o.version for o in onnx.load(str(out)).opset_import if o.domain in ("", "ai.onnx")] == [21]  # asked
    assert meta["rootseg.tile"] == "128" and meta["rootseg.multimask_output"] == str(multimask)

    # the image encoder is not in the graph: its inputs are the encoder's outputs for one tile
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(ROOTSAM_INPUTS)
    net = load_module(micro_rootsam_ckpt).net.eval()
    assert meta["rootseg.encoder_fingerprint"] == net.encoder_fingerprint()
    pixels = torch.from_numpy(np.random.default_rng(5).integers(0, 256, (1, 3, 128, 128), dtype=np.uint8))
    with torch.no_grad():
        embeddings = net.encode(sam_normalize(pixels))
    feeds = {
        "image_embed": embeddings["image_embed"].numpy(),
        "high_res_feat_s0": embeddings["high_res_feats"][0].numpy(),
        "high_res_feat_s1": embeddings["high_res_feats"][1].numpy(),
    }
    outputs = []
    # object and click counts the export never saw; labels with negative and padding clicks
    for coords, labels in (
        ([[[5.0, 9.0]], [[120.0, 64.0]], [[64.0, 3.0]], [[30.0, 100.0]]], [[1], [1], [1], [1]]),
        ([[[10.0, 20.0], [90.0, 90.0], [0.0, 0.0], [127.0, 1.0]]] * 2, [[1, 0, -1, 1], [1, 1, 0, -1]]),
    ):
        coords_t, labels_t = torch.tensor(coords), torch.tensor(labels)
        with torch.no_grad():
            logits, iou = net.decode(embeddings, coords_t[None], labels_t[None], multimask, output_size=0)
        got = session.run(None, {**feeds, "point_coords": coords_t.numpy(), "point_labels": labels_t.numpy()})
        m = 3 if multimask else 1
        assert got[0].shape == (len(coords), m, 32, 32) and got[1].shape == (len(coords), m)
        np.testing.assert_allclose(got[0], logits[0].numpy(), atol=1e-4)
        np.testing.assert_allclose(got[1], iou[0].numpy(), atol=1e-5)
        outputs.append(got[0])
    assert not np.allclose(outputs[0][0], outputs[0][1], atol=1e-3)  # the clicks change the masks
