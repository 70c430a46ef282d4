"""RootSAM on CPU with random weights: builder, checkpoints, freezing, decoding, loss, embedding cache.

No SAM checkpoint can be downloaded here. Most tests use `SAM2_MICRO_OVERRIDES` (sam2.1_hiera_t shrunk to
~6.6 M parameters, image_size 128: every code path, ~20 ms per image); the overfitting test uses the real
tiny config at image_size 256 (SAM's own is 1024; the encoder then costs 0.3 s instead of 3.6 s).
"""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO as ROOT
from conftest import child_env
from hydra.core.global_hydra import GlobalHydra

from rootseg.models.embedding_cache import EmbeddingCache, encoder_fingerprint, split_embeddings, stack_embeddings
from rootseg.models.freezing import (
    assert_frozen_unchanged,
    freeze_by_patterns,
    freeze_rootsam,
    snapshot_frozen,
    trainable_parameters,
    trainable_state_dict,
)
from rootseg.models.rootsam import RootSAM, resize_to, sam_normalize
from rootseg.models.sam2_builder import (
    SAM2_MICRO_OVERRIDES,
    CheckpointError,
    build_sam2_model,
    guess_sam2_config,
    load_sam2_checkpoint,
)
from rootseg.prompts.sampling import sample_points
from rootseg.tasks.losses import SAMLoss

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def micro_sam() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_sam2_model("sam2.1_hiera_t", SAM2_MICRO_OVERRIDES)


@pytest.fixture
def micro(micro_sam) -> RootSAM:
    """A fresh RootSAM around a copy of the micro model (tests may train or freeze it)."""
    return RootSAM(copy.deepcopy(micro_sam), config_name="sam2.1_hiera_t")


def synthetic_tile(size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An RGB soil-like tile with two bright diagonal 'roots' and its binary mask."""
    from skimage.draw import line

    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), np.uint8)
    for r0, c0, r1, c1 in [(2, 5, size - 4, size // 3), (size // 6, size - 8, size - 10, size * 2 // 3)]:
        rows, cols = line(r0, c0, r1, c1)
        for d in range(-2, 3):
            mask[rows, np.clip(cols + d, 0, size - 1)] = 1
    image = rng.integers(50, 120, (size, size, 3)).astype(np.uint8)
    image[mask > 0] = (220, 200, 170)
    return image, mask


def tile_tensor(image: np.ndarray) -> torch.Tensor:
    return sam_normalize(torch.from_numpy(image).permute(2, 0, 1)[None])


def prompts(mask: np.ndarray, k: int = 2, seed: int = 0):
    coords, labels, objects = sample_points(mask, k, 4, rng=np.random.default_rng(seed))
    return torch.from_numpy(coords)[None], torch.from_numpy(labels)[None], torch.from_numpy(objects)


# ---------------------------------------------------------------- builder and Hydra


def test_builder_applies_postprocessing_and_overrides(micro_sam):
    decoder = micro_sam.sam_mask_decoder
    assert decoder.dynamic_multimask_via_stability is True
    assert decoder.dynamic_multimask_stability_thresh == pytest.approx(0.98)
    assert micro_sam.image_size == 128
    assert micro_sam.image_encoder.trunk.pos_embed.shape[1] == 16
    with pytest.raises(FileNotFoundError, match="sam2.1_hiera_l"):
        build_sam2_model("sam2.1_hiera_xl")


def test_builder_after_global_hydra_clear():
    GlobalHydra.instance().clear()
    model = build_sam2_model("sam2.1_hiera_t", SAM2_MICRO_OVERRIDES)
    assert type(model).__name__ == "SAM2Base"
    assert not GlobalHydra.instance().is_initialized()


def test_builder_inside_initialised_hydra(tmp_path):
    from hydra import compose, initialize_config_dir

    (tmp_path / "app.yaml").write_text("who: rootseg\n")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
        cfg = compose("app")
        model = build_sam2_model("sam2.1_hiera_t", {**SAM2_MICRO_OVERRIDES, "image_size": 64})
        assert model.image_size == 64 and cfg.who == "rootseg"
        assert compose("app").who == "rootseg"  # the app's own config search path is untouched


def test_builder_inside_hydra_main_app_and_no_module_level_sam2_import(tmp_path):
    """The real trap: sam2's __init__ initialises Hydra's global state. rootseg must not import sam2 at module
    level, a model built before the app must not leave Hydra initialised, and building inside works."""
    (tmp_path / "app.yaml").write_text("size: 64\n")
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            import hydra
            import importlib, pkgutil, rootseg
            for found in pkgutil.walk_packages(rootseg.__path__, "rootseg."):
                importlib.import_module(found.name)
                assert "sam2" not in sys.modules, f"{found.name} imports sam2 at module level"
            from rootseg.models import rootsam, sam2_builder

            from hydra.core.global_hydra import GlobalHydra
            sam2_builder.build_sam2_model("sam2.1_hiera_t", sam2_builder.SAM2_MICRO_OVERRIDES)
            assert "sam2" in sys.modules
            assert not GlobalHydra.instance().is_initialized(), "importing sam2 left Hydra initialised"

            @hydra.main(config_path=".", config_name="app", version_base="1.3")
            def main(cfg):
                overrides = {**sam2_builder.SAM2_MICRO_OVERRIDES, "image_size": cfg.size}
                model = rootsam.RootSAM(config_name="sam2.1_hiera_t", overrides=overrides)
                print("BUILT", model.image_size)

            main()
            """
        )
    )
    env = child_env(OMP_NUM_THREADS="1", HYDRA_FULL_ERROR="1")
    result = subprocess.run(
        [sys.executable, str(script), f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "BUILT 64" in result.stdout


# ---------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def checkpoint(micro_sam, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "micro.pt"
    torch.save({"model": micro_sam.state_dict()}, path)
    return path


def test_checkpoint_round_trip(micro_sam, checkpoint):
    torch.manual_seed(123)
    fresh = build_sam2_model("sam2.1_hiera_t", SAM2_MICRO_OVERRIDES)
    image, mask = synthetic_tile()
    coords, labels, _ = prompts(mask)
    a = RootSAM(copy.deepcopy(micro_sam)).eval()
    b = RootSAM(fresh).eval()
    with torch.no_grad():
        before = b(tile_tensor(image), coords, labels)[0]
        load_sam2_checkpoint(fresh, checkpoint)
        expected, after = a(tile_tensor(image), coords, labels)[0], b(tile_tensor(image), coords, labels)[0]
    assert not torch.equal(before, expected)
    assert torch.equal(after, expected)
    # the same through the builder and the wrapper
    built = RootSAM(config_name="sam2.1_hiera_t", overrides=SAM2_MICRO_OVERRIDES, ckpt_path=checkpoint).eval()
    with torch.no_grad():
        assert torch.equal(built(tile_tensor(image), coords, labels)[0], expected)


def test_checkpoint_errors(micro_sam, checkpoint, tmp_path):
    state = torch.load(checkpoint, weights_only=True)["model"]
    model = copy.deepcopy(micro_sam)

    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_sam2_checkpoint(model, tmp_path / "absent.pt")

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"<html>404 not found</html>")
    with pytest.raises(CheckpointError, match=r"garbage\.pt: not a PyTorch checkpoint"):
        load_sam2_checkpoint(model, garbage)

    not_state = tmp_path / "not_state.pt"
    torch.save({"epoch": 3}, not_state)
    with pytest.raises(CheckpointError, match="holds no SAM 2 state dict"):
        load_sam2_checkpoint(model, not_state)

    missing = dict(state)
    del missing["sam_mask_decoder.iou_token.weight"]
    path = tmp_path / "missing.pt"
    torch.save({"model": missing}, path)
    with pytest.raises(CheckpointError, match=r"missing\.pt.*1 missing keys: sam_mask_decoder\.iou_token\.weight"):
        load_sam2_checkpoint(model, path)

    path = tmp_path / "unexpected.pt"
    torch.save({"model": {**state, "extra_head.weight": torch.zeros(2)}}, path)
    with pytest.raises(CheckpointError, match=r"1 unexpected keys: extra_head\.weight"):
        load_sam2_checkpoint(model, path)

    path = tmp_path / "shape.pt"
    torch.save({"model": {**state, "sam_mask_decoder.iou_token.weight": torch.zeros(1, 32)}}, path)
    with pytest.raises(CheckpointError, match=r"shape mismatches: sam_mask_decoder\.iou_token\.weight \(1, 32\)"):
        load_sam2_checkpoint(model, path)

    # a checkpoint of another architecture: the message says which config to choose
    large = {"image_encoder.trunk.patch_embed.proj.weight": torch.zeros(144, 3, 7, 7)}
    large.update({f"image_encoder.trunk.blocks.{i}.norm1.weight": torch.zeros(1) for i in range(48)})
    assert guess_sam2_config(large) == "sam2.1_hiera_l"
    path = tmp_path / "large.pt"
    torch.save({"model": large}, path)
    with pytest.raises(CheckpointError, match=r"sam2\.1_hiera_l checkpoint.*set model/net=sam2\.1_hiera_l"):
        load_sam2_checkpoint(model, path)
    assert torch.equal(model.sam_mask_decoder.iou_token.weight, micro_sam.sam_mask_decoder.iou_token.weight)


# ---------------------------------------------------------------- wrapper


def test_sam_normalize_and_resize():
    images = torch.full((1, 3, 8, 8), 255, dtype=torch.uint8)
    out = sam_normalize(images)
    assert out.dtype == torch.float32
    expected = (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    assert torch.allclose(out[0, :, 0, 0], expected)
    assert torch.allclose(sam_normalize(images.float()), out)
    with pytest.raises(ValueError, match="channel-first"):
        sam_normalize(torch.zeros(1, 8, 8, 3))
    assert resize_to(out, 16).shape == (1, 3, 16, 16)
    assert resize_to(out, 8) is out
    assert resize_to(out[0], (4, 6)).shape == (3, 4, 6)


def test_encode_decode_shapes_and_batching(micro):
    micro.eval()
    image, mask = synthetic_tile(64)
    image2, mask2 = synthetic_tile(64, seed=1)
    tiles = torch.cat([tile_tensor(image), tile_tensor(image2)])
    with torch.no_grad():
        emb = micro.encode(tiles)
        assert emb["image_embed"].shape == (2, 256, 8, 8)
        assert [tuple(f.shape) for f in emb["high_res_feats"]] == [(2, 256, 32, 32), (2, 256, 16, 16)]
        assert emb["input_size"] == 64
        coords = torch.rand(2, 3, 2, 2) * 64
        labels = torch.tensor([1, 0]).repeat(2, 3, 1)
        logits, iou = micro.decode(emb, coords, labels)
        assert logits.shape == (2, 3, 3, 64, 64) and iou.shape == (2, 3, 3)
        # all objects of all tiles in one call == each object on its own
        for b in range(2):
            single = {
                "image_embed": emb["image_embed"][b : b + 1],
                "high_res_feats": [f[b : b + 1] for f in emb["high_res_feats"]],
                "input_size": 64,
            }
            for n in range(3):
                one, one_iou = micro.decode(single, coords[b : b + 1, n : n + 1], labels[b : b + 1, n : n + 1])
                assert torch.allclose(one[0, 0], logits[b, n], atol=1e-4)
                assert torch.allclose(one_iou[0, 0], iou[b, n], atol=1e-5)
        single_mask, _ = micro.decode(emb, coords, labels, multimask_output=False)
        assert single_mask.shape == (2, 3, 1, 64, 64)
        native, _ = micro.decode(emb, coords, labels, output_size=0)
        assert native.shape[-1] == 128 // 4
        empty, empty_iou = micro.decode(emb, coords[:, :0], labels[:, :0])
        assert empty.shape == (2, 0, 3, 64, 64) and empty_iou.shape == (2, 0, 3)
        with pytest.raises(ValueError, match="point_labels"):
            micro.decode(emb, coords, labels[..., :1])


def test_projection_in_encode_matches_predictor_path(micro):
    """project_high_res_in_decode=False reproduces SAM2ImagePredictor (conv_s0/s1 in the image stage)."""
    micro.eval()
    image, mask = synthetic_tile(64)
    coords, labels, _ = prompts(mask)
    other = RootSAM(micro.sam, project_high_res_in_decode=False).eval()
    with torch.no_grad():
        emb = other.encode(tile_tensor(image))
        assert emb["high_res_feats"][0].shape[1] == 32  # projected to 256 / 8 channels
        assert torch.allclose(other.decode(emb, coords, labels)[0], micro(tile_tensor(image), coords, labels)[0])
    assert other.encoder_fingerprint() != micro.encoder_fingerprint()


def test_decode_matches_sam2_own_sam_heads(micro):
    """Against sam2's own training/video path `SAM2Base._forward_sam_heads` (one object per image).

    sam2 there also replaces the masks of objects whose object-score logit is <= 0 by -1024 (the image
    predictor, and RootSAM, do not), so masks are compared where sam2 kept them.
    """
    micro.eval()
    size = micro.image_size
    image, mask = synthetic_tile(size)
    coords, labels, _ = prompts(mask, k=3)
    sam = micro.sam
    with torch.no_grad():
        emb = micro.encode(tile_tensor(image))
        ours, our_iou = micro.decode(emb, coords, labels, output_size=0)
        n_obj = coords.shape[1]
        high_res = [
            sam.sam_mask_decoder.conv_s0(emb["high_res_feats"][0]).expand(n_obj, -1, -1, -1),
            sam.sam_mask_decoder.conv_s1(emb["high_res_feats"][1]).expand(n_obj, -1, -1, -1),
        ]
        low_res, _, ious, *_ = sam._forward_sam_heads(
            backbone_features=emb["image_embed"].expand(n_obj, -1, -1, -1),
            point_inputs={"point_coords": coords[0], "point_labels": labels[0]},
            high_res_features=high_res,
            multimask_output=True,
        )
    assert torch.allclose(our_iou[0], ious, atol=1e-5)
    kept = low_res > -1000
    assert kept.any()
    assert torch.allclose(ours[0][kept], low_res[kept], atol=1e-4)


# ---------------------------------------------------------------- freezing


def test_freezing_keeps_encoder_fixed_and_optimizer_trainable_only(micro):
    summary = freeze_rootsam(micro)
    names = set(summary.trainable_names)
    assert names and all(n.startswith(("sam.sam_prompt_encoder.", "sam.sam_mask_decoder.")) for n in names)
    assert "sam.sam_mask_decoder.conv_s0.weight" in names
    assert not any(p.requires_grad for p in micro.sam.image_encoder.parameters())
    assert not micro.sam.memory_attention.layers[0].self_attn.q_proj.weight.requires_grad
    assert not micro.sam.no_mem_embed.requires_grad
    micro.train()
    assert not micro.sam.image_encoder.training and micro.sam.sam_mask_decoder.training

    optimizer = torch.optim.AdamW(trainable_parameters(micro), lr=1e-3)
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert held == {id(p) for n, p in micro.named_parameters() if n in names}
    snapshot = snapshot_frozen(micro)
    decoder_before = micro.sam.sam_mask_decoder.iou_token.weight.detach().clone()
    image, mask = synthetic_tile(64)
    coords, labels, objects = prompts(mask)
    loss_fn = SAMLoss()
    for _ in range(3):  # full forward each step: gradients could reach the encoder if it were not frozen
        logits, iou = micro(tile_tensor(image), coords, labels)
        loss = loss_fn(logits[0], iou[0], objects.float())["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert_frozen_unchanged(micro, snapshot)
    assert not torch.equal(micro.sam.sam_mask_decoder.iou_token.weight, decoder_before)
    assert set(trainable_state_dict(micro)) == names

    with torch.no_grad():
        micro.sam.image_encoder.trunk.pos_embed.add_(1.0)
    with pytest.raises(AssertionError, match="1 changed .*pos_embed"):
        assert_frozen_unchanged(micro, snapshot)


def test_freeze_by_patterns_rules(micro):
    summary = freeze_by_patterns(micro, ["re:sam\\.image_encoder\\..*"], ["sam.image_encoder.neck.*", "sam.sam_*"])
    assert not any(n.startswith("sam.image_encoder.") for n in summary.trainable_names)  # frozen wins
    assert any(n.startswith("sam.sam_prompt_encoder.") for n in summary.trainable_names)
    assert not micro.sam.memory_encoder.out_proj.weight.requires_grad  # matched by no trainable pattern
    assert "trainable" in str(summary)
    with pytest.raises(ValueError, match="matches no parameter"):
        freeze_by_patterns(micro, ["image_encoder.*"])  # a forgotten "sam." prefix is caught


# ---------------------------------------------------------------- loss


def test_sam_loss_backpropagates_only_best_mask():
    target = torch.zeros(2, 16, 16)
    target[:, 4:12, 4:12] = 1
    good = (target * 20 - 10)[:, None]
    logits = torch.cat([torch.randn(2, 1, 16, 16), good, torch.randn(2, 1, 16, 16)], dim=1).requires_grad_()
    iou_pred = torch.full((2, 3), 0.5, requires_grad=True)
    out = SAMLoss()(logits, iou_pred, target)
    assert set(out) == {"loss", "focal", "dice", "iou"}
    assert out["dice"] < 0.01 and out["focal"] < 1e-4
    out["loss"].backward()
    assert logits.grad[:, 0].abs().sum() == 0 and logits.grad[:, 2].abs().sum() == 0
    assert logits.grad[:, 1].abs().sum() > 0
    assert (iou_pred.grad != 0).all()  # supervise_all_iou (sam2.1 fine-tuning default)
    only_best = SAMLoss(supervise_all_iou=False)(logits, iou_pred, target)
    assert only_best["iou"].item() == pytest.approx(0.5, abs=1e-6)  # |0.5 - 1.0| for the perfect mask


def test_sam_loss_ignore_index_and_valid():
    target = torch.zeros(2, 8, 8)
    target[:, :4] = 1
    logits = torch.randn(2, 1, 8, 8)
    iou = torch.rand(2, 1)
    loss = SAMLoss()
    base = loss(logits, iou, target)
    # wrong predictions on unlabelled pixels cost nothing
    unlabelled = target.clone()
    unlabelled[:, 6:] = 255
    flipped = logits.clone()
    flipped[:, :, 6:] = 50.0
    assert loss(flipped, iou, unlabelled)["loss"].item() == pytest.approx(loss(logits, iou, unlabelled)["loss"].item())
    # an invalid (padding) object does not count
    garbage = torch.cat([logits[:1], torch.full((1, 1, 8, 8), 30.0)])
    masked = loss(garbage, iou, target, valid=torch.tensor([True, False]))
    assert masked["loss"].item() == pytest.approx(loss(logits[:1], iou[:1], target[:1])["loss"].item())
    assert base["loss"].ndim == 0
    with pytest.raises(ValueError):
        loss(logits, iou, target[:, :4])


# ---------------------------------------------------------------- training and cache


def test_tiny_model_overfits_one_tile():
    """sam2.1_hiera_t at image_size 256, encoder frozen, embeddings computed once: loss falls > 50 %."""
    torch.manual_seed(0)
    model = RootSAM(config_name="sam2.1_hiera_t", overrides={"image_size": 256})
    freeze_rootsam(model)
    model.train()
    image, mask = synthetic_tile(128)
    coords, labels, objects = prompts(mask)
    with torch.no_grad():
        embeddings = model.encode(tile_tensor(image))
    optimizer = torch.optim.AdamW(trainable_parameters(model), lr=1e-3)
    loss_fn = SAMLoss()
    history = []
    for _ in range(30):
        logits, iou = model.decode(embeddings, coords, labels)
        out = loss_fn(logits[0], iou[0], objects.float())
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        history.append({k: v.item() for k, v in out.items()})
    assert history[-1]["loss"] < 0.5 * history[0]["loss"], [h["loss"] for h in history]
    assert history[-1]["dice"] < history[0]["dice"]


def test_embedding_cache_gives_the_same_loss(micro, tmp_path):
    micro.eval()
    image, mask = synthetic_tile(64)
    coords, labels, objects = prompts(mask)
    loss_fn = SAMLoss()
    with torch.no_grad():
        embeddings = micro.encode(tile_tensor(image))
    cache = EmbeddingCache(tmp_path, micro.encoder_fingerprint())
    key = cache.key(image, resize=64, tile=(0, 0, 64))
    assert cache.get(key) is None and key not in cache
    cache.put(key, embeddings)
    assert key in cache
    cached = cache.get(key)
    assert cached["input_size"] == 64 and len(cached["high_res_feats"]) == 2
    with torch.no_grad():
        direct = loss_fn(*(t[0] for t in micro.decode(embeddings, coords, labels)), objects.float())
        again = loss_fn(*(t[0] for t in micro.decode(cached, coords, labels)), objects.float())
    for name in direct:
        assert again[name].item() == pytest.approx(direct[name].item(), rel=1e-2, abs=1e-3), name
    assert cache.get(key, dtype=None)["image_embed"].dtype == torch.float16

    # the key follows pixels, preprocessing and encoder weights
    assert cache.key(image, resize=64, tile=(0, 0, 64)) == key
    assert cache.key(image, resize=128, tile=(0, 0, 64)) != key
    assert cache.key(image[::-1].copy(), resize=64, tile=(0, 0, 64)) != key
    fingerprint = micro.encoder_fingerprint()
    with torch.no_grad():
        micro.sam.image_encoder.neck.convs[0].conv.bias.add_(1e-3)
    assert micro.encoder_fingerprint() != fingerprint
    other = EmbeddingCache(tmp_path, micro.encoder_fingerprint())
    assert other.get(key) is None and other.key(image, resize=64, tile=(0, 0, 64)) != key
    # an entry without its meta.json (a crash mid-put) does not exist
    (cache.path(key) / "meta.json").unlink()
    assert cache.get(key) is None


def test_embedding_cache_entries_stay_memory_mapped(micro, tmp_path):
    """`get` returns views of the files' memory maps (read when used), copy-on-write, not copies."""
    image, _ = synthetic_tile(64)
    with torch.no_grad():
        embeddings = micro.encode(tile_tensor(image))
    cache = EmbeddingCache(tmp_path, micro.encoder_fingerprint())
    key = cache.key(image, resize=64, tile=(0, 0, 64))
    cache.put(key, embeddings)
    file = cache.path(key) / "image_embed.npy"
    stored = np.load(file)  # an independent, whole read of what was written
    lazy = cache.get(key, dtype=None)
    converted = cache.get(key)  # float32: converted straight from the map
    np.testing.assert_array_equal(converted["image_embed"].numpy(), stored.astype(np.float32))
    assert lazy["image_embed"].dtype == torch.float16

    on_disk = np.load(file, mmap_mode="r+")
    on_disk[0, 0, 0, 0] = 7.0  # changed on disk after get: a mapped tensor sees it, a copy would not
    on_disk.flush()
    del on_disk
    assert lazy["image_embed"][0, 0, 0, 0].item() == 7.0
    assert converted["image_embed"][0, 0, 0, 0].item() == float(stored[0, 0, 0, 0])

    lazy["image_embed"][0, 0, 0, 1] = -5.0  # writing to the tensor never changes the cache file
    assert np.load(file)[0, 0, 0, 1] == stored[0, 0, 0, 1]
    np.testing.assert_array_equal(lazy["high_res_feats"][1].numpy(), np.load(cache.path(key) / "high_res_feats.1.npy"))


def test_split_and_stack_embeddings_and_fingerprint(micro):
    with torch.no_grad():
        emb = micro.encode(torch.randn(3, 3, 32, 32))
    parts = split_embeddings(emb)
    assert len(parts) == 3 and parts[1]["image_embed"].shape[0] == 1 and parts[2]["input_size"] == 32
    back = stack_embeddings(parts)
    assert torch.equal(back["image_embed"], emb["image_embed"])
    assert all(torch.equal(a, b) for a, b in zip(back["high_res_feats"], emb["high_res_feats"]))
    parts[0]["input_size"] = 64
    with pytest.raises(ValueError, match="input_size"):
        stack_embeddings(parts)
    lin = torch.nn.Linear(2, 2)
    assert encoder_fingerprint(lin) == encoder_fingerprint(lin.state_dict())
    assert encoder_fingerprint(lin) != encoder_fingerprint(lin, extra="image_size=512")


@pytest.mark.slow
def test_tiny_at_sam_resolution_round_trip_and_autocast(tmp_path):
    """sam2.1_hiera_t at its own image_size 1024: a 512 px tile (RootSAM stage 1) resized up, a 156 MB
    checkpoint written and reloaded, decoding under bf16 autocast. ~15 s on one CPU thread."""
    torch.manual_seed(0)
    model = RootSAM(config_name="sam2.1_hiera_t").eval()
    assert model.image_size == 1024 and model.feature_sizes[-1] == (64, 64)
    image, mask = synthetic_tile(512)
    coords, labels, _ = prompts(mask)
    with torch.no_grad():
        emb = model.encode(tile_tensor(image))
        assert emb["image_embed"].shape == (1, 256, 64, 64)
        logits, iou = model.decode(emb, coords, labels)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits_bf16, _ = model.decode(emb, coords, labels)
    assert logits.shape == (1, coords.shape[1], 3, 512, 512) and logits_bf16.dtype == torch.float32
    assert torch.isfinite(logits_bf16).all()
    path = tmp_path / "tiny.pt"
    torch.save({"model": model.sam.state_dict()}, path)
    torch.manual_seed(1)
    fresh = RootSAM(config_name="sam2.1_hiera_t", ckpt_path=path).eval()
    path.unlink()
    with torch.no_grad():
        assert torch.equal(fresh.decode(fresh.encode(tile_tensor(image)), coords, labels)[0], logits)
