"""The micro SAM 2.1 (random weights) as RootSAM tests build it: stage 1 on small synthetic images, and a
counter of its decoder's prompted and promptless passes."""

from __future__ import annotations

from pathlib import Path

import hydra
import torch
from conftest import compose_run


def micro_overrides(
    data_dir: Path,
    *extra: str,
    n: int = 6,
    size: tuple[int, int] = (256, 256),
    grid: int = 4,
    experiment: str | None = "rootsam_stage1",
) -> list[str]:
    """`experiment` (None: one given in `extra`) on the micro net: `n` synthetic images of `size`, resized to 256 px
    and cut into 128 px tiles, a `grid` x `grid` of clicks per tile when no click is given."""
    return [
        *([f"+experiment={experiment}"] if experiment else []),
        "model/net=sam2.1_micro",
        "data=synthetic",
        f"data.source.n={n}",
        f"data.source.size=[{size[0]},{size[1]}]",
        f"paths.data_dir={data_dir}",
        "data.resize=256",
        "data.tile=128",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        "logger=csv",
        f"model.grid_points_per_side={grid}",
        *extra,
    ]


def micro_config(data_dir: Path, run_dir: Path, *extra: str, **source):
    return compose_run("train", micro_overrides(data_dir, *extra, **source), run_dir)


def micro_module(cfg):
    """The RootSAM module of a composed config, with the same random weights every time."""
    torch.manual_seed(0)
    return hydra.utils.instantiate(cfg.model)


def count_decoder(module, monkeypatch) -> dict[str, list]:
    """Record every prompted (`decode`: coords' [B, objects, clicks]) and promptless (`decode_promptless`:
    tiles) decoder call."""
    calls: dict[str, list] = {"points": [], "none": []}
    decode, promptless = module.net.decode, module.net.decode_promptless

    def counting_decode(embeddings, coords, *args, **kwargs):
        calls["points"].append(tuple(coords.shape[:3]))
        return decode(embeddings, coords, *args, **kwargs)

    def counting_promptless(embeddings, *args, **kwargs):
        calls["none"].append(int(embeddings["image_embed"].shape[0]))
        return promptless(embeddings, *args, **kwargs)

    monkeypatch.setattr(module.net, "decode", counting_decode)
    monkeypatch.setattr(module.net, "decode_promptless", counting_promptless)
    return calls


def write_micro_sam_file(path: Path, seed: int = 1) -> Path:
    """A Meta-format (`{"model": state_dict}`) SAM 2.1 file of the micro model with random weights, as
    `model.net.ckpt_path` reads Meta's (so checkpoints leave the frozen encoder out and reload it)."""
    from rootseg.models.sam2_builder import SAM2_MICRO_OVERRIDES, build_sam2_model

    torch.manual_seed(seed)
    torch.save({"model": build_sam2_model("sam2.1_hiera_t", SAM2_MICRO_OVERRIDES).state_dict()}, path)
    return path
