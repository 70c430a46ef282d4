"""How many seconds of a person's annotation each workflow needs before held-out images are segmented at F1 0.8.

A simulated annotator (`benchmarks/sim_annotator.py`, after RootPainter's `trainer/tests/sim_benchmark/`) with
a clock works on synthetic scans whose exact masks are known. The goal: every held-out image has a mask with
F1 >= `--goal` (0.8) against its truth. Workflows:

- (a) **manual**: paint each held-out image's roots with a brush until its F1 reaches the goal (background left
  implicit, which favours manual annotation: RootPainter and the annotate app also need the green brush).
- (b) **corrective**: RootPainter's protocol on a separate stream of crops. The first crops get initial
  annotations (roots painted, then background up to 10x the root pixels); after 2 images the U-Net trains
  (`rootseg.tasks.fit.train`, i.e. `python -m rootseg.train +experiment=unet_demo data=rootpainter
  model.init_ckpt=<previous> ...`) and trains again after every image; once its val F1 (on the stream's
  annotations/val) exceeds 0.2, the person only paints the model's errors (false negatives red, false
  positives green) and skips images without any. A new model replaces the old only when its val F1 is higher.
  After each round the held-out images are corrected with the current model until each reaches the goal; the
  workflow's cost for them is stream seconds + those correction seconds (only the looks once the model alone
  reaches the goal), and the summary says after how many images the stream pays off.
- (c) **rootsam**: per held-out image, a positive click on the largest missed root (its most interior pixel)
  makes RootSAM propose a mask through `Predictor.probabilities(image, clicks=...)`, the annotate app's path;
  a negative click goes on the proposal's largest false positive (up to `--max-negative`); the proposal is
  accepted when it raises the image's F1, else that root is painted with the brush; false positives of accepted
  masks are painted over with the background brush. Needs `--rootsam-ckpt` (skipped, with the reason, without).

Prints one JSON object (also written to `<out>/annotation_time.json`); experiments/annotation_time/README.md
has the numbers. Model time (training, prediction) is reported apart from the person's seconds.

    nice -n 10 python benchmarks/annotation_time.py --workflows a b --out logs/annotation_time   # ~20 min, 2 cores
    python benchmarks/annotation_time.py --workflows c --out logs/annotation_time --rootsam-ckpt CKPT   # adds (c)
    python benchmarks/annotation_time.py --quick --workflows a c --rootsam-ckpt CKPT    # a minute, mechanics only
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import sim_annotator as sim  # noqa: E402

HELD_OUT_SEED, STREAM_SEED = 910, 911  # SeedSequence(seed, spawn_key=(i,)): other images than any training set's


def synthetic(seed: int, n: int, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """n (image, bool truth) pairs of the synthetic generator."""
    from rootseg.synthetic.generator import generate_sample

    pairs = []
    for i in range(n):
        sample = generate_sample(np.random.SeedSequence(seed, spawn_key=(i,)), (size, size))
        pairs.append((sample.image, sample.mask.astype(bool)))
    return pairs


# ------------------------------------------------------------------------------------------- per image
def manual(clock: sim.Clock, truth: np.ndarray, goal: float) -> np.ndarray:
    """(a) Paint roots, largest first, until the painted mask reaches `goal` F1."""
    clock.look()
    tally = sim.Tally(np.zeros(truth.shape, bool), truth)
    for region in sim.components(truth):
        if tally.f1() >= goal:
            break
        window, painted = sim.paint(clock, region, truth, lambda w, p: tally.f1_with(w, tally.mask[w] | p) >= goal)
        tally.set(window, tally.mask[window] | painted)
    return tally.mask


def correct(clock: sim.Clock, predicted: np.ndarray, truth: np.ndarray, goal: float | None) -> tuple[np.ndarray, ...]:
    """Paint the model's errors, the largest region first: missed root red (inside the root), false root green
    (inside the background), until the corrected mask reaches `goal` (None: every error a brush reaches).
    Returns (corrected mask, root paint, background paint)."""
    clock.look()
    tally = sim.Tally(predicted, truth)
    background = ~truth
    paints = {True: np.zeros(truth.shape, bool), False: np.zeros(truth.shape, bool)}  # missed root -> its paint
    errors = [(r, True) for r in sim.groups(truth & ~predicted, truth)]
    errors += [(r, False) for r in sim.groups(predicted & ~truth, background)]
    for region, missed in sorted(errors, key=lambda item: -item[0].area):
        if goal is not None and tally.f1() >= goal:
            break

        def fixed(window: tuple[slice, slice], painted: np.ndarray, missed: bool = missed) -> np.ndarray:
            return tally.mask[window] | painted if missed else tally.mask[window] & ~painted

        done = None if goal is None else (lambda w, p, fixed=fixed: tally.f1_with(w, fixed(w, p)) >= goal)
        window, painted = sim.paint(clock, region, truth if missed else background, done)
        paints[missed][window] |= painted
        tally.set(window, fixed(window, painted))
    return tally.mask, paints[True], paints[False]


def interior_point(region: sim.Region) -> tuple[int, int]:
    """(x, y) in the image of the pixel deepest inside `region`: where a person clicks a root."""
    import cv2

    depth = cv2.distanceTransform(np.pad(region.mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(depth.argmax()), depth.shape)
    return int(x) + region.slices[1].start, int(y) + region.slices[0].start


def rootsam_clicks(
    clock: sim.Clock, propose: Any, image: np.ndarray, truth: np.ndarray, goal: float, max_negative: int
) -> tuple[np.ndarray, dict[str, int]]:
    """(c) Clicks on missed roots, proposals accepted when they help, the brush where they do not."""
    clock.look()
    tally = sim.Tally(np.zeros(truth.shape, bool), truth)
    background, whole = ~truth, sim.Region.whole(truth).slices
    counts = {"proposals": 0, "accepted": 0, "brushed": 0, "background_brushed": 0}
    for _ in range(500):  # every step fixes or gives up on one region, so this only bounds a bug
        if tally.f1() >= goal:
            break
        missed = sim.components(truth & ~tally.mask)
        false = sim.components(tally.mask & ~truth)
        if false and (not missed or false[0].area > missed[0].area):
            done = lambda w, p: tally.f1_with(w, tally.mask[w] & ~p) >= goal  # noqa: E731
            window, painted = sim.paint(clock, false[0], background, done)
            tally.set(window, tally.mask[window] & ~painted)
            counts["background_brushed"] += 1
            continue
        if not missed:
            break
        proposal = _click_object(clock, propose, image, truth, missed[0], max_negative, counts)
        if proposal is not None and tally.f1_with(whole, tally.mask | proposal) > tally.f1():
            clock.press()  # accept the mask
            tally.set(whole, tally.mask | proposal)
            counts["accepted"] += 1
        else:
            done = lambda w, p: tally.f1_with(w, tally.mask[w] | p) >= goal  # noqa: E731
            window, painted = sim.paint(clock, missed[0], truth, done)
            tally.set(window, tally.mask[window] | painted)
            counts["brushed"] += 1
    return tally.mask, counts


def _click_object(
    clock: sim.Clock,
    propose: Any,
    image: np.ndarray,
    truth: np.ndarray,
    region: sim.Region,
    max_negative: int,
    counts: dict[str, int],
) -> np.ndarray | None:
    """A positive click on `region`, then negative clicks on the proposal's false root while they help."""
    x, y = interior_point(region)
    clicks = [[x, y, 1]]
    clock.click((x, y))
    best = propose(image, np.array(clicks, np.float32))
    counts["proposals"] += 1
    for _ in range(max_negative):
        spill = sim.components(best & ~truth)
        if not spill:
            break
        nx, ny = interior_point(spill[0])
        clock.click((nx, ny))
        clicks.append([nx, ny, 0])
        proposal = propose(image, np.array(clicks, np.float32))
        counts["proposals"] += 1
        if sim.f1(proposal, truth) <= sim.f1(best, truth):
            break
        best = proposal
    return best


# ------------------------------------------------------------------------------------ (b) the stream
def annotation_rgba(root: np.ndarray, background: np.ndarray) -> np.ndarray:
    """RootPainter's annotation: red root, green background, transparent elsewhere."""
    from rootseg.io.arrays import IGNORE_INDEX
    from rootseg.io.rootpainter import encode_rootpainter_annotation

    mask = np.full(root.shape, IGNORE_INDEX, np.uint8)
    mask[background] = 0
    mask[root] = 1
    return encode_rootpainter_annotation(mask)


def initial(clock: sim.Clock, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RootPainter's initial annotation: the roots (the minority) painted generously, then background up to 10x
    as many pixels, far enough from roots that it is clearly background."""
    import cv2

    clock.look()
    root = np.zeros(truth.shape, bool)
    for region in sim.components(truth):
        window, painted = sim.paint(clock, region, truth)
        root[window] |= painted
    clear = ~cv2.dilate(truth.astype(np.uint8), sim.disk(4)).astype(bool)
    budget = 10 * int(root.sum())
    background = np.zeros(truth.shape, bool)
    window, painted = sim.paint(clock, sim.Region.whole(clear), clear, lambda w, p: int(p.sum()) >= budget)
    background[window] = painted
    return root, background


class Project:
    """A RootPainter project on disk for the stream: its images, and annotations/train|val as they are saved."""

    def __init__(self, folder: Path, stream: list[tuple[np.ndarray, np.ndarray]]) -> None:
        from PIL import Image

        self.dataset = folder / "sync" / "datasets" / "stream"
        self.dataset.mkdir(parents=True, exist_ok=True)
        self.names = [f"s{i:03d}" for i in range(len(stream))]
        for name, (image, _) in zip(self.names, stream):
            Image.fromarray(image).save(self.dataset / f"{name}.png")
        self.folder = folder / "sync" / "projects" / "sim"
        (self.folder / "annotations").mkdir(parents=True, exist_ok=True)
        info = {"name": "sim", "dataset": "stream", "file_names": [f"{n}.png" for n in self.names]}
        self.file = self.folder / "sim.seg_proj"
        self.file.write_text(json.dumps(info))
        self.counts = {"train": 0, "val": 0}

    def save(self, index: int, rgba: np.ndarray) -> str:
        """Train first, then val, then val whenever it holds fewer than a fifth of train (RootPainter's ~5:1)."""
        from rootseg.io.atomic import write_image

        train, val = self.counts["train"], self.counts["val"]
        split = "val" if train >= 1 and val * 5 < train else "train"
        write_image(self.folder / "annotations" / split / f"{self.names[index]}.png", rgba)
        self.counts[split] += 1
        return split


def fine_tune(project: Project, init: Path | None, run_dir: Path, epochs: int, seed: int) -> Path:
    """One round of `python -m rootseg.train +experiment=unet_demo data=rootpainter model.init_ckpt=<init>`, in
    this process; returns the round's best checkpoint (by val F1 on the stream's annotations/val)."""
    from rootseg.config.run_config import compose_task
    from rootseg.tasks.fit import train

    overrides = [
        "+experiment=unet_demo",
        "data=rootpainter",
        f"data.root={project.file}",
        f"trainer.max_epochs={epochs}",
        "trainer.enable_progress_bar=false",
        "test=false",
        "logger=csv",
        f"seed={seed}",
        f"paths.output_dir={run_dir}",
        f"paths.log_dir={run_dir.parent}",
    ]
    if init is not None:
        overrides.append(f"model.init_ckpt={init}")
    train(compose_task("train", overrides, run_dir))
    best = sorted((run_dir / "checkpoints").glob("epoch_*.ckpt"), key=lambda p: p.stat().st_mtime)
    return best[-1] if best else run_dir / "checkpoints" / "last.ckpt"


_MASKS: dict[tuple[str, str], np.ndarray] = {}


def masks_of(ckpt: Path, images: list[np.ndarray], keys: list[str] | None = None) -> list[np.ndarray]:
    """Each image's mask (p >= threshold) through the one inference path predict uses; Smith et al.'s tile grid
    (`step=tile`) keeps the CPU time of many rounds down. Masks of named images are kept per checkpoint."""
    from rootseg.inference.predictor import Predictor
    from rootseg.inference.settings import InferenceSettings

    predictor, masks = None, []
    for image, key in zip(images, keys or [None] * len(images)):
        mask = _MASKS.get((str(ckpt), key)) if key else None
        if mask is None:
            predictor = predictor or Predictor.from_checkpoint(ckpt, InferenceSettings(device="cpu", step="tile"))
            mask = predictor.mask(predictor.probabilities(image))
            if key:
                _MASKS[(str(ckpt), key)] = mask
        masks.append(mask)
    return masks


def val_f1(project: Project, ckpt: Path) -> float:
    """Pooled F1 over the labelled pixels of the stream's annotations/val (what the annotate app swaps on)."""
    from rootseg.io.images import read_image
    from rootseg.io.masks import read_mask

    paths = sorted((project.folder / "annotations" / "val").glob("*.png"))
    images = [read_image(project.dataset / p.name) for p in paths]
    tp = fp = fn = 0
    for labels, predicted in zip([read_mask(p) for p in paths], masks_of(ckpt, images, [p.stem for p in paths])):
        root, background = labels == 1, labels == 0
        tp += int((predicted & root).sum())
        fp += int((predicted & background).sum())
        fn += int((~predicted & root).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def pooled_f1(masks: list[np.ndarray], truths: list[np.ndarray]) -> float:
    tp = sum(int((m & t).sum()) for m, t in zip(masks, truths))
    wrong = sum(int((m ^ t).sum()) for m, t in zip(masks, truths))
    return 2 * tp / (2 * tp + wrong) if tp + wrong else 1.0


def finish_held_out(ckpt: Path, held_out: list[tuple[np.ndarray, np.ndarray]], goal: float) -> dict[str, Any]:
    """Correct each held-out image's prediction until it reaches `goal`: the seconds it takes with this model."""
    predicted = masks_of(ckpt, [image for image, _ in held_out])
    seconds, corrected = [], []
    for mask, (_, truth) in zip(predicted, held_out):
        clock = sim.Clock()
        fixed, _, _ = correct(clock, mask, truth, goal)
        seconds.append(clock.seconds)
        corrected.append(fixed)
    truths = [truth for _, truth in held_out]
    return {
        "model_f1": pooled_f1(predicted, truths),
        "model_f1_per_image": [round(sim.f1(m, t), 4) for m, t in zip(predicted, truths)],
        "correction_seconds": sum(seconds),
        "corrected_f1": pooled_f1(corrected, truths),
    }


def corrective(args: argparse.Namespace, held_out: list, out: Path) -> dict[str, Any]:
    """(b) RootPainter's protocol on the stream, a fine-tune round after every annotated image from the second."""
    stream = synthetic(STREAM_SEED, args.stream, args.stream_size)
    project = Project(out / "corrective", stream)
    clock, rounds, best, best_val, finish = sim.Clock(), [], None, -1.0, None
    wall = time.perf_counter()
    model_seconds = 0.0
    for index, (image, truth) in enumerate(stream):
        if best is None or best_val <= args.corrective_f1:
            phase, (root, background) = "initial", initial(clock, truth)
        else:
            started = time.perf_counter()
            predicted = masks_of(best, [image])[0]
            model_seconds += time.perf_counter() - started
            _, root, background = correct(clock, predicted, truth, None)
            phase = "corrective"
            if not (root.any() or background.any()):
                rounds.append({"image": index, "phase": "skipped", "stream_seconds": round(clock.seconds, 1)})
                continue
        split = project.save(index, annotation_rgba(root, background))
        entry = {"image": index, "phase": phase, "split": split, "stream_seconds": round(clock.seconds, 1)}
        entry["wall_s"] = round(time.perf_counter() - wall, 1)
        if sum(project.counts.values()) >= 2 and project.counts["val"]:
            started = time.perf_counter()
            new = fine_tune(project, best, out / "corrective" / f"round_{index:03d}", args.epochs, args.seed)
            new_val, old_val = val_f1(project, new), (val_f1(project, best) if best is not None else -1.0)
            if new_val > old_val:
                best = new
                finish = finish_held_out(best, held_out, args.goal)  # an unchanged model finishes as before
            best_val = max(new_val, old_val)
            model_seconds += time.perf_counter() - started
            entry.update(val_f1=round(best_val, 4), swapped=new_val > old_val, **_rounded(finish))
            entry["total_seconds"] = round(clock.seconds + finish["correction_seconds"], 1)
        rounds.append(entry)
        print(json.dumps(entry), file=sys.stderr, flush=True)
        if entry.get("model_f1", 0.0) >= args.goal:
            break
    scored = [r for r in rounds if "total_seconds" in r]
    best_round = min(scored, key=lambda r: r["total_seconds"]) if scored else None
    reached = next((r for r in scored if r["model_f1"] >= args.goal), None)
    return {
        "seconds": best_round["total_seconds"] if best_round else None,
        "best_round": best_round,
        "stream_seconds_until_model_reaches_goal": reached["stream_seconds"] if reached else None,
        "rounds": rounds,
        "model_seconds": round(model_seconds, 1),
    }


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}


def per_image(name: str, held_out: list, run: Any) -> dict[str, Any]:
    """Run one per-image workflow over the held-out images: seconds each and in all, the masks' F1."""
    seconds, masks, extra = [], [], []
    started = time.perf_counter()
    for image, truth in held_out:
        clock = sim.Clock()
        mask, info = run(clock, image, truth)
        seconds.append(round(clock.seconds, 2))
        masks.append(mask)
        extra.append({"clicks": clock.clicks, "strokes": clock.strokes, **info})
    truths = [truth for _, truth in held_out]
    return {
        "workflow": name,
        "seconds": round(sum(seconds), 1),
        "seconds_per_image": seconds,
        "f1": round(pooled_f1(masks, truths), 4),
        "f1_per_image": [round(sim.f1(m, t), 4) for m, t in zip(masks, truths)],
        "actions": extra,
        "model_seconds": round(time.perf_counter() - started, 1),
    }


def rootsam_workflow(args: argparse.Namespace, held_out: list) -> dict[str, Any]:
    from rootseg.inference.predictor import Predictor
    from rootseg.inference.settings import InferenceSettings

    predictor = Predictor.from_checkpoint(args.rootsam_ckpt, InferenceSettings(device="cpu"))
    if predictor.kind != "rootsam":
        raise SystemExit(f"--rootsam-ckpt {args.rootsam_ckpt}: a {predictor.kind} checkpoint, not RootSAM")

    def propose(image: np.ndarray, clicks: np.ndarray) -> np.ndarray:
        return predictor.mask(predictor.probabilities(image, clicks=clicks))

    def run(clock, image, truth):
        return rootsam_clicks(clock, propose, image, truth, args.goal, args.max_negative)

    result = per_image("rootsam", held_out, run)
    result["checkpoint"] = str(args.rootsam_ckpt)
    result["describe"] = {k: str(v) for k, v in predictor.describe().items()}
    return result


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Seconds per held-out image for each workflow and, for (b), after how many images its stream pays off:
    stream seconds / (manual - corrective seconds per image) with the last model."""
    n = int(result["settings"]["held_out"])
    summary: dict[str, Any] = {"held_out_images": n}
    manual_each = result.get("a_manual", {}).get("seconds")
    manual_each = manual_each / n if manual_each else None
    summary["a_manual_seconds_per_image"] = None if manual_each is None else round(manual_each, 1)
    rootsam = result.get("c_rootsam", {})
    if rootsam.get("seconds") is not None:
        summary["c_rootsam_seconds_per_image"] = round(rootsam["seconds"] / n, 1)
        if manual_each:
            summary["c_rootsam_saving_per_image"] = round(1 - rootsam["seconds"] / n / manual_each, 3)
    scored = [r for r in result.get("b_corrective", {}).get("rounds", []) if "correction_seconds" in r]
    if scored:
        last = scored[-1]
        each = last["correction_seconds"] / n
        summary["b_last_round"] = {
            "stream_images": last["image"] + 1,
            "stream_seconds": last["stream_seconds"],
            "model_f1": last["model_f1"],
            "correction_seconds_per_image": round(each, 1),
        }
        if manual_each:
            pays = manual_each > each
            summary["b_pays_off_after_images"] = (
                round(last["stream_seconds"] / (manual_each - each), 1) if pays else None
            )
            summary["b_saving_per_image_after_stream"] = round(1 - each / manual_each, 3)
    return summary


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("logs/annotation_time"))
    parser.add_argument("--workflows", nargs="+", default=["a", "b", "c"], choices=["a", "b", "c"])
    parser.add_argument("--size", type=int, default=512, help="side of the held-out synthetic scans (px)")
    parser.add_argument("--held-out", type=int, default=4, help="held-out scans every workflow must segment")
    parser.add_argument("--stream", type=int, default=8, help="(b): crops the person annotates at most")
    parser.add_argument("--stream-size", type=int, default=512, help="(b): side of those crops (px)")
    parser.add_argument("--epochs", type=int, default=2, help="(b): epochs per fine-tune round")
    parser.add_argument("--goal", type=float, default=0.8, help="F1 every held-out image must reach")
    parser.add_argument("--corrective-f1", type=float, default=0.2, help="(b): val F1 that starts corrections")
    parser.add_argument("--rootsam-ckpt", type=Path, default=None, help="(c): a RootSAM checkpoint")
    parser.add_argument("--max-negative", type=int, default=2, help="(c): negative clicks per object")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="2 held-out images of 128 px, stream of 3, 1 epoch")
    parser.add_argument("--summarize", action="store_true", help="only recompute the summary of <out>'s JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.held_out, args.stream, args.stream_size, args.epochs = 128, 2, 3, 128, 1
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the workflows asked for; results of other workflows already in `<out>/annotation_time.json` (from an
    earlier run with the same settings) are kept, so (c) can be added when a RootSAM checkpoint arrives."""
    args = parse(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "annotation_time.json"
    settings = {k: str(v) for k, v in vars(args).items() if k not in ("workflows", "rootsam_ckpt", "out", "summarize")}
    result: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    if args.summarize:
        result["summary"] = summarize(result)
        path.write_text(json.dumps(result, indent=1))
        print(json.dumps(result["summary"], indent=1))
        return result
    if result.get("settings") != settings:
        result = {"settings": settings}
    held_out = synthetic(HELD_OUT_SEED, args.held_out, args.size)
    result["constants"] = {k: getattr(sim, k) for k in dir(sim) if k.isupper()}
    result["load_avg_start"] = os.getloadavg()
    if "a" in args.workflows:
        result["a_manual"] = per_image("manual", held_out, lambda c, image, truth: (manual(c, truth, args.goal), {}))
    if "c" in args.workflows:
        if args.rootsam_ckpt is None or not args.rootsam_ckpt.is_file():
            result["c_rootsam"] = {"seconds": None, "pending": f"no RootSAM checkpoint at {args.rootsam_ckpt}"}
        else:
            result["c_rootsam"] = rootsam_workflow(args, held_out)
    if "b" in args.workflows:
        result["b_corrective"] = corrective(args, held_out, args.out)
    manual_seconds = result.get("a_manual", {}).get("seconds")
    for key in ("b_corrective", "c_rootsam"):
        seconds = result.get(key, {}).get("seconds")
        if manual_seconds and seconds is not None:
            result[key]["saving_vs_manual"] = round(1 - seconds / manual_seconds, 3)
    result["load_avg_end"] = os.getloadavg()
    result["summary"] = summarize(result)
    text = json.dumps(result, indent=1)
    path.write_text(text)
    print(text)
    return result


if __name__ == "__main__":
    main()
