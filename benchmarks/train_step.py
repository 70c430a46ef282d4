"""U-Net training throughput: tiles/s of forward + backward + SGD step, fp32 eager vs the fast paths.

Modes (each on random tiles and masks; speed does not depend on the values):
- `fp32`: eager, float32, NCHW - the baseline;
- `bf16`: `torch.autocast(bfloat16)` around forward and loss;
- `channels_last`: fp32, channels_last weights and inputs (cuDNN / oneDNN NHWC kernels);
- `bf16_channels_last`: both;
- `compile`: bf16 + channels_last + `torch.compile` - the configuration the issue's GPU goal refers to;
  `compile_fp32` (fp32 NCHW + compile) and `compile_bf16` (bf16 NCHW + compile) on request (`--modes`).
  It runs in a subprocess per batch size, killed after `--compile-budget` s (60 with `--quick`, where only
  the largest batch size is compiled): compile time (the warm-up steps) is reported apart and excluded
  from tiles/s. `--compile-backend` picks torch.compile's backend (default inductor; `aot_eager` traces
  without code generation: seconds on a CPU, for smoke runs of the compile path).
- GPU busy share (CUDA only): the share of wall time the GPU runs kernels over `--steps` untimed back-to-back
  steps on a resident batch (kernel intervals from torch.profiler, merged where they overlap). Below 1: the
  step waits on the CPU (kernel launches, Python), which CUDA graphs or larger batches would hide.

Loss and optimiser are the paper's: Dice + 0.3 CE (`rootseg.tasks.losses.DiceCELoss`), SGD Nesterov momentum 0.99
(`--optimizer adamw`: the CPU recipe's AdamW, lr 0.003).

`--accuracy`: tiles and masks are synthetic root scans (`rootseg.synthetic`, a pool of distinct batches cycled)
instead of noise, every mode starts from the same seed and sees the same batches, and each mode reports its mean
loss over the last 3 steps and the F1 (threshold 0.5) of its net on held-out synthetic tiles after all steps;
`f1_diff` = its F1 - fp32's F1, and `accuracy_holds` = |f1_diff| <= `--f1-tolerance` (0.01). A speed-up only
counts where accuracy holds.
Peak memory: GPU `torch.cuda.max_memory_allocated`; CPU peak resident set (VmHWM, reset per run through
/proc/self/clear_refs) minus the resident set before the run. Prints one JSON object per device; `ratio` of
each mode = its tiles/s / fp32 tiles/s at the same batch size.

    python benchmarks/train_step.py --quick                  # tiny net, batch 4 and 8, CPU (< 3 min)
    python benchmarks/train_step.py --net smith --device cuda --batch-sizes 4 8 16 32
    python benchmarks/train_step.py --cpu-study --net narrow   # conf/model/net/unet_narrow, every CPU mode + accuracy

RootSAM decoder steps with and without the embedding cache: benchmarks/rootsam_cache.py.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import torch  # noqa: E402

from rootseg.models.unet import UNet  # noqa: E402
from rootseg.tasks.losses import DiceCELoss

# name -> (UNet kwargs, tile_in, tile_out), as benchmarks/predict.py; micro: smoke runs of the script only
NETS: dict[str, tuple[dict[str, int], int, int]] = {
    "micro": ({"base_channels": 4, "depth": 2, "groups": 4}, 100, 60),
    "tiny": ({"base_channels": 8, "depth": 3, "groups": 8}, 276, 188),
    "narrow": ({"base_channels": 8, "depth": 4, "groups": 8}, 572, 388),  # conf/model/net/unet_narrow.yaml
    "wide": ({"base_channels": 16, "depth": 4, "groups": 16}, 572, 388),  # twice unet_narrow's width
    "smith": ({"base_channels": 64, "depth": 4, "groups": 32}, 572, 388),
}
MODES = ("fp32", "bf16", "channels_last", "bf16_channels_last", "compile")
EXTRA_MODES = ("compile_fp32", "compile_bf16")  # torch.compile without bf16 / without channels_last
COMPILED = ("compile", "compile_fp32", "compile_bf16")
POOL = 3  # distinct synthetic batches cycled by --accuracy


def synthetic_batches(n: int, batch_size: int, tile_in: int, tile_out: int, seed: int) -> list[tuple[Any, Any]]:
    """`n` batches of synthetic root tiles (min-max normalised to [-0.5, 0.5] as the datamodule does) and
    their centre-cropped masks: the same for every mode, so their losses and F1 are comparable."""
    from rootseg.synthetic.generator import generate_sample

    crop = (tile_in - tile_out) // 2
    batches = []
    for b in range(n):
        samples = [generate_sample(seed + b * batch_size + i, (tile_in, tile_in)) for i in range(batch_size)]
        images = torch.stack([torch.from_numpy(s.image).permute(2, 0, 1).float() for s in samples])
        low, high = images.amin(dim=(1, 2, 3), keepdim=True), images.amax(dim=(1, 2, 3), keepdim=True)
        images = (images - low) / (high - low).clamp_min(1e-6) - 0.5
        masks = torch.stack([torch.from_numpy(s.mask[crop : crop + tile_out, crop : crop + tile_out]) for s in samples])
        batches.append((images, masks.long()))
    return batches


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _reset_peak(device: torch.device) -> int:
    """Start a peak-memory window; returns the baseline (bytes)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device)
    gc.collect()
    with contextlib.suppress(OSError):  # hand freed heap back to the OS: a cache must not inflate the baseline
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
    return _rss_kib("VmRSS") * 1024


def _peak(device: torch.device, baseline: int) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) - baseline
    return _rss_kib("VmHWM") * 1024 - baseline


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class Runner:
    """One (mode, batch size) training setup: fresh net and optimiser, so modes do not share state."""

    def __init__(
        self,
        net_name: str,
        mode: str,
        batch_size: int,
        device: torch.device,
        backend: str = "inductor",
        optimizer: str = "sgd",
        accuracy: bool = False,
    ) -> None:
        kwargs, self.tile_in, self.tile_out = NETS[net_name]
        torch.manual_seed(0)
        self.device, self.mode = device, mode
        self.net = UNet(**kwargs).to(device)
        self.channels_last = mode in ("channels_last", "bf16_channels_last", "compile")
        self.autocast = mode in ("bf16", "bf16_channels_last", "compile", "compile_bf16")
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.loss = DiceCELoss()
        if optimizer == "adamw":
            self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=0.003)
        else:
            self.optimizer = torch.optim.SGD(self.net.parameters(), lr=0.01, momentum=0.99, nesterov=True)
        if accuracy:
            self.batches = [self._place(*b) for b in synthetic_batches(POOL + 1, batch_size, *NETS[net_name][1:], 7)]
            self.held_out = self.batches.pop()
        else:
            generator = torch.Generator().manual_seed(1)
            images = torch.rand(batch_size, 3, self.tile_in, self.tile_in, generator=generator) * 255
            masks = (torch.rand(batch_size, self.tile_out, self.tile_out, generator=generator) < 0.1).long()
            self.batches = [self._place(images, masks)]
        self.record, self.steps_done, self.losses = accuracy, 0, []
        self.step_fn = torch.compile(self._step, backend=backend) if mode in COMPILED else self._step

    def _place(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        layout = torch.channels_last if self.channels_last else torch.preserve_format
        return images.to(self.device, memory_format=layout), masks.to(self.device)

    def _step(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            loss = self.loss(self.net(images), masks)
        loss.backward()
        return loss

    def step(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        images, masks = self.batches[self.steps_done % len(self.batches)]
        loss = self.step_fn(images, masks)
        self.optimizer.step()
        self.steps_done += 1
        if self.record:  # a host sync: only when accuracy is asked for
            self.losses.append(float(loss.detach()))

    @torch.no_grad()
    def held_out_f1(self) -> float:
        """F1 at threshold 0.5 on the held-out batch, in the mode's own precision (eager: no recompile)."""
        images, masks = self.held_out
        self.net.eval()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            pred = torch.softmax(self.net(images).float(), dim=1)[:, 1] >= 0.5
        self.net.train()
        truth = masks.bool()
        tp = float((pred & truth).sum())
        return 2 * tp / max(float(pred.sum() + truth.sum()), 1.0)


def merged_us(intervals: list[tuple[float, float]]) -> float:
    """Total length of the union of (start, end) intervals (overlapping kernels count once)."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def gpu_busy_share(runner: Runner, steps: int) -> float:
    """Share of the wall time of `steps` back-to-back steps (no sync between them) in which a kernel ran."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            runner.step()
        torch.cuda.synchronize()
        wall = time.perf_counter() - start
    kernels = [(e.time_range.start, e.time_range.end) for e in prof.events() if e.device_type == DeviceType.CUDA]
    if not kernels:
        raise RuntimeError("the profiler recorded no CUDA kernel")
    return merged_us(kernels) / 1e6 / wall


def bench(
    net_name: str,
    mode: str,
    batch_size: int,
    device: torch.device,
    steps: int,
    warmup: int,
    backend: str = "inductor",
    optimizer: str = "sgd",
    accuracy: bool = False,
) -> dict[str, Any]:
    """Tiles/s over `steps` timed steps after `warmup` (compile and kernel selection happen in warm-up)."""
    baseline = _reset_peak(device)
    runner = Runner(net_name, mode, batch_size, device, backend, optimizer, accuracy)
    _sync(device)
    start = time.perf_counter()
    for _ in range(warmup):
        runner.step()
    _sync(device)
    warmup_s = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        runner.step()
        _sync(device)
        times.append(time.perf_counter() - start)
    times.sort()
    median = times[len(times) // 2]
    out = {
        "tiles_per_s": round(batch_size / median, 3),
        "step_s_median": round(median, 4),
        "step_s_best": round(times[0], 4),
        "warmup_s": round(warmup_s, 2),
        "peak_mem_mib": round(_peak(device, baseline) / 2**20, 1),
    }
    if accuracy:
        out["final_loss"] = round(sum(runner.losses[-3:]) / len(runner.losses[-3:]), 4)
        out["held_out_f1"] = round(runner.held_out_f1(), 4)
    if mode in COMPILED:
        out["compile_s"] = out["warmup_s"]  # first steps: tracing + codegen, excluded from tiles/s
        out["compile_backend"] = backend
    if device.type == "cuda":  # after the peak-memory reading: the profiler allocates too
        try:
            out["gpu_busy_share"] = round(gpu_busy_share(runner, steps), 3)
        except Exception as error:  # a figure lost, not the run
            out["gpu_busy_share_error"] = f"{type(error).__name__}: {error}"[:300]
    del runner
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def bench_compiled(args: argparse.Namespace, batch_size: int, device: torch.device, budget: float) -> dict[str, Any]:
    """The compile mode in a subprocess killed after `budget` s: an in-process compile cannot be cut short
    (CPU inductor takes minutes on 2 cores), and a fresh process keeps its memory figure apart."""
    command = [sys.executable, __file__, "--one-compile", "--mode", args.one_mode, "--net", args.net]
    command += ["--device", str(device), "--optimizer", args.optimizer] + (["--accuracy"] if args.accuracy else [])
    command += ["--batch-sizes", str(batch_size), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    command += ["--threads", str(torch.get_num_threads()), "--compile-backend", args.compile_backend]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, timeout=budget, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        return {"skipped": f"compile + {args.steps + args.warmup} steps did not finish in {budget:.0f} s"}
    if done.returncode:
        return {"error": done.stderr.strip()[-400:], "seconds": round(time.perf_counter() - start, 1)}
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare_accuracy(row: dict[str, dict[str, Any]], tolerance: float) -> None:
    """Each mode's held-out F1 against fp32's (same seed, batches and steps): `f1_diff`, `accuracy_holds`."""
    base = row.get("fp32", {}).get("held_out_f1")
    if base is None:
        return
    for figures in row.values():
        if "held_out_f1" in figures:
            figures["f1_diff"] = round(figures["held_out_f1"] - base, 4)
            figures["accuracy_holds"] = abs(figures["f1_diff"]) <= tolerance


def run_device(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    result: dict[str, Any] = {
        "benchmark": "train_step",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "cpu_threads": torch.get_num_threads(),
        "net": args.net,
        "tile_in": NETS[args.net][1],
        "tile_out": NETS[args.net][2],
        "steps": args.steps,
        "warmup": args.warmup,
        "optimizer": args.optimizer,
        "accuracy_check": args.accuracy,
        "load_average_1min_start": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    modes = list(args.modes)
    rows: dict[str, dict[str, Any]] = {}
    for batch_size in args.batch_sizes:
        row: dict[str, Any] = {}
        for mode in modes:
            if mode in COMPILED:
                if not args.quick or batch_size == max(args.batch_sizes):
                    args.one_mode = mode
                    row[mode] = bench_compiled(args, batch_size, device, args.compile_budget)
                continue
            try:
                row[mode] = bench(
                    args.net,
                    mode,
                    batch_size,
                    device,
                    args.steps,
                    args.warmup,
                    "inductor",
                    args.optimizer,
                    args.accuracy,
                )
            except torch.OutOfMemoryError:
                row[mode] = {"error": "out of memory"}
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            print(json.dumps({"batch_size": batch_size, mode: row[mode]}), flush=True, file=sys.stderr)
        base = row.get("fp32", {}).get("tiles_per_s")
        for figures in row.values():
            if base and "tiles_per_s" in figures:
                figures["ratio"] = round(figures["tiles_per_s"] / base, 3)
        compare_accuracy(row, args.f1_tolerance)
        rows[str(batch_size)] = row
        print(json.dumps({"batch_size": batch_size, **row}), flush=True, file=sys.stderr)
    result["batch_sizes"] = rows
    best = {  # modes with no figure (compile skipped or failed) are left out
        mode: max(rates)
        for mode in modes
        if (rates := [r[mode]["tiles_per_s"] for r in rows.values() if "tiles_per_s" in r.get(mode, {})])
    }
    result["best_tiles_per_s"] = best
    if best.get("fp32"):
        result["best_ratio_to_fp32"] = {mode: round(v / best["fp32"], 3) for mode, v in best.items()}
    result["load_average_1min_end"] = round(os.getloadavg()[0], 2)
    result["rootsam_cache"] = "see benchmarks/rootsam_cache.py (decoder epochs with vs without the embedding cache)"
    print(json.dumps(result, indent=1), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny net, batch 4 and 8, few steps (< 3 min CPU)")
    parser.add_argument(
        "--net", choices=sorted(NETS), default=None, help="tiny (default on CPU), smith, or micro (smoke runs)"
    )
    parser.add_argument("--device", default="all", help="all (CPU, and GPU when present), cpu, cuda")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None)
    parser.add_argument("--modes", nargs="+", choices=MODES + EXTRA_MODES, default=None)
    parser.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd", help="adamw: the CPU recipe's")
    parser.add_argument("--accuracy", action="store_true", help="synthetic roots; loss and held-out F1 per mode")
    parser.add_argument("--f1-tolerance", type=float, default=0.01, help="|F1 - fp32 F1| for accuracy_holds")
    parser.add_argument(
        "--cpu-study",
        action="store_true",
        help="every mode incl. compile_fp32/compile_bf16, adamw, --accuracy, batch 4, CPU (default net: narrow)",
    )
    parser.add_argument("--mode", default="compile", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=None, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed first steps (compile happens here)")
    parser.add_argument(
        "--compile-budget", type=float, default=None, help="s for compile + steps (default 60 with --quick, else 600)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: all; a loaded shared machine: try 1)"
    )
    parser.add_argument(
        "--compile-backend", default="inductor", help="torch.compile backend (aot_eager: no codegen, smoke runs)"
    )
    parser.add_argument("--one-compile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.one_compile:  # internal: bench_compiled's subprocess
        device = torch.device(args.device)
        figures = bench(
            args.net,
            args.mode,
            args.batch_sizes[0],
            device,
            args.steps,
            args.warmup,
            args.compile_backend,
            args.optimizer,
            args.accuracy,
        )
        print(json.dumps(figures), flush=True)
        return 0
    if args.quick:
        if args.net == "smith":
            parser.error("--quick times the tiny net; drop --quick for --net smith")
        args.net = "tiny"
        args.batch_sizes = args.batch_sizes or [4, 8]
        args.steps = args.steps or 3
        args.warmup = args.warmup or 2
    if args.cpu_study:
        args.net, args.device, args.optimizer, args.accuracy = args.net or "narrow", "cpu", "adamw", True
        args.batch_sizes = args.batch_sizes or [4]
        args.modes = args.modes or list(MODES + EXTRA_MODES)
    args.modes = args.modes or list(MODES)
    args.net = args.net or "tiny"
    args.batch_sizes = args.batch_sizes or [4, 8, 16, 32]
    args.steps = args.steps or 5
    args.warmup = args.warmup or 3
    args.compile_budget = args.compile_budget or (60.0 if args.quick else 600.0)
    if args.device == "all":
        devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    else:
        devices = [torch.device(args.device)]
    if any(d.type == "cuda" for d in devices):
        torch.backends.cudnn.benchmark = True
    for device in devices:
        run_device(args, device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
