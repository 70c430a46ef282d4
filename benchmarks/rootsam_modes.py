"""Prompt-free RootSAM on a whole 2550 x 2273 scan: promptless, the filtered grid and the 16 x 16 grid (JSON).

SAM 2.1 Hiera-T with random weights (speed does not depend on them) on the CPU, through the code eval and
predict run (`rootseg.inference.rootsam.RootSAMInference`), at both stages of Parth et al.:
stage 1 resizes the scan to 2560 x 2560 and cuts 512 px tiles, stage 2 resizes to 2048 and cuts 1024 px tiles;
every tile goes to the encoder at SAM's 1024 px, so a tile costs the same at either stage and the stages
differ in how many tiles a scan has.

- promptless: the sliding window over the stage's square, one promptless decoder pass per tile, half-tile
  steps (the default: stage 1 81 tiles, stage 2 9) and `step=tile` (the stage's own grid: 25 and 4 tiles);
- grid: the stage's tile grid, 16 x 16 clicks per tile decoded 64 at a time; `filtered` keeps each of a
  click's masks only with predicted IoU > 0.8 and stability >= 0.95 (sam2's automatic mask generator),
  `unfiltered` keeps all. The IoU filter skips the upsampling of the masks it drops; with random weights
  nearly all are dropped. (The timings in README were measured with the earlier filter, best mask per click.)

The encoder's share is timed on its own (`RootSAMModule.embeddings` of one tile). Whole scans at both stages
take tens of minutes on 2 cores, so by default one tile of each kind of work is timed (`--repeats`, median)
and scans are the tile counts times those costs plus the scan's resizing; `--full stage2` (or `stage1`) also
times that stage's promptless scans end to end, checking the extrapolation.

    python benchmarks/rootsam_modes.py                        # Hiera-T, 2 threads: ~5 min on an idle machine
    python benchmarks/rootsam_modes.py --full stage2          # + stage 2 promptless scans end to end
    python benchmarks/rootsam_modes.py --config micro --image-size 128 --repeats 1    # the test net, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from functools import partial
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from rootseg.inference.rootsam import RootSAMInference  # noqa: E402
from rootseg.inference.settings import InferenceSettings  # noqa: E402
from rootseg.models.rootsam import RootSAM  # noqa: E402
from rootseg.models.sam2_builder import SAM2_MICRO_OVERRIDES  # noqa: E402
from rootseg.prompts.sampling import grid_points  # noqa: E402
from rootseg.tasks.losses import SAMLoss  # noqa: E402
from rootseg.tasks.rootsam import RootSAMModule  # noqa: E402
from rootseg.tiling.grid import tile_grid  # noqa: E402
from rootseg.tiling.resize import resize_image, tile_origins  # noqa: E402

SCAN = (2273, 2550)  # height, width of a CI-600 scan
STAGES = {"stage1": (2560, 512), "stage2": (2048, 1024)}
GRID_SIDE = 16


def build_module(config: str, image_size: int) -> RootSAMModule:
    """RootSAM with random weights, trained for clicks and no clicks (so every mode may run)."""
    overrides = dict(SAM2_MICRO_OVERRIDES) if config == "micro" else {"image_size": image_size}
    net = RootSAM(config_name="sam2.1_hiera_t" if config == "micro" else config, overrides=overrides)
    optimizer = partial(torch.optim.AdamW, lr=1e-5)
    module = RootSAMModule(net, SAMLoss(), optimizer, prompt_mode="mixed", grid_points_per_side=GRID_SIDE)
    return module.eval()


#: process CPU seconds of every timed piece of work, beside its wall-clock seconds (see `cpu_seconds`)
CPU_TIMES: list[tuple[float, float]] = []


def _median_time(work, repeats: int) -> float:
    """Median wall-clock seconds of `work`; its process CPU seconds go to CPU_TIMES (a busy shared machine
    stretches wall time, CPU time much less)."""
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        work()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    CPU_TIMES.append((statistics.median(times), statistics.median(cpu)))
    return statistics.median(times)


def unit_costs(module: RootSAMModule, tile: int, repeats: int, grid_repeats: int) -> dict[str, float]:
    """Seconds for one tile's encoder pass, one promptless decoder pass, and one tile of grid decoding
    (16 x 16 clicks, 64 per decoder call) filtered and unfiltered, each a median over `repeats`."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (tile, tile, 3), dtype=np.uint8)
    batch = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))[None]
    clicks = grid_points(tile, tile, GRID_SIDE)
    with torch.inference_mode():
        module.embeddings(batch)  # warm-up
        encoder = _median_time(lambda: module.embeddings(batch), repeats)
        costs = {"encoder_per_tile_s": encoder, "encoder_per_tile_cpu_s": CPU_TIMES[-1][1]}
        embeddings = module.embeddings(batch)
        costs["promptless_decode_per_tile_s"] = _median_time(lambda: module.net.decode_promptless(embeddings), repeats)
        costs["promptless_decode_per_tile_cpu_s"] = CPU_TIMES[-1][1]
        for name, settings in (
            ("filtered", InferenceSettings(prompt_free="grid")),
            ("unfiltered", InferenceSettings(prompt_free="grid", min_predicted_iou=0.0, min_stability=0.0)),
        ):
            inference = RootSAMInference(module, settings, torch.device("cpu"))
            tile_work = partial(inference._predict_tile, pixels, clicks, None, torch.device("cpu"))
            whole = _median_time(tile_work, grid_repeats)
            costs[f"grid_{name}_per_tile_s"] = whole  # encoder included
            costs[f"grid_{name}_per_tile_cpu_s"] = CPU_TIMES[-1][1]
    return costs


def scan_overhead(size: int) -> float:
    """Resizing the scan to the stage's square and the probabilities back (every mode does both)."""
    scan = np.random.default_rng(1).integers(0, 255, (*SCAN, 3), dtype=np.uint8)

    def work() -> None:
        resized = resize_image(scan, size)
        probs = resized[..., 0].astype(np.float32)
        resize_image(probs[..., None], SCAN[0])

    return _median_time(work, 3)


def stage_table(stage: str, costs: dict[str, float]) -> dict[str, Any]:
    """Seconds per scan of each mode at one stage (from that stage's tile costs), with the encoder's share;
    `seconds` from wall-clock unit times, `cpu_seconds` from process CPU times, ratios from both."""
    size, tile = STAGES[stage]
    overhead = scan_overhead(size)
    n_grid = len(tile_origins(size, tile))
    rows: dict[str, Any] = {}
    for clock, suffix in (("seconds", "_s"), ("cpu_seconds", "_cpu_s")):
        encoder = costs[f"encoder_per_tile{suffix}"]
        per_tile = {
            "promptless_half_step": encoder + costs[f"promptless_decode_per_tile{suffix}"],
            "promptless_step_tile": encoder + costs[f"promptless_decode_per_tile{suffix}"],
            "grid16_filtered": costs[f"grid_filtered_per_tile{suffix}"],
            "grid16_unfiltered": costs[f"grid_unfiltered_per_tile{suffix}"],
        }
        steps = {"promptless_half_step": tile // 2, "promptless_step_tile": tile}
        for name, cost in per_tile.items():
            n = len(tile_grid(size, size, tile, steps[name])) if name in steps else n_grid
            row = rows.setdefault(name, {"tiles": n})
            row[clock] = n * cost + (overhead if clock == "seconds" else 0.0)
            row[f"encoder_{clock}"] = n * encoder
            row[f"x_encoder_alone_{clock}"] = row[clock] / row[f"encoder_{clock}"]
    for clock in ("seconds", "cpu_seconds"):
        grid = rows["grid16_unfiltered"][clock]
        for name in ("promptless_half_step", "promptless_step_tile", "grid16_filtered"):
            rows[name][f"x_faster_than_grid16_{clock}"] = grid / rows[name][clock]
    return {"resize": size, "tile": tile, "scan_resize_s": overhead, "unit_costs": costs, "modes": rows}


def full_promptless(module: RootSAMModule, stage: str) -> dict[str, float]:
    """Whole promptless scans end to end (RootSAMInference), half-tile steps and step=tile."""
    size, tile = STAGES[stage]
    scan = np.random.default_rng(2).integers(0, 255, (*SCAN, 3), dtype=np.uint8)
    out = {}
    for name, step in (("promptless_half_step", None), ("promptless_step_tile", "tile")):
        settings = InferenceSettings(resize=size, tile=tile, step=step)
        inference = RootSAMInference(module, settings, torch.device("cpu"))
        start, start_cpu = time.perf_counter(), time.process_time()
        inference(scan)
        out[name] = time.perf_counter() - start
        out[f"{name}_cpu"] = time.process_time() - start_cpu
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="sam2.1_hiera_t", help="sam2 config, or micro (the test net)")
    parser.add_argument("--image-size", type=int, default=1024, help="SAM's input side (Meta's: 1024)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="encoder and promptless timings (median)")
    parser.add_argument("--grid-repeats", type=int, default=1, help="grid tiles (each is 4 decoder calls)")
    parser.add_argument("--full", nargs="*", choices=sorted(STAGES), default=[], help="end-to-end promptless scans")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    module = build_module(args.config, args.image_size)
    result: dict[str, Any] = {
        "config": args.config,
        "image_size": args.image_size,
        "weights": "random",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "load_average_before": os.getloadavg(),
        "scan": {"height": SCAN[0], "width": SCAN[1]},
    }
    result["stages"] = {
        stage: stage_table(stage, unit_costs(module, tile, args.repeats, args.grid_repeats))
        for stage, (_, tile) in STAGES.items()
    }
    for stage in args.full:
        result["stages"][stage]["end_to_end_s"] = full_promptless(module, stage)
    result["load_average_after"] = os.getloadavg()
    print(json.dumps(result, indent=2, default=lambda x: round(x, 4) if isinstance(x, float) else str(x)))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
