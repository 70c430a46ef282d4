"""`python -m rootseg.predict ckpt_path=CKPT input=DIR_OR_GLOB output=DIR`: segment a folder of scans.

For every image `<stem>.<ext>` the output folder gets

- `<stem>.png`: the binary mask (0 background, 255 root), written *last*: it marks the image as done;
- `<stem>_rootpainter.png`: RootPainter's segmentation format (RGBA, cyan root), if `save_rootpainter`;
- `<stem>_overlay.jpg`: the prediction drawn over the photo, if `save_overlay`;
- `<stem>_prob.png` (grey 0-255) or `<stem>_prob.npy` (float32), if `save_probs` is png or npy;

and `results.csv` one row per image (size, root pixels and fraction, skeleton root length in px and, with
`resolution=` mm/px or `dpi=`, in mm; seconds). Every file is written to a temporary name and renamed, and
results.csv is rewritten after each image, so a killed run leaves only whole files and the rows of the
images it finished. Re-running the same command skips every image whose mask exists (`overwrite=true`
redoes them) and keeps their rows, so it resumes where the last run stopped. One run per output folder:
a run removes temporary files other runs left there.

An unreadable image is reported by name and skipped; the others are still segmented, the failures are
listed at the end and in `failures.csv`, and the command exits with status 1.

Paths holding spaces or non-ASCII characters must be quoted for Hydra's override parser, quotes inside
the shell's: `'input="/data/my scans"'`, `"output='/data/Wurzel é'"`.

Each model kind has a predictor factory in `PREDICTORS` (`kind -> (module, cfg, device, images) ->
(image, path) -> probabilities`): the U-Net (blended sliding window), RootSAM (clicks from `prompts=FILE`,
a CSV with columns image,x,y or a JSON {image: [[x, y], ...]}; prompt-free grid clicks for images without
any) and the Frangi baseline. A click file names an image by its file name (`tube1.d10.jpg`: that file
only) or by its stem (`tube1.d10`: the image whose name is that plus an image suffix); a stem two input
images share (`a.jpg`, `a.png`) is refused with both names, before any image is segmented.

Memory: an uncompressed TIFF is memory-mapped and the U-Net reads it tile by tile
(`rootseg.data.io.open_image`); other formats are decoded whole, as uint8. The sliding window keeps one
float32 (H, W) buffer; the overlay is drawn in row blocks. RootSAM and Frangi take the whole image.
"""

from __future__ import annotations

import csv
import glob
import io
import logging
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from rootseg.data.io import (
    IMAGE_SUFFIXES,
    ImageReadError,
    LazyImage,
    atomic_path,
    open_image,
    read_mask,
    write_image,
    write_text,
)
from rootseg.inference import BLEND_MODES, sliding_window_probs
from rootseg.measure import LENGTH_METHODS, mm_per_pixel_from_dpi, skeleton_length
from rootseg.modules.loading import attach_prompt_proposer, load_module, set_click_grid
from rootseg.outputs import overlay, probability_to_uint8, write_rootpainter_segmentation
from rootseg.utils import cli
from rootseg.utils.cli import check_writable
from rootseg.utils.config import CONFIG_DIR

log = logging.getLogger("rootseg.predict")

CSV_NAME = "results.csv"
FAILURES_NAME = "failures.csv"
CONFIG_NAME = "predict_config.yaml"
CSV_COLUMNS = (
    "name",
    "path",
    "height",
    "width",
    "root_pixels",
    "root_fraction",
    "root_length_px",
    "root_length_mm",
    "seconds",
)
SAVE_PROBS = ("none", "png", "npy")
# settings that change what is written: a resumed run with different ones mixes two predictions
_OUTPUT_SETTINGS = ("ckpt_path", "step", "blend", "tta", "threshold")
# temporary files of rootseg.data.io.atomic_path: ".<stem>.<random>.tmp<suffix>"
_TEMPORARY = re.compile(r"^\..+\.tmp(\.[A-Za-z0-9]+)?$")

# (H, W, 3) uint8 image (or a LazyImage), the file it came from -> (H, W) root probability
Predictor = Callable[[np.ndarray | LazyImage, Path], np.ndarray]


# ------------------------------------------------------------------------------------------------ models
def _unet_predictor(module: Any, cfg: DictConfig, device: torch.device, images: Sequence[Path]) -> Predictor:
    """Blended sliding window over the U-Net; half-tile steps unless `step` is given. Reads a LazyImage
    tile by tile."""
    module.to(device)
    step = int(cfg.step) if cfg.get("step") else max(module.tile_out // 2, 1)

    def predict_image(image: np.ndarray | LazyImage, path: Path) -> np.ndarray:
        probs = sliding_window_probs(
            image,
            module.predict_tiles,
            tile_in=module.tile_in,
            tile_out=module.tile_out,
            step=step,
            blend=cfg.blend,
            tta=bool(cfg.tta),
            batch_size=int(cfg.batch_size),
            device=device,
            model=module,
        )
        return probs.numpy()

    return predict_image


def _click_key(name: str) -> str:
    """How a click file names an image: its file name when it has an image suffix, else its stem."""
    return Path(str(name)).name


def _names_a_file(key: str) -> bool:
    return Path(key).suffix.lower() in IMAGE_SUFFIXES


def read_prompt_file(path: str | Path) -> dict[str, np.ndarray]:
    """Clicks per image from a CSV (columns image, x, y) or a JSON ({"image": [[x, y], ...]}); pixel
    coordinates of the original image. Keys are the file names as given (`a.jpg`, `tube1.d10.png`) or
    stems (`a`, `tube1.d10`: anything without an image suffix), folders dropped; `assign_clicks` matches
    them to the input images."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"prompts={path}: no such file (a CSV with columns image,x,y or a JSON of clicks)")
    clicks: dict[str, list[list[float]]] = {}
    try:
        if path.suffix.lower() == ".json":
            import json

            for name, points in json.loads(path.read_text()).items():
                clicks.setdefault(_click_key(name), []).extend([float(p[0]), float(p[1])] for p in points)
        else:
            with path.open(newline="") as handle:
                for row in csv.DictReader(handle):
                    clicks.setdefault(_click_key(row["image"]), []).append([float(row["x"]), float(row["y"])])
    except (KeyError, ValueError, TypeError, IndexError) as error:
        raise ValueError(
            f"prompts={path}: cannot read clicks ({type(error).__name__}: {error}); expected "
            "CSV columns image,x,y or JSON {image: [[x, y], ...]}"
        ) from error
    return {name: np.asarray(points, np.float32).reshape(-1, 2) for name, points in clicks.items()}


def assign_clicks(
    clicks: dict[str, np.ndarray], images: Sequence[Path], source: str | Path = "prompts"
) -> dict[Path, np.ndarray]:
    """The clicks of each input image: a key with an image suffix matches that file name, any other key
    the image stem (`tube1.d10` is the stem of `tube1.d10.jpg`). A key that fits two input images (stem
    `a` for `a.jpg` and `a.png`, or one file name in two folders) raises ValueError naming both; keys
    matching no image are logged. An image named both ways gets both sets of clicks."""
    by_name: dict[str, list[Path]] = {}
    by_stem: dict[str, list[Path]] = {}
    for image in images:
        by_name.setdefault(image.name, []).append(image)
        by_stem.setdefault(image.stem, []).append(image)
    assigned: dict[Path, list[np.ndarray]] = {}
    unmatched = []
    for key, points in clicks.items():
        found = by_name.get(key, []) if _names_a_file(key) else by_stem.get(key, [])
        if len(found) > 1:
            first, second = found[:2]
            fix = (
                f"name the image with its suffix ({first.name} or {second.name})"
                if not _names_a_file(key)
                else "predict the folders separately"
            )
            raise ValueError(
                f"prompts={source}: the clicks for {key!r} fit two input images, {first} and {second}; {fix}"
            )
        if found:
            assigned.setdefault(found[0], []).append(points)
        else:
            unmatched.append(key)
    if unmatched:
        log.warning(
            "prompts=%s: no input image for the clicks of %s (name images by file name or stem)",
            source,
            ", ".join(sorted(unmatched)[:10]) + (" ..." if len(unmatched) > 10 else ""),
        )
    return {image: np.concatenate(parts) for image, parts in assigned.items()}


def _rootsam_predictor(module: Any, cfg: DictConfig, device: torch.device, images: Sequence[Path]) -> Predictor:
    """Clicks from `prompts=FILE` where an image has them (`assign_clicks`); otherwise prompt-free (a grid of
    clicks per tile), as RootSAM's module defines it."""
    module.to(device)
    source = cfg.get("prompts")
    clicks = assign_clicks(read_prompt_file(source), images, source) if source else {}

    def predict_image(image: np.ndarray | LazyImage, path: Path) -> np.ndarray:
        with torch.inference_mode():
            return module.predict_probs(np.asarray(image), prompts=clicks.get(Path(path))).float().cpu().numpy()

    return predict_image


def _whole_image_predictor(module: Any, cfg: DictConfig, device: torch.device, images: Sequence[Path]) -> Predictor:
    """Models that segment a whole image at once (the Frangi baseline)."""
    module.to(device)

    def predict_image(image: np.ndarray | LazyImage, path: Path) -> np.ndarray:
        return module.predict_probs(np.asarray(image)).float().cpu().numpy()

    return predict_image


#: model kind (`module.kind`, stored in the checkpoint) -> factory of a whole-image predictor
PREDICTORS: dict[str, Callable[[Any, DictConfig, torch.device, Sequence[Path]], Predictor]] = {
    "unet": _unet_predictor,
    "rootsam": _rootsam_predictor,
    "frangi": _whole_image_predictor,
}


def build_predictor(module: Any, cfg: DictConfig, device: torch.device, images: Sequence[Path]) -> Predictor:
    """The predictor of the checkpoint's model kind for the input `images` (RootSAM matches clicks to them)."""
    kind = getattr(module, "kind", None)
    if kind not in PREDICTORS:
        known = sorted(PREDICTORS)
        raise ValueError(f"{cfg.ckpt_path}: no predictor for model kind {kind!r}; known kinds: {known}")
    return PREDICTORS[kind](module, cfg, device, list(images))


# ------------------------------------------------------------------------------------------------ inputs
@dataclass(frozen=True)
class Job:
    path: Path  # the input image
    stem: str  # output file stem

    @property
    def name(self) -> str:
        return self.path.name


def find_images(spec: str | Path) -> list[Path]:
    """A folder's images (non-recursive, sorted, hidden files skipped), a glob's images, or one file."""
    text = str(spec)
    path = Path(text).expanduser()
    if path.is_dir():
        found = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
        images = [p for p in found if p.suffix.lower() in IMAGE_SUFFIXES]
        if not images:
            raise FileNotFoundError(f"input={text}: the folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
        return sorted(images)
    if path.is_file():
        return [path]
    if glob.has_magic(text):
        matches = [Path(p) for p in glob.glob(str(Path(text).expanduser()), recursive=True)]
        images = sorted(p for p in matches if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise FileNotFoundError(f"input={text}: the pattern matches no image files")
        return images
    raise FileNotFoundError(f"input={text}: no such folder or file, and not a glob pattern")


def plan_jobs(images: list[Path], output: Path) -> list[Job]:
    """Output stems for the images; `a.jpg` beside `a.png` become `a_jpg` and `a_png`."""
    output_resolved = output.resolve()
    for image in images:
        if image.resolve().parent == output_resolved:
            raise ValueError(
                f"output={output} is the folder the input image {image} is in: masks would overwrite or be "
                "read as inputs; choose another output folder"
            )
    stems = [p.stem for p in images]
    counts: dict[str, int] = {}
    for stem in stems:
        counts[stem] = counts.get(stem, 0) + 1
    jobs = []
    for image, stem in zip(images, stems):
        if counts[stem] > 1:
            stem = f"{stem}_{image.suffix.lstrip('.').lower()}"
        jobs.append(Job(image, stem))
    seen: dict[str, Path] = {}
    for job in jobs:
        if job.stem in seen:
            raise ValueError(
                f"{seen[job.stem]} and {job.path} would write the same outputs ({job.stem}.png); "
                "predict them into separate output folders"
            )
        seen[job.stem] = job.path
    return jobs


# ----------------------------------------------------------------------------------------------- outputs
def output_paths(output: Path, stem: str, save_probs: str) -> dict[str, Path]:
    paths = {
        "mask": output / f"{stem}.png",
        "rootpainter": output / f"{stem}_rootpainter.png",
        "overlay": output / f"{stem}_overlay.jpg",
    }
    if save_probs != "none":
        paths["probs"] = output / f"{stem}_prob.{save_probs}"
    return paths


def _write_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array)


def _format_row(row: dict[str, Any]) -> dict[str, str]:
    return {key: "" if row.get(key) is None else str(row[key]) for key in CSV_COLUMNS}


def read_results(path: Path) -> dict[str, dict[str, str]]:
    """Rows of an earlier run's results.csv by image name (empty when there is none or it is unreadable)."""
    if not path.is_file():
        return {}
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return {row["name"]: row for row in csv.DictReader(handle) if row.get("name")}
    except (OSError, csv.Error, UnicodeDecodeError, KeyError) as error:
        log.warning("%s: unreadable earlier results (%s); skipped images are re-measured", path, error)
        return {}


def write_results(path: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(_format_row(row) for row in rows)
    _write_if_changed(path, buffer.getvalue())


def _write_if_changed(path: Path, text: str) -> None:
    """Atomic write that leaves an identical file untouched, so a run with nothing to do changes nothing."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    write_text(path, text)


def measure_row(
    job: Job, mask: np.ndarray, mm_per_pixel: float | None, method: str, seconds: float | None
) -> dict[str, Any]:
    """The CSV row of one image from its boolean mask."""
    height, width = mask.shape
    root_pixels = int(np.count_nonzero(mask))
    length_px = skeleton_length(mask, method=method)
    return {
        "name": job.name,
        "path": str(job.path),
        "height": height,
        "width": width,
        "root_pixels": root_pixels,
        "root_fraction": f"{root_pixels / (height * width):.6f}",
        "root_length_px": f"{length_px:.3f}",
        "root_length_mm": None if mm_per_pixel is None else f"{length_px * mm_per_pixel:.3f}",
        "seconds": None if seconds is None else f"{seconds:.3f}",
    }


def _kept_row(
    job: Job, old: dict[str, str] | None, mask_path: Path, mm_per_pixel: float | None, method: str
) -> dict[str, Any] | None:
    """Row of an image done earlier: from the old CSV, else re-measured from its mask (None: unreadable).

    root_length_mm follows this run's resolution, so adding `resolution=` to a finished run fills it in.
    """
    if old is not None and old.get("root_length_px"):
        row: dict[str, Any] = dict(old)
        row["path"] = str(job.path)
        length_px = float(old["root_length_px"])
        row["root_length_mm"] = None if mm_per_pixel is None else f"{length_px * mm_per_pixel:.3f}"
        return row
    try:
        mask = read_mask(mask_path) == 1
    except ImageReadError:
        return None
    return measure_row(job, mask, mm_per_pixel, method, None)


def write_overlay(
    path: Path, image_rgb: np.ndarray | LazyImage, mask: np.ndarray, alpha: float = 0.6, rows: int = 1024, **save_kwargs
) -> Path:
    """`rootseg.outputs.write_overlay` drawn `rows` image rows at a time: the same file, without its float32
    copy of the whole image (1.3 GB for a 12000 x 9000 scan); a LazyImage is read block by block."""
    out = np.empty((*mask.shape, 3), np.uint8)
    for start in range(0, mask.shape[0], rows):
        stop = min(start + rows, mask.shape[0])
        out[start:stop] = overlay(np.asarray(image_rgb[start:stop]), mask[start:stop], alpha=alpha)
    return write_image(path, out, **save_kwargs)


def _remove_temporaries(output: Path) -> None:
    """Temporary files a killed run (SIGKILL, power cut) left behind; a clean exit leaves none."""
    for path in output.iterdir():
        if path.is_file() and _TEMPORARY.match(path.name):
            path.unlink(missing_ok=True)


# -------------------------------------------------------------------------------------------- settings
def resolve_device(name: str | None) -> torch.device:
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name}, but CUDA is not available here; use device=cpu or device=auto")
    return device


def resolve_mm_per_pixel(cfg: DictConfig) -> float | None:
    resolution, dpi = cfg.get("resolution"), cfg.get("dpi")
    if resolution is not None and dpi is not None:
        raise ValueError(f"give resolution= (mm per pixel) or dpi=, not both (got {resolution} and {dpi})")
    if dpi is not None:
        return mm_per_pixel_from_dpi(float(dpi))
    if resolution is not None:
        if float(resolution) <= 0:
            raise ValueError(f"resolution is mm per pixel and must be positive, got {resolution}")
        return float(resolution)
    return None


def _save_probs_mode(value: Any) -> str:
    mode = "none" if value in (None, False) else str(value).lower()
    if mode not in SAVE_PROBS:
        raise ValueError(f"save_probs must be one of {SAVE_PROBS}, got {value!r}")
    return mode


def _check_settings(cfg: DictConfig) -> None:
    """Fail on a bad option before the checkpoint is loaded, not after the first image."""
    for key in ("ckpt_path", "input", "output"):
        if OmegaConf.is_missing(cfg, key) or cfg.get(key) in (None, ""):
            raise ValueError(
                f"{key} is required: python -m rootseg.predict ckpt_path=<run dir>/checkpoints/<name>.ckpt "
                "input=<folder or glob of images> output=<folder for the masks>"
            )
    if not 0.0 < float(cfg.threshold) < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {cfg.threshold}")
    if cfg.blend not in BLEND_MODES:
        raise ValueError(f"blend must be one of {BLEND_MODES}, got {cfg.blend!r}")
    if cfg.length_method not in LENGTH_METHODS:
        raise ValueError(f"length_method must be one of {LENGTH_METHODS}, got {cfg.length_method!r}")
    if isinstance(cfg.batch_size, bool) or not isinstance(cfg.batch_size, int) or cfg.batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {cfg.batch_size!r}")
    if cfg.get("step") is not None and (not isinstance(cfg.step, int) or cfg.step < 1):
        raise ValueError(f"step must be a positive int (output pixels between tiles) or null: {cfg.step!r}")


def _write_config(output: Path, cfg: DictConfig, overwrite: bool) -> None:
    """Record what produced the outputs; warn when a resumed run would mix different settings."""
    keep = ("ckpt_path", "input", "step", "blend", "tta", "threshold", "save_probs", "resolution", "dpi")
    current = {key: cfg.get(key) for key in keep}
    current["ckpt_path"] = str(Path(str(cfg.ckpt_path)).expanduser().resolve())
    path = output / CONFIG_NAME
    if path.is_file() and not overwrite:
        try:
            earlier = OmegaConf.to_container(OmegaConf.load(path))
        except Exception:  # an unreadable record only loses the warning
            earlier = {}
        changed = [k for k in _OUTPUT_SETTINGS if isinstance(earlier, dict) and earlier.get(k) != current[k]]
        if changed:
            log.warning(
                "%s: %s differ from the earlier run into this folder; images done then are kept as they are "
                "(overwrite=true redoes them)",
                output,
                ", ".join(changed),
            )
    _write_if_changed(path, OmegaConf.to_yaml(OmegaConf.create(current)))


# ------------------------------------------------------------------------------------------------- run
def _segment(
    job: Job,
    predictor: Predictor,
    paths: dict[str, Path],
    cfg: DictConfig,
    mm_per_pixel: float | None,
) -> dict[str, Any]:
    start = time.perf_counter()
    image = open_image(job.path)  # a memory-mapped LazyImage for uncompressed TIFFs
    probs = predictor(image, job.path)
    mask = probs >= float(cfg.threshold)
    if "probs" in paths:
        if paths["probs"].suffix == ".npy":
            _write_npy(paths["probs"], probs.astype(np.float32, copy=False))
        else:
            write_image(paths["probs"], probability_to_uint8(probs))
    del probs  # 4 bytes per pixel, no longer needed
    if cfg.save_rootpainter:
        write_rootpainter_segmentation(paths["rootpainter"], mask)
    if cfg.save_overlay:
        write_overlay(paths["overlay"], image, mask, quality=90)
    row = measure_row(job, mask, mm_per_pixel, cfg.length_method, None)
    write_image(paths["mask"], mask.astype(np.uint8) * np.uint8(255))  # last: the image is now done
    row["seconds"] = f"{time.perf_counter() - start:.3f}"
    return row


def _progress(total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="img", desc="segmenting", dynamic_ncols=True, file=sys.stderr)


def predict(cfg: DictConfig) -> dict[str, Any]:
    """Segment every input image into `cfg.output`; returns counts, failures and the CSV path.

    Resumable: images whose mask exists are skipped (unless `overwrite`) and keep their CSV rows.
    """
    _check_settings(cfg)
    save_probs = _save_probs_mode(cfg.get("save_probs"))
    mm_per_pixel = resolve_mm_per_pixel(cfg)
    device = resolve_device(cfg.get("device"))
    output = Path(str(cfg.output)).expanduser()
    images = find_images(cfg.input)
    jobs = plan_jobs(images, output)
    check_writable(output, float(cfg.get("min_free_disk_mb") or 0), "output folder")
    _remove_temporaries(output)
    overwrite = bool(cfg.overwrite)

    module = load_module(cfg.ckpt_path)
    attach_prompt_proposer(module, cfg.get("prompt_ckpt"), device)
    set_click_grid(module, cfg.get("grid_points_per_side"))
    predictor = build_predictor(module, cfg, device, [job.path for job in jobs])
    _write_config(output, cfg, overwrite)

    csv_path = output / CSV_NAME
    old_rows = read_results(csv_path)
    rows: dict[str, dict[str, Any]] = {}  # by image name, in input order
    todo: list[tuple[Job, dict[str, Path]]] = []
    for job in jobs:
        paths = output_paths(output, job.stem, save_probs)
        row = None
        if paths["mask"].is_file() and not overwrite:
            row = _kept_row(job, old_rows.get(job.name), paths["mask"], mm_per_pixel, cfg.length_method)
        if row is None:
            todo.append((job, paths))
        else:
            rows[job.name] = row
    skipped = len(rows)
    # rows of images not in this run's input (an earlier run over a larger glob) stay in the CSV
    names = {job.name for job in jobs}
    extra = [row for name, row in old_rows.items() if name not in names]

    def ordered_rows() -> list[dict[str, Any]]:
        return [rows[job.name] for job in jobs if job.name in rows] + extra

    write_results(csv_path, ordered_rows())
    log.info(
        "%d images in %s: %d to segment, %d done earlier; %s on %s",
        len(jobs),
        cfg.input,
        len(todo),
        skipped,
        module.kind,
        device,
    )

    failures: list[dict[str, str]] = []
    segmented = 0
    pixels = 0
    started = time.perf_counter()
    bar = _progress(len(todo))
    try:
        for job, paths in todo:
            try:
                row = _segment(job, predictor, paths, cfg, mm_per_pixel)
            except ImageReadError as error:
                failures.append({"name": job.name, "path": str(job.path), "error": str(error)})
                log.error("skipped unreadable image %s (%s)", job.name, error)
            except Exception:
                log.error("failed on %s", job.path)
                raise
            else:
                rows[job.name] = row
                write_results(csv_path, ordered_rows())
                segmented += 1
                pixels += int(row["height"]) * int(row["width"])
                elapsed = max(time.perf_counter() - started, 1e-9)
                bar.set_postfix(MP_s=f"{pixels / 1e6 / elapsed:.2f}", refresh=False)
            bar.update(1)
    except KeyboardInterrupt:
        bar.close()
        print(
            f"interrupted: {segmented} segmented in this run; run the same command again to resume "
            f"(outputs in {output})",
            file=sys.stderr,
        )
        raise
    bar.close()
    seconds = time.perf_counter() - started

    failures_path = output / FAILURES_NAME
    if failures:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=("name", "path", "error"), lineterminator="\n")
        writer.writeheader()
        writer.writerows(failures)
        _write_if_changed(failures_path, buffer.getvalue())
    else:
        failures_path.unlink(missing_ok=True)

    summary = {
        "segmented": segmented,
        "skipped": skipped,
        "failed": len(failures),
        "failures": failures,
        "images": len(jobs),
        "output": str(output),
        "csv": str(csv_path),
        "seconds": seconds,
        "megapixels_per_s": pixels / 1e6 / seconds if segmented and seconds > 0 else None,
    }
    for failure in failures:
        print(f"FAILED {failure['name']}: {failure['error']}")
    failed = len(failures)
    print(f"{segmented} segmented, {skipped} skipped (already done), {failed} failed; output: {output}")
    return summary


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
def main(cfg: DictConfig) -> None:
    with cli.user_errors():
        summary = predict(cfg)
    if summary["failed"]:
        sys.exit(1)


def entry() -> None:
    """The `rootseg-predict` console script: `python -m rootseg.predict` with its error hints."""
    cli.run(main, "predict")


if __name__ == "__main__":
    entry()
