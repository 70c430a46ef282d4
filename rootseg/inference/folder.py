"""`predict(cfg)`: segment a folder (or glob) of scans into an output folder, resumably, in shards if asked.

Every image goes through `rootseg.inference.predictor.Predictor`, the object eval scores with, so eval's
numbers describe these masks. Per image the output folder gets the files of `rootseg.inference.outputs` and a
record; `results.csv` (one row per image: size, root pixels and fraction, skeleton root length in px and, with
`dpi=` or `mm_per_pixel=`, in mm; uncertainty; seconds; the root traits of `rootseg.measure.traits` unless
`traits=false`, and their error bars and the `unreliable` flag of `rootseg.measure.intervals` unless
`interval=null`), `ranked.csv` (most uncertain first) and `failures.csv` are rebuilt from the records after
each image (`rootseg.inference.records`).

Every file is written to a temporary name and renamed, so a killed run leaves only whole files. Re-running
the same command skips every image done earlier from the same source (`rootseg.inference.claims`: path, size
and content; a same-named other image is refused, `overwrite=true` redoes them), so it resumes where the last
run stopped; predict never writes over a file it did not write. `shard=K/N` segments every N-th image from
the K-th: N processes (or SLURM array jobs) with the same input and output split the folder, and results.csv
holds every image once the last one ends (each shard says at the end how many the others still owe). One
process per shard and folder: a second is refused by name (`rootseg.inference.locks`).

An unreadable image is reported by name and skipped; the others are still segmented, the failures are listed
at the end and in `failures.csv`, and the command exits with status 1.

Paths holding spaces or non-ASCII characters must be quoted for Hydra's override parser, quotes inside the
shell's: `'input="/data/my scans"'`, `"output='/data/Wurzel é'"`.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rootseg.config import typed
from rootseg.inference.claims import check_claims, check_foreign_files, write_claim
from rootseg.inference.jobs import Job, find_images, parse_shard, plan_jobs, shard_jobs
from rootseg.inference.locks import shard_lock
from rootseg.inference.notices import owed_by_other_shards, warn_heavy_step
from rootseg.inference.outputs import output_paths, save_probs_mode, write_extras, write_mask, write_rve_from_mask
from rootseg.inference.predictor import Predictor
from rootseg.inference.records import (
    CSV_NAME,
    ensure_record,
    measure_interval,
    measure_row,
    rebuild_tables,
    write_failure,
    write_record,
)
from rootseg.inference.settings import settings_from_config
from rootseg.inference.uncertainty import uncertainty_score
from rootseg.io.atomic import write_if_changed
from rootseg.io.disk import check_writable
from rootseg.io.headers import set_pixel_budget
from rootseg.io.images import ImageReadError, open_image
from rootseg.measure.length import LENGTH_METHODS
from rootseg.measure.settings import resolve_traits
from rootseg.tasks.checkpoints import checkpoint_file

log = logging.getLogger(__name__)

CONFIG_NAME = "predict_config.yaml"
# temporary files of rootseg.io.atomic.atomic_path: ".<stem>.<random>.tmp<suffix>"
_TEMPORARY = re.compile(r"^\..+\.tmp(\.[A-Za-z0-9]+)?$")


def _remove_temporaries(output: Path) -> None:
    """Temporary files a killed run (SIGKILL, power cut) left behind; a clean exit leaves none."""
    for folder in (output, output / ".rootseg" / "records", output / ".rootseg" / "failures"):
        if folder.is_dir():
            for path in folder.iterdir():
                if path.is_file() and _TEMPORARY.match(path.name):
                    path.unlink(missing_ok=True)


#: the typed settings of conf/predict.yaml besides the inference ones (rootseg.config.typed)
SETTINGS = {
    "save_rootpainter": typed.Bool(),
    "save_overlay": typed.Bool(),
    "rve": typed.Bool(),
    "overwrite": typed.Bool(),
    "min_free_disk_mb": typed.Number(low=0, unit="MB", optional=True),
    "max_image_pixels": typed.Number(whole=True, low=1, optional=True),
}


def _check_config(cfg: DictConfig) -> None:
    """Fail on a bad option before the checkpoint is loaded, not after the first image."""
    for key in ("ckpt_path", "input", "output"):
        if OmegaConf.is_missing(cfg, key) or cfg.get(key) in (None, ""):
            raise ValueError(
                f"{key} is required: python -m rootseg.predict ckpt_path=<run dir>/checkpoints/<name>.ckpt "
                "input=<folder or glob of images> output=<folder for the masks>"
            )
    if cfg.length_method not in LENGTH_METHODS:
        raise ValueError(f"length_method must be one of {LENGTH_METHODS}, got {cfg.length_method!r}")
    typed.check(cfg, SETTINGS)


def _write_config(output: Path, cfg: DictConfig, predictor: Predictor, overwrite: bool) -> None:
    """Record what produced the outputs; warn when a resumed run would mix different settings."""
    current = {
        "ckpt_path": str(checkpoint_file(cfg.ckpt_path).resolve()),  # a shipped model's name: its file
        "input": str(cfg.input),
        "save_probs": str(cfg.get("save_probs")),
        **{key: value for key, value in predictor.describe().items() if key != "device"},
    }
    path = output / CONFIG_NAME
    if path.is_file() and not overwrite:
        try:
            earlier = OmegaConf.to_container(OmegaConf.load(path))
        except Exception:  # an unreadable record only loses the warning
            earlier = {}
        skip = ("input", "save_probs")
        changed = [k for k in current if k not in skip and isinstance(earlier, dict) and earlier.get(k) != current[k]]
        if changed:
            log.warning(
                "%s: %s differ from the earlier run into this folder; images done then are kept as they are "
                "(overwrite=true redoes them)",
                output,
                ", ".join(changed),
            )
    write_if_changed(path, OmegaConf.to_yaml(OmegaConf.create(current)))


def segment_image(job: Job, predictor: Predictor, paths: dict[str, Path], cfg: DictConfig) -> dict[str, Any]:
    """One image: probabilities, mask, every output file (the mask last), and its record's row."""
    start = time.perf_counter()
    image = open_image(job.path)  # a memory-mapped LazyImage for uncompressed TIFFs
    probs = predictor.probabilities(image, job.path)
    mask = predictor.mask(probs)
    write_extras(paths, image, probs, mask, bool(cfg.save_rootpainter), bool(cfg.save_overlay))
    uncertainty = uncertainty_score(probs, predictor.threshold)  # ranked.csv: the images to correct first
    traits = resolve_traits(cfg)
    interval = measure_interval(probs, predictor.threshold, traits)
    del probs  # 4 bytes per pixel, no longer needed
    clean = None if traits is None else traits.clean
    row = measure_row(job, mask, cfg.length_method, traits=traits is not None, uncertainty=uncertainty, clean=clean)
    if interval is not None:
        row["interval"] = interval
    row["seconds"] = time.perf_counter() - start
    return row, mask


def _progress(total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="img", desc="segmenting", dynamic_ncols=True, file=sys.stderr)


def _todo(output: Path, jobs: list[Job], done: set[Job], cfg: DictConfig, save_probs: str, rve: bool) -> list:
    """The jobs to segment with their output paths; a job done earlier keeps its outputs (and gets its record,
    or its RhizoVision mask when `rve=true` is new)."""
    todo, traits = [], resolve_traits(cfg)
    clean, interval = (None, None) if traits is None else (traits.clean, traits.interval)
    for job in jobs:
        paths = output_paths(output, job.stem, save_probs, rve)
        measured = (cfg.length_method, traits is not None, clean, interval)
        kept = job in done and ensure_record(output, job, paths["mask"], *measured)
        if not kept:
            todo.append((job, paths))
        elif rve and not paths["rve"].is_file():
            write_rve_from_mask(paths)
    return todo


def predict(cfg: DictConfig) -> dict[str, Any]:
    """Segment this run's share of the input images into `cfg.output`; returns counts, failures and the CSV.

    Resumable: images done earlier from the same source (`rootseg.inference.claims`) are skipped (unless
    `overwrite`) and keep their rows; a same-named other image is refused.
    """
    _check_config(cfg)
    set_pixel_budget(cfg.get("max_image_pixels"))
    settings = settings_from_config(cfg)
    save_probs = save_probs_mode(cfg.get("save_probs"))
    traits, rve = resolve_traits(cfg), bool(cfg.get("rve", False))
    shard, shards = parse_shard(cfg.get("shard"))
    output = Path(str(cfg.output)).expanduser()
    all_jobs = plan_jobs(find_images(cfg.input), output)
    jobs = shard_jobs(all_jobs, shard, shards)
    check_writable(output, float(cfg.get("min_free_disk_mb") or 0), "output folder")
    check_foreign_files(output, all_jobs, save_probs, rve)
    overwrite = bool(cfg.overwrite)
    with shard_lock(output, shard, shards) as alone:
        if alone:
            _remove_temporaries(output)
        ours = check_claims(output, jobs, overwrite)
        done = set() if overwrite else set(ours)
        predictor = Predictor.from_checkpoint(cfg.ckpt_path, settings)
        predictor.bind_images([job.path for job in all_jobs])
        _write_config(output, cfg, predictor, overwrite)
        todo = _todo(output, jobs, done, cfg, save_probs, rve)
        skipped = len(jobs) - len(todo)
        rebuild_tables(output, all_jobs, settings.mm_per_pixel, traits)
        which = f" (shard {shard}/{shards} of {len(all_jobs)})" if shards > 1 else ""
        log.info(
            "%d images in %s%s: %d to segment, %d done earlier; %s on %s",
            *(len(jobs), cfg.input, which, len(todo), skipped, predictor.kind, predictor.device),
        )
        warn_heavy_step(predictor, [job.path for job, _ in todo])
        summary = _run(todo, predictor, cfg, output, all_jobs, (settings.mm_per_pixel, traits))
    summary.update({"skipped": skipped, "images": len(jobs), "output": str(output), "csv": str(output / CSV_NAME)})
    for failure in summary["failures"]:
        print(f"FAILED {failure['name']}: {failure['error']}")
    print(
        f"{summary['segmented']} segmented, {skipped} skipped (already done), {summary['failed']} failed; "
        f"output: {output}"
    )
    summary["owed"] = owed_by_other_shards(output, all_jobs, shard, shards)
    return summary


def _run(todo, predictor: Predictor, cfg: DictConfig, output: Path, all_jobs, tables: tuple) -> dict[str, Any]:
    """Segment `todo` in order; an unreadable image is recorded as a failure and the rest go on."""
    failures: list[dict[str, str]] = []
    segmented = pixels = 0
    started = time.perf_counter()
    bar = _progress(len(todo))
    try:
        for job, paths in todo:
            try:
                write_claim(output, job)  # before any output: these files are predict's, from this image
                row, mask = segment_image(job, predictor, paths, cfg)
            except ImageReadError as error:
                failures.append({"name": job.name, "path": str(job.path), "error": str(error)})
                write_failure(output, job, str(error))
                log.error("skipped unreadable image %s (%s)", job.name, error)
            except Exception as error:
                if not isinstance(error, OSError):  # an OSError (a full disk) gets its paragraph below
                    log.error("failed on %s", job.path)
                raise
            else:
                write_record(output, job, row)
                write_mask(paths["mask"], mask)  # last: the image is now done
                segmented += 1
                pixels += int(row["height"]) * int(row["width"])
                elapsed = max(time.perf_counter() - started, 1e-9)
                bar.set_postfix(MP_s=f"{pixels / 1e6 / elapsed:.2f}", refresh=False)
            rebuild_tables(output, all_jobs, *tables)
            bar.update(1)
    except KeyboardInterrupt as error:
        error.add_note(
            f"interrupted: {segmented} segmented in this run; run the same command again to resume "
            f"(outputs in {output})"
        )
        raise
    except OSError as error:  # a full disk, a read-only folder: nothing more can be written
        error.add_note(
            f"(while writing the outputs of {job.name}, after {segmented} images segmented in this run; every "
            f"finished image is kept in {output}: run the same command again to resume)"
        )
        raise
    finally:
        bar.close()
    seconds = time.perf_counter() - started
    return {
        "segmented": segmented,
        "failed": len(failures),
        "failures": failures,
        "seconds": seconds,
        "megapixels_per_s": pixels / 1e6 / seconds if segmented and seconds > 0 else None,
    }
