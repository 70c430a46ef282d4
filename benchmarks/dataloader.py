"""Does the U-Net data module keep up with the training step? Tiles/s of the train loader alone.

Times `UNetDataModule.train_dataloader()` with the real training transform (`smith2020_transform`: elastic
grid, colour jitter; 572 px tiles cut from cached images, masks cropped to 388) at each worker count, on
synthetic images written to a temporary folder (`rootseg.synthetic.dataset.write_dataset`) or, with `--segroot`,
on SegRoot's images. The first batch (worker start-up, fork) is timed apart; the steady rate is timed after
3 more batches (what the workers prefetched meanwhile would inflate it).

A 16-core node's loader rate is EXTRAPOLATED, not measured: steady tiles/s with one worker x 15 workers (one
core left to the main process), assuming linear scaling across cores (no memory-bandwidth limit). It is
compared with the training step rate: `--train-json` (a `benchmarks/train_step.py` output; its best mode),
`--step-rate` (tiles/s), or by default an ASSUMED H100 figure: the Smith U-Net's FLOPs per training tile
(counted by torch's FlopCounterMode on the meta device) at `--assumed-mfu` (35 %) of the H100's dense bf16
peak (989 TFLOP/s). Replace it by a measured one when a GPU run exists. `--end-to-end` also trains the
U-Net from the loader (on a GPU: bf16, channels_last, pinned memory; without one: fp32 on the CPU, for smoke
runs of this path, `--net narrow` or `nano`: Smith's 572 -> 388 tiles at 1/8 or 1/32 width) and reports the share of
the time the training step was busy. Prints one JSON object.

    python benchmarks/dataloader.py --quick                     # synthetic images, workers 0 1 2 (< 3 min)
    python benchmarks/dataloader.py --segroot --workers 0 1 2   # SegRoot images, if present
    python benchmarks/dataloader.py --train-json train_step_h100.json --workers 15 --end-to-end
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import torch  # noqa: E402

from rootseg.datamodules.transforms import smith2020_transform
from rootseg.datamodules.unet import UNetDataModule
from rootseg.sources.folder import FolderSource
from rootseg.synthetic.dataset import write_dataset

REPO = Path(__file__).resolve().parents[1]
SEGROOT = Path(os.environ.get("ROOTSEG_SHARED", REPO.parent / "shared")) / "datasets" / "segroot"
H100_BF16_DENSE_FLOPS = 989e12
NODE_WORKERS = 15  # a 16-core node, one core left to the training process
WARM_BATCHES = 3  # > the DataLoader's prefetch (2 batches per worker)


def smith_flops_per_tile() -> float:
    """FLOPs of one Smith U-Net training tile (forward + backward), counted on the meta device (no compute)."""
    from torch.utils.flop_counter import FlopCounterMode

    from rootseg.models.unet import UNet

    with torch.device("meta"):
        net = UNet(base_channels=64, depth=4, groups=32)
        tiles = torch.empty(1, 3, 572, 572)
    with FlopCounterMode(display=False) as counter:
        net(tiles).float().sum().backward()
    return float(counter.get_total_flops())


def _json_objects(text: str) -> list[dict[str, Any]]:
    """The JSON objects printed one after another (train_step.py prints one per device)."""
    decoder, objects, index = json.JSONDecoder(), [], 0
    while (index := text.find("{", index)) >= 0:
        obj, index = decoder.raw_decode(text, index)
        objects.append(obj)
    return objects


def step_rate(args: argparse.Namespace) -> dict[str, Any]:
    """The training-step rate the loader must match, and where it comes from."""
    if args.step_rate:
        return {"tiles_per_s": args.step_rate, "source": "--step-rate (given)"}
    if args.train_json:
        runs = _json_objects(Path(args.train_json).read_text())
        best = max(
            (
                (rate, run["device"], mode, run["net"])
                for run in runs
                for mode, rate in run.get("best_tiles_per_s", {}).items()
            ),
            default=None,
        )
        if best is None:
            raise SystemExit(f"{args.train_json}: no best_tiles_per_s in it")
        rate, device, mode, net = best
        return {"tiles_per_s": rate, "source": f"{args.train_json}: {net} net, {mode}, {device} (measured)"}
    flops = smith_flops_per_tile()
    rate = args.assumed_mfu * H100_BF16_DENSE_FLOPS / flops
    return {
        "tiles_per_s": round(rate, 1),
        "source": (
            f"ASSUMED, not measured: Smith U-Net {flops / 1e9:.0f} GFLOP per training tile at "
            f"{args.assumed_mfu:.0%} of an H100's dense bf16 peak (989 TFLOP/s); no GPU run recorded yet"
        ),
    }


def time_loader(datamodule: UNetDataModule, max_batches: int) -> dict[str, Any]:
    """First batch (start-up) apart from the steady rate over the following batches."""
    loader = datamodule.train_dataloader()
    start = time.perf_counter()
    iterator = iter(loader)
    first = next(iterator)
    first_s = time.perf_counter() - start
    for _ in range(WARM_BATCHES):  # drain what workers prefetched during start-up: it would inflate the rate
        if next(iterator, None) is None:
            raise SystemExit(f"the epoch has fewer than {WARM_BATCHES + 2} batches: use more --images")
    tiles = 0
    start = time.perf_counter()
    for batches, batch in enumerate(iterator, start=1):
        tiles += batch["image"].shape[0]
        if batches >= max_batches:
            break
    seconds = time.perf_counter() - start
    del iterator
    return {
        "first_batch_s": round(first_s, 3),
        "batch_size": first["image"].shape[0],
        "tiles_timed": tiles,
        "seconds": round(seconds, 3),
        "tiles_per_s": round(tiles / seconds, 2) if tiles else None,
    }


# --end-to-end networks, all with Smith's 572 -> 388 tiles: the paper's width, 1/8 of it (unet_narrow), and
# 1/32 of it (nano: only for smoke runs of this path on a CPU, experiments/gpu/run.sh --smoke)
NETS = {
    "smith": {"base_channels": 64, "depth": 4, "groups": 32},
    "narrow": {"base_channels": 8, "depth": 4, "groups": 8},
    "nano": {"base_channels": 2, "depth": 4, "groups": 2},
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def end_to_end(datamodule: UNetDataModule, max_batches: int, net_name: str = "smith") -> dict[str, Any]:
    """Train the U-Net straight from the loader (GPU: bf16, channels_last; CPU: fp32); busy share =
    (steps x step time on a resident batch) / wall time of the loader-fed loop."""
    from rootseg.models.unet import UNet
    from rootseg.tasks.losses import DiceCELoss

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.type == "cuda"
    torch.backends.cudnn.benchmark = True
    layout = torch.channels_last if cuda else torch.contiguous_format
    net = UNet(**NETS[net_name]).to(device, memory_format=layout)
    loss_fn = DiceCELoss()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.99, nesterov=True)

    def step(images: torch.Tensor, masks: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = loss_fn(net(images), masks)
        loss.backward()
        optimizer.step()

    def to_device(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        images = batch["image"].to(device, non_blocking=True).contiguous(memory_format=layout)
        return images, batch["mask"].to(device, non_blocking=True)

    loader = datamodule.train_dataloader()
    resident = None
    for i, batch in enumerate(loader):  # warm-up: cuDNN autotuning, worker start-up
        resident = to_device(batch)
        step(*resident)
        if i >= 3:
            break
    _sync(device)
    steps, start = 0, time.perf_counter()
    for steps, batch in enumerate(loader, start=1):  # noqa: B007 - steps is read after the loop
        step(*to_device(batch))
        if steps >= max_batches:
            break
    _sync(device)
    wall = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        step(*resident)
    _sync(device)
    busy = time.perf_counter() - start
    return {
        "device": torch.cuda.get_device_name(device) if cuda else "cpu",
        "net": net_name,
        "autocast_bf16": cuda,
        "steps": steps,
        "wall_s": round(wall, 3),
        "step_only_s": round(busy, 3),
        "gpu_busy_share": round(busy / wall, 3),
        "goal_busy_share": 0.9,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 synthetic 1024 px images, 12 batches (< 3 min)")
    parser.add_argument("--segroot", action="store_true", help=f"SegRoot images from {SEGROOT}")
    parser.add_argument("--images", type=int, default=None, help="synthetic images (60 %% train)")
    parser.add_argument("--size", type=int, default=1024, help="synthetic image side (px)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--batches", type=int, default=None, help="timed batches per worker count")
    parser.add_argument("--step-rate", type=float, default=None, help="training tiles/s to compare with")
    parser.add_argument("--train-json", default=None, help="benchmarks/train_step.py output to compare with")
    parser.add_argument("--assumed-mfu", type=float, default=0.35, help="share of H100 bf16 peak (assumption)")
    parser.add_argument("--end-to-end", action="store_true", help="loader-fed training, busy share of the step")
    parser.add_argument("--net", choices=sorted(NETS), default="smith", help="--end-to-end network (narrow, nano: CPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the main process")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    images = args.images or (5 if args.quick else 10)
    batches = args.batches or (12 if args.quick else 40)
    cuda = torch.cuda.is_available()

    with tempfile.TemporaryDirectory(prefix="rootseg_loader_bench_") as tmp:
        if args.segroot:
            if not (SEGROOT / "split.json").is_file():
                raise SystemExit(f"SegRoot not found at {SEGROOT}")
            source, data = FolderSource(SEGROOT, mask_suffix="-mask"), f"SegRoot ({SEGROOT})"
        else:
            start = time.perf_counter()
            root = write_dataset(Path(tmp) / "data", n=images, size=(args.size, args.size), seed=0)
            source = FolderSource(root)
            data = f"synthetic, {images} images of {args.size} px (written in {time.perf_counter() - start:.1f} s)"
        result: dict[str, Any] = {
            "benchmark": "dataloader",
            "data": data,
            "cpu_count": os.cpu_count(),
            "load_average_1min_start": round(os.getloadavg()[0], 2),
            "tile_in": 572,
            "tile_out": 388,
            "transform": "smith2020_transform() (elastic_p 0.9, colour jitter)",
            "pin_memory": cuda,
            "main_process_torch_threads": torch.get_num_threads(),
            "workers": {},
        }
        for workers in args.workers:
            datamodule = UNetDataModule(
                source,
                batch_size=args.batch_size,
                num_workers=workers,
                pin_memory=cuda,
                train_transform=smith2020_transform(),
            )
            datamodule.setup("fit")  # decodes the training images into the cache (forked workers share it)
            result["workers"][str(workers)] = time_loader(datamodule, batches)
            result.setdefault("train_tiles_per_epoch", len(datamodule.draw_corners(0)))
            print(json.dumps({"workers": workers, **result["workers"][str(workers)]}), flush=True, file=sys.stderr)
        result["load_average_1min_end"] = round(os.getloadavg()[0], 2)

        rates = {int(k): v["tiles_per_s"] for k, v in result["workers"].items() if v["tiles_per_s"]}
        per_worker = rates.get(1) or rates.get(0)
        target = step_rate(args)
        node = per_worker * NODE_WORKERS if per_worker else None
        result["per_worker_tiles_per_s"] = per_worker
        result["node_16_core"] = {
            "workers": NODE_WORKERS,
            "tiles_per_s": round(node, 1) if node else None,
            "how": "EXTRAPOLATED: steady tiles/s of 1 worker here x 15 (linear scaling assumed), not measured",
        }
        result["training_step"] = target
        if node:
            result["ratio"] = round(node / target["tiles_per_s"], 2)  # loader / step: >= 1 keeps up
            result["keeps_up"] = node >= target["tiles_per_s"]
            result["workers_needed"] = int(-(-target["tiles_per_s"] // per_worker))
            result["answer"] = (
                f"{'yes' if result['keeps_up'] else 'no'}: 15 workers ~ {node:.0f} tiles/s vs "
                f"{target['tiles_per_s']:.0f} training tiles/s ({result['workers_needed']} workers needed)"
            )
        if args.end_to_end:
            workers = max(args.workers)
            datamodule = UNetDataModule(
                source,
                batch_size=args.batch_size,
                num_workers=workers,
                pin_memory=cuda,
                train_transform=smith2020_transform(),
            )
            datamodule.setup("fit")
            result["end_to_end"] = {"workers": workers, **end_to_end(datamodule, batches, args.net)}
    result["torch"] = torch.__version__
    result["python"] = platform.python_version()
    print(json.dumps(result, indent=1), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
