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


def test_perfect_prediction_has_near_zero_loss_and_gradients_flow():
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[0, 2:5] = 1
    logits = torch.stack([(1 - target) * 20.0, target * 20.0], dim=1).float().requires_grad_()
    loss = DiceCELoss()(logits, target)
    assert loss.item() < 1e-6
    DiceCELoss()(torch.zeros_like(logits, requires_grad=True), target).backward()
