"""The paper's optimiser and schedule as the unet_smith2020 experiment builds them: SGD (Nesterov, momentum
0.99, lr 0.01, weight decay 1e-5) with the learning rate x0.3 every 30 epochs (Smith et al. 2020), stepped
once per epoch. Checked epoch by epoch against 0.01 * 0.3 ** (epoch // 30), not against the config itself."""

from __future__ import annotations

import hydra
import pytest
import torch


def test_smith2020_learning_rate_is_cut_by_0_3_every_30_epochs(compose):
    cfg = compose("train", ["+experiment=unet_smith2020", "model/net=unet_tiny", "data.tile_out=484"])
    model = hydra.utils.instantiate(cfg.model)
    configured = model.configure_optimizers()
    optimizer = configured["optimizer"]
    assert isinstance(optimizer, torch.optim.SGD)
    group = optimizer.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"], group["weight_decay"]) == (0.01, 0.99, True, 1e-5)
    assert configured["lr_scheduler"]["interval"] == "epoch"  # Lightning steps it once per epoch, not per batch
    scheduler = configured["lr_scheduler"]["scheduler"]
    seen = []
    for _ in range(cfg.trainer.max_epochs):  # 120 epochs, as the experiment trains
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    expected = [0.01 * 0.3 ** (epoch // 30) for epoch in range(120)]
    assert seen == pytest.approx(expected, rel=1e-9, abs=0)
    assert seen[29] == pytest.approx(0.01) and seen[30] == pytest.approx(0.003) and seen[119] == pytest.approx(2.7e-4)
