"""U-Net training throughput: tiles/s of forward + backward + SGD step, fp32 eager vs the fast paths.

Modes (each on random tiles and masks; speed does not depend on the values):
- `fp32`: eager, float32, NCHW - the baseline;
- `bf16`: `torch.autocast(bfloat16)` around forward and loss;
- `channels_last`: fp32, channels_last weights and inputs (cuDNN / oneDNN NHWC kernels);
- `bf16_channels_last`: both;
- `compile`: bf16 + channels_last + `torch.compile` - the configuration the issue's GPU goal refers to.
  It runs in a subprocess per batch size, killed after `--compile-budget` s (60 with `--quick`, where only
  the largest batch size is compiled): compile time (the warm-up steps) is reported apart and excluded
  from tiles/s. `--compile-backend` picks torch.compile's backend (default inductor; `aot_eager` traces
  without code generation: seconds on a CPU, for smoke runs of the compile path).
- GPU busy share (CUDA only): the share of wall time the GPU runs kernels over `--steps` untimed back-to-back
  steps on a resident batch (kernel intervals from torch.profiler, merged where they overlap). Below 1: the
  step waits on the CPU (kernel launches, Python), which CUDA graphs or larger batches would hide.

Loss and optimiser are the paper's: Dice + 0.3 CE (`rootseg.tasks.losses.DiceCELoss`), SGD Nesterov momentum 0.99.
Peak memory: GPU `torch.cuda.max_memory_allocated`; CPU peak resident set (VmHWM, reset per run through
/proc/self/clear_refs) minus the resident set before the run. Prints one JSON object per device; `ratio` of
each mode = its tiles/s / fp32 tiles/s at the same batch size.

    python benchmarks/train_step.py --quick                  # tiny net, batch 4 and 8, CPU (< 3 min)
    python benchmarks/train_step.py --net smith --device cuda --batch-sizes 4 8 16 32

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
    "smith": ({"base_channels": 64, "depth": 4, "groups": 32}, 572, 388),
}
MODES = ("fp32", "bf16", "channels_last", "bf16_channels_last", "compile")


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
        self, net_name: str, mode: str, batch_size: int, device: torch.device, backend: str = "inductor"
    ) -> None:
        kwargs, self.tile_in, self.tile_out = NETS[net_name]
        torch.manual_seed(0)
        self.device, self.mode = device, mode
        self.net = UNet(**kwargs).to(device)
        self.channels_last = mode in ("channels_last", "bf16_channels_last", "compile")
        self.autocast = mode in ("bf16", "bf16_channels_last", "compile")
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.loss = DiceCELoss()
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=0.01, momentum=0.99, nesterov=True)
        generator = torch.Generator().manual_seed(1)
        images = torch.rand(batch_size, 3, self.tile_in, self.tile_in, generator=generator) * 255
        masks = (torch.rand(batch_size, self.tile_out, self.tile_out, generator=generator) < 0.1).long()
        layout = torch.channels_last if self.channels_last else torch.preserve_format
        self.images = images.to(device, memory_format=layout)
        self.masks = masks.to(device)
        self.step_fn = torch.compile(self._step, backend=backend) if mode == "compile" else self._step

    def _step(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            loss = self.loss(self.net(images), masks)
        loss.backward()
        return loss

    def step(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.step_fn(self.images, self.masks)
        self.optimizer.step()


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
) -> dict[str, Any]:
    """Tiles/s over `steps` timed steps after `warmup` (compile and kernel selection happen in warm-up)."""
    baseline = _reset_peak(device)
    runner = Runner(net_name, mode, batch_size, device, backend)
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
    if mode == "compile":
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
    command = [sys.executable, __file__, "--one-compile", "--net", args.net, "--device", str(device)]
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
        "load_average_1min_start": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    modes = list(args.modes)
    rows: dict[str, dict[str, Any]] = {}
    for batch_size in args.batch_sizes:
        row: dict[str, Any] = {}
        for mode in modes:
            if mode == "compile":
                if not args.quick or batch_size == max(args.batch_sizes):
                    row[mode] = bench_compiled(args, batch_size, device, args.compile_budget)
                continue
            try:
                row[mode] = bench(args.net, mode, batch_size, device, args.steps, args.warmup)
            except torch.OutOfMemoryError:
                row[mode] = {"error": "out of memory"}
                if device.type == "cuda":
                    torch.cuda.empty_cache()
        base = row.get("fp32", {}).get("tiles_per_s")
        for figures in row.values():
            if base and "tiles_per_s" in figures:
                figures["ratio"] = round(figures["tiles_per_s"] / base, 3)
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
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
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
        figures = bench(args.net, "compile", args.batch_sizes[0], device, args.steps, args.warmup, args.compile_backend)
        print(json.dumps(figures), flush=True)
        return 0
    if args.quick:
        if args.net == "smith":
            parser.error("--quick times the tiny net; drop --quick for --net smith")
        args.net = "tiny"
        args.batch_sizes = args.batch_sizes or [4, 8]
        args.steps = args.steps or 3
        args.warmup = args.warmup or 2
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
