"""The RootSAM grid's filter is sam2's automatic mask generator's: the same masks kept, by sam2's own functions
(`sam2.utils.amg`, which needs no torchvision) on the same logits, with sam2's default thresholds."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from micro_rootsam import micro_config, micro_module

from rootseg.inference.rootsam import STABILITY_OFFSET, RootSAMInference, amg_filter, stability_scores
from rootseg.inference.settings import InferenceSettings

pytestmark = pytest.mark.usefixtures("one_thread")
N_CLICKS = 30


def sam2_amg():
    """`sam2.utils.amg` (importing sam2 initialises Hydra's global state: the one_thread fixture clears it)."""
    import sam2.utils.amg as amg

    return amg


def amg_defaults() -> dict[str, float]:
    """The keyword defaults of `SAM2AutomaticMaskGenerator.__init__`, read from its source (importing it needs
    torchvision, which rootseg does not install)."""
    path = Path(importlib.util.find_spec("sam2").origin).parent / "automatic_mask_generator.py"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            names = [a.arg for a in node.args.args][-len(node.args.defaults) :]
            return {n: d.value for n, d in zip(names, node.args.defaults) if isinstance(d, ast.Constant)}
    raise AssertionError(f"no __init__ in {path}")


def test_defaults_are_sam2s(tmp_path):
    defaults = amg_defaults()
    cfg = micro_config(tmp_path, tmp_path / "run")
    assert cfg.model.min_predicted_iou == defaults["pred_iou_thresh"] == 0.8
    assert cfg.model.min_stability == defaults["stability_score_thresh"]
    assert defaults["stability_score_offset"] == STABILITY_OFFSET and defaults["mask_threshold"] == 0.0
    assert defaults["multimask_output"] is True and cfg.model.multimask_output is True


def test_stability_score_equals_sam2s_on_the_same_logits():
    logits = torch.randn(64, 40, 40) * 3
    logits[5] = -5.0  # empty at -1: sam2 gives NaN, rootseg 0; no threshold keeps either
    ours, theirs = stability_scores(logits), sam2_amg().calculate_stability_score(logits, 0.0, STABILITY_OFFSET)
    finite = torch.isfinite(theirs)
    assert finite.sum() == 63 and ours[5] == 0
    torch.testing.assert_close(ours[finite], theirs[finite].float(), rtol=0, atol=0)  # counts: exact


def test_thresholds_compare_as_sam2s_at_equality():
    """A mask whose predicted IoU equals the threshold is dropped (>), one whose stability equals it is kept
    (>=), as in sam2. 10 x 10 logits (upscaled to 10: unchanged) of stability 95/100, 90/100 and 1."""
    masks = torch.full((3, 10, 10), 5.0)
    masks[0, 0, :5] = 0.0  # above -1, not above +1
    masks[1, 0, :10] = 0.0
    iou = torch.tensor([0.9, 0.9, 0.8])
    at_095 = float(stability_scores(masks[:1])[0])
    for min_iou, min_stability, n in ((0.8, 0.0, 2), (0.0, at_095, 2), (0.8, at_095, 1)):
        expected = masks[sam2_kept(masks, iou, min_iou, min_stability)]
        assert len(expected) == n
        torch.testing.assert_close(amg_filter(masks, iou, 10, min_iou, min_stability), expected, rtol=0, atol=0)


@pytest.fixture(scope="module")
def decoded(tmp_path_factory):
    """A micro RootSAM whose mask logits are spread out (random weights give logits near 0), a tile, grid
    clicks and the decoder's outputs: at the tile's size (what sam2's predictor returns to its mask generator)
    and at the decoder's own 1/4 resolution."""
    root = tmp_path_factory.mktemp("amg")
    module = micro_module(micro_config(root, root / "run")).eval()
    with torch.no_grad():
        for mlp in module.net.sam.sam_mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(40.0)
    tile = np.random.default_rng(5).integers(0, 255, (module.tile, module.tile, 3), dtype=np.uint8)
    clicks = np.random.default_rng(6).uniform(0, module.tile, (N_CLICKS, 2)).astype(np.float32)
    coords, labels = torch.from_numpy(clicks)[None, :, None, :], torch.ones(1, N_CLICKS, 1, dtype=torch.int64)
    with torch.no_grad():
        embeddings = module.embeddings(torch.from_numpy(np.ascontiguousarray(tile.transpose(2, 0, 1)))[None])
        full, iou = module.net.decode(embeddings, coords, labels, True)
        low, _ = module.net.decode(embeddings, coords, labels, True, output_size=0)
    return module, tile, clicks, full[0].flatten(0, 1), low[0].flatten(0, 1), iou[0].flatten()


def between(values: torch.Tensor, q: float) -> float:
    """A threshold halfway between two neighbouring distinct values near quantile `q`, so that float32
    differences between two ways of computing the same scores cannot flip a decision."""
    ordered = torch.unique(values.float())
    i = min(max(int(q * len(ordered)), 1), len(ordered) - 1)
    return float(ordered[i - 1] + ordered[i]) / 2


def sam2_kept(full: torch.Tensor, iou: torch.Tensor, min_iou: float, min_stability: float) -> torch.Tensor:
    """`SAM2AutomaticMaskGenerator._process_batch`'s filter (without m2m), by sam2's MaskData and
    calculate_stability_score: which of the masks survive."""
    amg = sam2_amg()
    data = amg.MaskData(masks=full, iou_preds=iou, index=torch.arange(len(iou)))
    if min_iou > 0.0:
        data.filter(data["iou_preds"] > min_iou)
    data["stability_score"] = amg.calculate_stability_score(data["masks"], 0.0, STABILITY_OFFSET)
    if min_stability > 0.0:
        data.filter(data["stability_score"] >= min_stability)
    return data["index"]


@pytest.mark.parametrize(("iou_q", "stability_q"), [(0.5, None), (None, 0.5), (0.4, 0.4), (None, None)])
def test_the_grid_keeps_the_masks_sam2_keeps(decoded, iou_q, stability_q):
    """Every mask of every click, not the best one per click: the same set as sam2's filter, and the tile the
    grid merges is their maximum."""
    module, tile, clicks, full, low, iou = decoded
    stability = sam2_amg().calculate_stability_score(full, 0.0, STABILITY_OFFSET)
    min_iou = 0.0 if iou_q is None else between(iou, iou_q)
    min_stability = 0.0 if stability_q is None else between(stability[torch.isfinite(stability)], stability_q)
    kept = sam2_kept(full, iou, min_iou, min_stability)
    assert 0 < len(kept) <= len(iou) and (len(kept) == len(iou)) == (iou_q is None and stability_q is None)
    per_click = torch.bincount(kept // 3, minlength=N_CLICKS)
    assert iou_q is None and stability_q is None or int(per_click.max()) >= 2  # a click keeps more than its best

    ours = amg_filter(low.float(), iou, module.tile, min_iou, min_stability)
    assert ours.shape == (len(kept), module.tile, module.tile)
    # float32 logits of two decoder paths differ by a few ulp of the largest logit; sigmoid's slope is <= 1/4
    atol = 0.25 * 64 * torch.finfo(torch.float32).eps * float(full.abs().max())
    torch.testing.assert_close(ours.amax(0).sigmoid(), full[kept].amax(0).sigmoid(), rtol=0, atol=atol)
    settings = InferenceSettings(batch_size=8, min_predicted_iou=min_iou, min_stability=min_stability)
    inference = RootSAMInference(module, settings, torch.device("cpu"))  # chunks of 8 clicks
    with torch.no_grad():
        merged = inference._predict_tile(tile, clicks, None, torch.device("cpu"))
    np.testing.assert_allclose(merged, full[kept].amax(0).sigmoid().numpy(), rtol=0, atol=atol)


def test_clicks_a_person_gave_keep_their_best_mask_unfiltered(decoded):
    module, tile, clicks, full, _, iou = decoded
    inference = RootSAMInference(module, InferenceSettings(batch_size=8), torch.device("cpu"))
    with torch.no_grad():
        given = inference._predict_tile(tile, clicks, None, torch.device("cpu"), grid=False)
    best = full.view(N_CLICKS, 3, *full.shape[-2:])[torch.arange(N_CLICKS), iou.view(N_CLICKS, 3).argmax(1)]
    atol = 0.25 * 64 * torch.finfo(torch.float32).eps * float(full.abs().max())
    np.testing.assert_allclose(given, best.amax(0).sigmoid().numpy(), rtol=0, atol=atol)
