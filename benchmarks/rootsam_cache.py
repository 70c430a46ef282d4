"""What the embedding cache buys RootSAM training: epoch time with and without it (JSON).

With the image encoder frozen, an epoch of decoder training re-encodes every tile unless the embeddings are
cached (`data.cache_embeddings=true`, `rootseg.models.embedding_cache`). This times epochs of
`RootSAMModule`'s own training computation (`_step`: cache lookup or encoder, decoder, SAMLoss) plus backward
and AdamW over the training tiles of a small synthetic set:

- `no_cache`: the encoder runs on every tile every epoch;
- `cache_cold`: the first cached epoch (encoder + writing fp16 features);
- `cache_warm`: later epochs (features read from disk, memory-mapped).

Epoch times are medians over `--epochs` epochs, after one untimed warm-up epoch. Random weights: speed
does not depend on them. The first-batch loss with warm cache vs without is reported
(`loss_rel_diff`, fp16 storage). Data loading (resize, prompts) is warmed up before timing and is included.

    python benchmarks/rootsam_cache.py --quick          # sam2.1_hiera_t at image_size 256, 256 px tiles: ~1 min CPU
    python benchmarks/rootsam_cache.py --config micro --image-size 128 --tile 128   # the test net, seconds
    python benchmarks/rootsam_cache.py                  # sam2.1_hiera_t at image_size 512, 512 px tiles
    python benchmarks/rootsam_cache.py --config sam2.1_hiera_l --image-size 1024 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from rootseg.datamodules.rootsam import RootSAMDataModule
from rootseg.models.rootsam import RootSAM  # noqa: E402
from rootseg.models.sam2_builder import SAM2_MICRO_OVERRIDES  # noqa: E402
from rootseg.sources.folder import FolderSource
from rootseg.synthetic.dataset import write_dataset
from rootseg.tasks.losses import SAMLoss
from rootseg.tasks.rootsam import RootSAMModule


def build_module(config: str, image_size: int, device: torch.device) -> RootSAMModule:
    overrides = dict(SAM2_MICRO_OVERRIDES) if config == "micro" else {"image_size": image_size}
    net = RootSAM(config_name="sam2.1_hiera_t" if config == "micro" else config, overrides=overrides)
    optimizer = partial(torch.optim.AdamW, lr=1e-5, weight_decay=0.1)
    return RootSAMModule(net, SAMLoss(), optimizer).to(device)


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def run_epoch(
    module: RootSAMModule, loader: DataLoader, optimizer: torch.optim.Optimizer, device: torch.device
) -> float:
    """Seconds for one epoch of training steps (synchronised on GPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for batch in loader:
        out = module._step(to_device(batch, device))
        if out is None:
            continue
        optimizer.zero_grad(set_to_none=True)
        module._loss_terms(*out)["loss"].backward()  # the prompted and promptless passes, as training_step
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="sam2.1_hiera_t at image_size 256, 256 px tiles")
    parser.add_argument("--config", default="sam2.1_hiera_t", help="sam2 config, or 'micro'")
    parser.add_argument("--image-size", type=int, default=512, help="SAM's input side (Meta's weights: 1024)")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--images", type=int, default=4, help="synthetic training images (each 2 x 2 tiles)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per mode (median reported)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.config, args.image_size, args.tile = "sam2.1_hiera_t", 256, 256
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory(prefix="rootsam_cache_bench_") as tmp:
        root = write_dataset(Path(tmp) / "data", n=args.images + 2, size=(args.tile, args.tile), seed=3)
        datamodule = RootSAMDataModule(
            FolderSource(root), resize=2 * args.tile, tile=args.tile, batch_size=args.batch_size, seed=0
        )
        datamodule.setup("fit")
        dataset = datamodule.train_dataset(0)
        loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=False)
        for _ in loader:  # warm the resized-image cache
            pass
        module = build_module(args.config, args.image_size, device)
        module.train()
        optimizer = module.configure_optimizers()
        optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
        first = to_device(next(iter(loader)), device)

        run_epoch(module, loader, optimizer, device)  # untimed: first-call costs (allocator, kernels)
        no_cache = [run_epoch(module, loader, optimizer, device) for _ in range(args.epochs)]

        cache = module.enable_embedding_cache(Path(tmp) / "cache")
        cold = run_epoch(module, loader, optimizer, device)
        warm = [run_epoch(module, loader, optimizer, device) for _ in range(args.epochs)]
        module.embedding_cache = None
        with torch.no_grad():
            plain = float(module._loss_terms(*module._step(first))["loss"])
            module.embedding_cache = cache
            cached = float(module._loss_terms(*module._step(first))["loss"])
        cache_bytes = sum(p.stat().st_size for p in cache.directory.rglob("*") if p.is_file())

    median = statistics.median
    result = {
        "benchmark": "rootsam_embedding_cache",
        "config": args.config,
        "image_size": args.image_size,
        "tile": args.tile,
        "tiles_per_epoch": len(dataset),
        "batch_size": args.batch_size,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "epoch_s": {
            "no_cache": round(median(no_cache), 3),
            "cache_cold": round(cold, 3),
            "cache_warm": round(median(warm), 3),
        },
        "epochs_s_all": {"no_cache": [round(t, 3) for t in no_cache], "cache_warm": [round(t, 3) for t in warm]},
        "speedup_warm": round(median(no_cache) / median(warm), 2),
        "cache_mib_per_tile": round(cache_bytes / len(dataset) / 2**20, 3),
        "loss_rel_diff": abs(cached - plain) / max(abs(plain), 1e-12),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
