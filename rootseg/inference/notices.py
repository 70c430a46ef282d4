"""What a predict run tells its user beyond the counts: a window step that means hours per image, before the
first image, and the images other shards still owe, at the end."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rootseg.inference.jobs import Job
from rootseg.io.images import image_size

log = logging.getLogger(__name__)

#: model passes per image above which the step warns: 64x the 156 tiles of the default half-tile step of the
#: Smith U-Net (388 px output tiles) on a 2550 x 2273 CI-600 scan
MAX_TILES = 10_000
#: the rate that puts a time on it on a CPU: the tiny U-Net's 10.2-11.5 tiles/s on 2 threads
#: (benchmarks/RESULTS.md, `python benchmarks/predict.py --quick`); a larger net or RootSAM is slower
CPU_TILES_PER_S = 10.0


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def heavy_step_message(predictor: Any, height: int, width: int) -> str | None:
    """The warning for an image of this size, or None when its tiles stay within `MAX_TILES`."""
    tiles = predictor.tiles(height, width)
    if tiles is None or tiles <= MAX_TILES:
        return None
    default = max(predictor.tiles(height, width, default=True) or 1, 1)
    step = predictor.settings.step
    cost = f"{tiles / default:,.0f}x the {default:,} of the default step (half a tile)"
    if predictor.device.type == "cpu":
        cost += (
            f"; at {CPU_TILES_PER_S:g} tiles/s (the tiny U-Net on 2 CPU threads, benchmarks/RESULTS.md) that is at "
            f"least {_duration(tiles / CPU_TILES_PER_S)} per image"
        )
    return (
        f"step={step} makes {tiles:,} model passes per {width} x {height} image, {cost}. Leave step unset (half a "
        "tile, blended) or use step=tile (Smith et al.'s grid) unless you mean it"
    )


def warn_heavy_step(predictor: Any, images: Sequence[Path]) -> str | None:
    """Warn before any work when the first image whose header can be read would take that many passes."""
    for path in images:
        if (size := image_size(path)) is not None:
            message = heavy_step_message(predictor, *size)
            if message is not None:
                log.warning(message)
            return message
    return None


def owed_by_other_shards(output: Path, jobs: Sequence[Job], shard: int, shards: int) -> int:
    """After a shard's run: say how many images of the input other shards still owe (results.csv fills in as
    they finish); returns that count."""
    if shards < 2:
        return 0
    missing: dict[int, list[Job]] = {}
    done = 0
    for index, job in enumerate(jobs):
        if (output / f"{job.stem}.png").is_file():
            done += 1
        elif index % shards != shard:
            missing.setdefault(index % shards, []).append(job)
    owed = sum(len(group) for group in missing.values())
    if owed:
        which = ", ".join(f"shard={k}/{shards}: {len(group)}" for k, group in sorted(missing.items()))
        message = (
            f"results.csv in {output} holds {done} of the {len(jobs)} input images: other shards still "
            f"owe {owed} ({which}; e.g. {missing[min(missing)][0].name}). Run them with the same input and "
            "output; results.csv fills in as each finishes"
        )
        log.warning(message)
        print(message)
    return owed
