import numpy as np
import pytest
import torch

from rootseg.tasks.losses import DiceCELoss


def _numpy_reference(logits: np.ndarray, target: np.ndarray, ce_weight: float = 0.3) -> float:
    """Smith et al.: soft Dice on the softmax root channel pooled over the batch, plus 0.3 CE."""
    valid = target != 255
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    t = np.where(valid, target, 0)
    chosen = np.take_along_axis(p, t[:, None], axis=1)[:, 0]
    ce = -(np.log(chosen) * valid).sum() / valid.sum()
    root = (target == 1) & valid
    if not root.any():
        return ce_weight * ce
    root_prob = p[:, 1] * valid
    dice = 1 - 2 * (root_prob * root).sum() / (root_prob.sum() + root.sum())
    return dice + ce_weight * ce


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dice_ce_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(3, 2, 9, 7))
    target = (rng.random((3, 9, 7)) > 0.7).astype(np.int64)
    target[0, :2] = 255  # unlabelled rows
    got = DiceCELoss()(torch.from_numpy(logits), torch.from_numpy(target)).item()
    assert got == pytest.approx(_numpy_reference(logits, target), rel=1e-6)


def test_batch_without_root_uses_cross_entropy_only():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 2, 5, 5))
    target = np.zeros((2, 5, 5), np.int64)
    got = DiceCELoss()(torch.from_numpy(logits), torch.from_numpy(target)).item()
    e = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert got == pytest.approx(0.3 * -np.log(e[:, 0]).mean(), rel=1e-6)


def test_perfect_prediction_has_near_zero_loss():
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[0, 2:5] = 1
    logits = torch.stack([(1 - target) * 20.0, target * 20.0], dim=1).float()
    assert DiceCELoss()(logits, target).item() < 1e-6


@pytest.mark.parametrize("seed", [0, 1])
def test_gradients_equal_central_differences_of_the_numpy_reference(seed):
    """The gradient training follows is the loss's own: autograd's (float32) against float64 central
    differences of the independent numpy formula; unlabelled pixels get exactly none."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(2, 2, 5, 4))
    target = (rng.random((2, 5, 4)) > 0.6).astype(np.int64)
    target[0, 0] = 255
    tensor = torch.from_numpy(logits).float().requires_grad_()
    DiceCELoss()(tensor, torch.from_numpy(target)).backward()
    got = tensor.grad.double().numpy()
    expected, eps = np.zeros_like(logits), 1e-6
    for index in np.ndindex(logits.shape):
        step = np.zeros_like(logits)
        step[index] = eps
        up, down = _numpy_reference(logits + step, target), _numpy_reference(logits - step, target)
        expected[index] = (up - down) / (2 * eps)
    # float32 forward and backward: errors of a few float32 ulps of the largest gradient
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
    assert (got[0, :, 0] == 0).all()  # the unlabelled row


def test_dice_ce_with_one_labelled_pixel_is_not_halved():
    """The CE mean divides by the labelled pixels; with exactly one, by 1."""
    logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 1.0]]]])  # (1, 2, 1, 2)
    target = torch.tensor([[[0, 255]]])
    expected = 0.3 * -np.log(np.exp(2.0) / (np.exp(2.0) + 1.0))
    assert DiceCELoss()(logits, target).item() == pytest.approx(expected, rel=1e-6)


# -- SAMLoss against sam2's formulas written out in numpy -------------------------------------------------------
def _sam_reference(
    logits, iou_pred, target, valid, weights=(20.0, 1.0, 1.0), alpha=0.25, gamma=2.0, all_iou=True, l1=True, bce=False
):
    """sam2 training/loss_fns.py for one step, object by object: sigmoid focal (mean over labelled pixels),
    Dice with +1 smoothing, |IoU head - IoU of (logit > 0)|; the mask with the lowest 20 focal + Dice is kept."""
    wf, wd, wi = weights
    per_object = []
    for n in range(logits.shape[0]):
        labelled = target[n] != 255
        truth = (target[n] == 1) & labelled
        rows = []
        for m in range(logits.shape[1]):
            x = logits[n, m][labelled].astype(np.float64)
            t = truth[labelled].astype(np.float64)
            p = 1 / (1 + np.exp(-x))
            ce = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
            p_t = p * t + (1 - p) * (1 - t)
            focal = ce * (1 - p_t) ** gamma
            if alpha >= 0:
                focal = focal * (alpha * t + (1 - alpha) * (1 - t))
            focal = focal.sum() / max(labelled.sum(), 1)
            dice = 1 - (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1)
            hard = (logits[n, m] > 0) & labelled
            iou = (hard & truth).sum() / max((hard | truth).sum(), 1)
            q = float(iou_pred[n, m])
            err = abs(q - iou) if l1 else (q - iou) ** 2
            if bce:
                err = -(iou * np.log(q) + (1 - iou) * np.log(1 - q))
            rows.append((focal, dice, err))
        best = int(np.argmin([wf * f + wd * d for f, d, _ in rows]))
        iou_term = np.mean([e for _, _, e in rows]) if all_iou else rows[best][2]
        per_object.append((rows[best][0], rows[best][1], iou_term))
    kept = [o for o, v in zip(per_object, valid) if v]
    focal, dice, iou = (float(np.mean([o[i] for o in kept])) for i in range(3))
    return {"loss": wf * focal + wd * dice + wi * iou, "focal": focal, "dice": dice, "iou": iou}


def _sam_case(seed: int, masks: int = 3):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, size=(4, masks, 6, 5)).astype(np.float32)
    iou_pred = rng.random((4, masks)).astype(np.float32)
    target = (rng.random((4, 6, 5)) > 0.6).astype(np.int64)
    target[1, :2] = 255  # unlabelled pixels
    valid = np.array([True, True, True, False])  # a padded object
    return logits, iou_pred, target, valid


@pytest.mark.parametrize("seed", [0, 1])
def test_sam_loss_matches_sam2s_formulas_with_its_default_weights(seed):
    from rootseg.tasks.losses import SAMLoss

    logits, iou_pred, target, valid = _sam_case(seed)
    loss = SAMLoss()  # sam2.1's defaults: focal x20, Dice x1, IoU x1, alpha 0.25, gamma 2, L1, all IoUs
    got = loss(torch.from_numpy(logits), torch.from_numpy(iou_pred), torch.from_numpy(target), torch.from_numpy(valid))
    expected = _sam_reference(logits, iou_pred, target, valid)
    for key in ("loss", "focal", "dice", "iou"):
        assert got[key].item() == pytest.approx(expected[key], rel=1e-5), key
    # the focal term carries weight 20: the loss is far from what weight 1 would give
    assert got["loss"].item() == pytest.approx(20 * expected["focal"] + expected["dice"] + expected["iou"], rel=1e-5)
    assert got["loss"].item() - (expected["focal"] + expected["dice"] + expected["iou"]) > 1e-3


@pytest.mark.parametrize(
    ("kwargs", "reference"),
    [
        ({"supervise_all_iou": False}, {"all_iou": False}),
        ({"iou_use_l1_loss": False}, {"l1": False}),
        ({"iou_use_bce_loss": True}, {"bce": True}),
        ({"focal_alpha": -1.0, "focal_gamma": 1.0}, {"alpha": -1.0, "gamma": 1.0}),
        ({"focal_alpha": 0.0}, {"alpha": 0.0}),  # alpha 0 still weights (background only), as sam2's `>= 0`
        ({"focal_weight": 5.0, "dice_weight": 2.0, "iou_weight": 0.5}, {"weights": (5.0, 2.0, 0.5)}),
    ],
)
def test_sam_loss_options_match_the_reference(kwargs, reference):
    from rootseg.tasks.losses import SAMLoss

    logits, iou_pred, target, valid = _sam_case(2)
    got = SAMLoss(**kwargs)(
        torch.from_numpy(logits), torch.from_numpy(iou_pred), torch.from_numpy(target), torch.from_numpy(valid)
    )
    expected = _sam_reference(logits, iou_pred, target, valid, **reference)
    for key in ("loss", "focal", "dice", "iou"):
        assert got[key].item() == pytest.approx(expected[key], rel=1e-5), key


@pytest.mark.parametrize("masks", [1, 2])  # SAM gives 1 or 3 masks; any M picks the best
def test_sam_loss_with_one_mask_and_no_valid_mask_given(masks):
    from rootseg.tasks.losses import SAMLoss

    logits, iou_pred, target, _ = _sam_case(3, masks=masks)
    got = SAMLoss()(torch.from_numpy(logits), torch.from_numpy(iou_pred), torch.from_numpy(target))
    expected = _sam_reference(logits, iou_pred, target, np.ones(4, bool))
    assert got["loss"].item() == pytest.approx(expected["loss"], rel=1e-5)


def test_sam_loss_picks_the_best_mask_and_rejects_wrong_shapes():
    from rootseg.tasks.losses import SAMLoss

    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, 1:3, 1:3] = 1
    right = torch.where(target == 1, 8.0, -8.0)[:, None]
    wrong = -right
    logits = torch.cat([wrong, right, wrong], dim=1)  # the second of three masks is the right one
    iou = torch.tensor([[0.0, 1.0, 0.0]])
    terms = SAMLoss()(logits, iou, target)
    assert terms["focal"].item() < 1e-5 and terms["dice"].item() < 1e-3
    assert terms["iou"].item() == pytest.approx(0.0, abs=1e-6)  # the two wrong masks have IoU 0, predicted 0
    with pytest.raises(ValueError, match=r"expected mask_logits \[N, M, H, W\] and iou_pred \[N, M\]"):
        SAMLoss()(logits[0], iou, target)
    with pytest.raises(ValueError, match=r"expected mask_logits"):
        SAMLoss()(logits, iou[:, :2], target)
    with pytest.raises(ValueError, match=r"target \(1, 3, 4\) does not match mask_logits \(1, 3, 4, 4\)"):
        SAMLoss()(logits, iou, target[:, :3])


def test_sam_loss_with_one_object_one_labelled_pixel_and_a_zero_logit():
    """Edge counts against the reference: one object (the mean over objects divides by 1), one labelled pixel
    (focal is its loss, not half of it), a logit of exactly 0 (not root: sam2 thresholds at > 0) and a union
    of one pixel (IoU 1, not 1/2)."""
    from rootseg.tasks.losses import SAMLoss

    logits = np.array([[[[0.0, 1.0], [2.0, -1.0]], [[3.0, -2.0], [0.5, 0.5]], [[-1.5, 0.0], [1.0, 1.0]]]], np.float32)
    iou_pred = np.array([[0.2, 0.9, 0.4]], np.float32)
    target = np.array([[[1, 255], [255, 255]]])  # the top-left pixel alone is labelled, as root
    got = SAMLoss()(torch.from_numpy(logits), torch.from_numpy(iou_pred), torch.from_numpy(target))
    expected = _sam_reference(logits, iou_pred, target, np.ones(1, bool))
    assert expected["iou"] == pytest.approx((0.2 + 0.1 + 0.4) / 3)  # IoUs 0 (logit 0), 1 and 0
    for key in ("loss", "focal", "dice", "iou"):
        assert got[key].item() == pytest.approx(expected[key], rel=1e-5), key


def test_bce_iou_loss_pulls_a_saturated_iou_head_back_where_l1_cannot():
    """An IoU head whose sigmoid has collapsed to ~0 (pre-sigmoid -6) on masks whose real IoU is 0.5: through
    the sigmoid, L1's gradient on the pre-sigmoid value is sigmoid' ~ 0.0025; cross-entropy's is (p - IoU)."""
    from rootseg.tasks.losses import SAMLoss

    target = torch.zeros(2, 4, 4, dtype=torch.long)
    target[:, :, :2] = 1  # 8 root pixels
    logits = torch.full((2, 1, 4, 4), -5.0)
    logits[:, :, :, :1] = 5.0  # 4 of them predicted: IoU 0.5
    grads = {}
    for name, kwargs in (("l1", {}), ("bce", {"iou_use_bce_loss": True})):
        z = torch.full((2, 1), -6.0, requires_grad=True)
        SAMLoss(**kwargs)(logits, z.sigmoid(), target)["iou"].backward()
        grads[name] = z.grad
    p = torch.sigmoid(torch.tensor(-6.0)).item()
    assert torch.allclose(grads["l1"], torch.full((2, 1), -p * (1 - p) / 2), rtol=1e-4)  # mean over 2 objects
    assert torch.allclose(grads["bce"], torch.full((2, 1), (p - 0.5) / 2), rtol=1e-4)
    with pytest.raises(ValueError, match="iou_use_bce_loss needs IoU predictions in \\[0, 1\\]"):
        SAMLoss(iou_use_bce_loss=True)(logits, torch.full((2, 1), 1.5), target)


@pytest.mark.parametrize("override", [[], ["model.loss.focal_weight=5"]])
def test_the_configured_focal_weight_is_the_one_the_loss_uses(compose, override):
    """The RootSAM experiments' loss, as Hydra builds it from conf/model/rootsam.yaml: sam2.1's focal weight (20)
    unless overridden, and the weight it holds is the one the total and the best-mask choice use."""
    import hydra

    cfg = compose("train", ["+experiment=rootsam_stage1", *override])
    loss = hydra.utils.instantiate(cfg.model.loss)
    weight = 5.0 if override else 20.0
    assert cfg.model.loss.focal_weight == loss.focal_weight == weight
    logits, iou_pred, target, valid = _sam_case(3)
    got = loss(torch.from_numpy(logits), torch.from_numpy(iou_pred), torch.from_numpy(target), torch.from_numpy(valid))
    expected = _sam_reference(logits, iou_pred, target, valid, weights=(weight, 1.0, 1.0))
    assert float(got["loss"]) == pytest.approx(expected["loss"], rel=1e-5)
