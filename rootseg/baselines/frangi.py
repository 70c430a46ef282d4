"""Smith et al. 2020's baseline: Frangi vesselness + threshold + small-object removal, tuned by CMA-ES.

Roots are bright on dark soil in CI-600 scans, hence `black_ridges=False`. Five parameters are tuned
(sigma_min, sigma_max, beta, threshold, min_object_size) on 1 - mean F1 over the training images.
Parameters are in full-resolution pixels, so values tuned at one `downscale` are a sensible start at
another (sigmas are divided by the factor and object sizes by its square), though thin roots blur
away at coarse scales.

Cost of one evaluation (frangi with 4 sigmas, threshold, clean-up, F1 at full size) on a 2550x2273
SegRoot image, one thread, CPU time: 5.0 s at downscale 1, 1.6 s at 2, 0.62 s at 4, 0.20 s at 8
(grey conversion and shrinking, 0.1-0.2 s, happen once per image). SegRoot's roots are 2-3 px wide:
the F1 a perfect mask keeps after shrinking and nearest enlarging is 0.82 at downscale 2, 0.68 at 4
and 0.50 at 8 (0.92, 0.76, 0.55 with `upsample="linear"`).
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import pickle
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from rootseg.io.atomic import atomic_path
from rootseg.metrics.pixels import confusion, scores

__all__ = [
    "BOUNDS",
    "FrangiParams",
    "evaluate_params",
    "frangi_segment",
    "prepare_grey",
    "remove_small",
    "segment_grey",
    "tune_frangi",
]

# (low, high, log scale?) in full-resolution pixels; CMA-ES searches the unit box mapped onto these.
BOUNDS: dict[str, tuple[float, float, bool]] = {
    "sigma_min": (0.5, 8.0, True),
    "sigma_max": (1.0, 24.0, True),
    "beta": (0.1, 2.0, False),
    "threshold": (1e-4, 0.5, True),  # on vesselness, whose range is [0, 1)
    "min_object_size": (1.0, 5000.0, True),  # px at full resolution
}
TUNED = tuple(BOUNDS)


@dataclasses.dataclass(frozen=True)
class FrangiParams:
    """One Frangi segmenter. `n_sigmas` scales are spaced geometrically and are not tuned."""

    sigma_min: float = 1.5
    sigma_max: float = 6.0
    beta: float = 0.5
    threshold: float = 0.02
    min_object_size: float = 100.0
    n_sigmas: int = 4

    def sigmas(self, downscale: int = 1) -> np.ndarray:
        low, high = sorted((self.sigma_min, self.sigma_max))
        return np.geomspace(low, high, self.n_sigmas) / downscale if high > low else np.array([low / downscale])

    def to_unit(self) -> np.ndarray:
        """Position in the [0, 1]^5 box that CMA-ES searches."""
        unit = []
        for name, (low, high, log) in BOUNDS.items():
            value = float(np.clip(getattr(self, name), low, high))
            unit.append(
                (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
                if log
                else (value - low) / (high - low)
            )
        return np.array(unit)

    @classmethod
    def from_unit(cls, unit: Sequence[float], n_sigmas: int = 4) -> FrangiParams:
        values = {}
        for u, (name, (low, high, log)) in zip(np.clip(unit, 0.0, 1.0), BOUNDS.items(), strict=True):
            values[name] = (
                float(math.exp(math.log(low) + u * (math.log(high) - math.log(low))))
                if log
                else float(low + u * (high - low))
            )
        return cls(**values, n_sigmas=n_sigmas)


def remove_small(mask: np.ndarray, min_size: float) -> np.ndarray:
    """Drop 8-connected objects of fewer than `min_size` pixels (stable across scikit-image versions,
    whose `remove_small_objects` changed its size argument in 0.26)."""
    if min_size <= 1 or not mask.any():
        return mask
    labels, count = ndi.label(mask, structure=np.ones((3, 3), bool))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = sizes >= min_size
    keep[0] = False
    return keep[labels]


def _grey(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3:
        from skimage.color import rgb2gray

        image = rgb2gray(image[..., :3])
    elif image.dtype == np.uint8:
        image = image / 255.0
    return image.astype(np.float32)


def prepare_grey(image_rgb_uint8: np.ndarray, downscale: int = 1) -> np.ndarray:
    """The parameter-free part of `frangi_segment` (grey, shrink), done once per image when tuning."""
    import cv2

    if int(downscale) != downscale or downscale < 1:
        raise ValueError(f"downscale must be a positive integer, got {downscale}")
    grey = _grey(image_rgb_uint8)
    if downscale > 1:
        height, width = grey.shape
        size = (max(1, width // int(downscale)), max(1, height // int(downscale)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return grey


def segment_grey(
    grey: np.ndarray,
    params: FrangiParams,
    downscale: int,
    full_shape: tuple[int, int],
    upsample: str = "nearest",
) -> np.ndarray:
    """Frangi, threshold and clean-up on a `prepare_grey` image, brought back to `full_shape`.

    `upsample="nearest"` thresholds and cleans the small mask and enlarges it; `"linear"` enlarges the
    vesselness and thresholds at full size, which keeps thin roots smooth (on SegRoot's 2-3 px wide
    masks the resolution ceiling of F1 at downscale 4 is 0.68 nearest, 0.76 linear) for ~0.1 s more.
    """
    import cv2
    from skimage.filters import frangi

    if upsample not in ("nearest", "linear"):
        raise ValueError(f"upsample must be 'nearest' or 'linear', got {upsample!r}")
    with np.errstate(over="ignore"):  # exp(-s^2 / 2c^2) underflows to its limit 0 on flat float32 regions
        vesselness = frangi(grey, sigmas=params.sigmas(downscale), beta=params.beta, black_ridges=False)
    height, width = full_shape
    resize = vesselness.shape != (height, width)
    if resize and upsample == "linear":
        vesselness = cv2.resize(vesselness.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
        return remove_small(vesselness > params.threshold, params.min_object_size)
    mask = remove_small(vesselness > params.threshold, params.min_object_size / downscale**2)
    if resize:
        mask = cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
    return mask


def frangi_segment(
    image_rgb_uint8: np.ndarray, params: FrangiParams, downscale: int = 1, upsample: str = "nearest"
) -> np.ndarray:
    """Boolean root mask of the image's full size; `downscale` > 1 filters a smaller copy for speed."""
    grey = prepare_grey(image_rgb_uint8, downscale)
    return segment_grey(grey, params, int(downscale), image_rgb_uint8.shape[:2], upsample)


def evaluate_params(
    image: np.ndarray, mask: np.ndarray, params: FrangiParams, downscale: int = 1, upsample: str = "nearest"
) -> float:
    """F1 of one segmentation (255 in `mask` ignored; both empty counts 1.0, see rootseg.metrics)."""
    return scores(**confusion(frangi_segment(image, params, downscale, upsample), mask))["f1"]


# Worker-side data: set once per worker process, so images are not pickled for every evaluation.
_DATA: dict = {}


def _init_worker(greys: Sequence[np.ndarray], masks: Sequence[np.ndarray], downscale: int, upsample: str) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _DATA.update(greys=greys, masks=masks, downscale=downscale, upsample=upsample)


def _evaluate_pair(job: tuple[tuple[float, ...], int, int]) -> float:
    unit, n_sigmas, index = job
    params = FrangiParams.from_unit(unit, n_sigmas)
    mask = _DATA["masks"][index]
    pred = segment_grey(_DATA["greys"][index], params, _DATA["downscale"], mask.shape, _DATA["upsample"])
    return scores(**confusion(pred, mask))["f1"]


def _fingerprint(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], settings: dict) -> dict:
    """What a saved state must match to be resumed: the data and the settings that shape the search."""
    return {
        "shapes": [tuple(image.shape) for image in images],
        "root_pixels": [int(np.count_nonzero(mask == 1)) for mask in masks],
        **settings,
    }


class _Search:
    """One CMA-ES search's bookkeeping: the candidates' scores, the history, and the state file that lets a
    killed search resume exactly."""

    def __init__(self, n_images: int, start: FrangiParams, fingerprint: dict, state_path: Path | None, mapper) -> None:
        self.n_images, self.start, self.fingerprint = n_images, start, fingerprint
        self.state_path, self.mapper = state_path, mapper
        self.history: list[dict] = []

    def load(self):
        """The saved ES (numpy's random state restored with it), or None for a new search."""
        if self.state_path is None or not self.state_path.exists():
            return None
        with open(self.state_path, "rb") as handle:
            saved = pickle.load(handle)
        if saved["fingerprint"] != self.fingerprint:
            raise ValueError(
                f"{self.state_path} was written for other data or settings; delete it or pass another state_path"
            )
        self.history = saved["history"]
        np.random.set_state(saved["random_state"])
        return saved["es"]

    def save(self, es) -> None:
        if self.state_path is None:
            return
        state = {"es": es, "history": self.history, "random_state": np.random.get_state()}
        with atomic_path(self.state_path) as tmp:
            tmp.write_bytes(pickle.dumps({**state, "fingerprint": self.fingerprint}))

    def evaluate(self, units: list[np.ndarray], generation: int) -> list[float]:
        """Mean F1 over the images of each candidate (unit-box coordinates), recorded in the history."""
        began = time.perf_counter()
        jobs = [(tuple(map(float, u)), self.start.n_sigmas, i) for u in units for i in range(self.n_images)]
        f1s = np.array(self.mapper(_evaluate_pair, jobs), dtype=np.float64).reshape(len(units), self.n_images)
        means = [float(np.nanmean(row)) for row in f1s]
        seconds = time.perf_counter() - began
        for unit, f1 in zip(units, means, strict=True):
            params = dataclasses.asdict(FrangiParams.from_unit(unit, self.start.n_sigmas))
            row = {"eval": len(self.history), "generation": generation, "params": params, "f1": f1}
            self.history.append({**row, "seconds": seconds / len(units)})
        return means


def _new_strategy(cma, start: FrangiParams, seed: int, sigma0: float, popsize: int | None):
    options = {"bounds": [0.0, 1.0], "seed": seed + 1, "verbose": -9, "verb_disp": 0, "verb_log": 0}  # 0: random
    if popsize is not None:
        options["popsize"] = popsize
    return cma.CMAEvolutionStrategy(start.to_unit(), sigma0, options)


def tune_frangi(
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    max_evals: int = 200,
    seed: int = 0,
    workers: int = 1,
    downscale: int = 1,
    state_path: Path | str | None = None,
    start: FrangiParams | None = None,
    sigma0: float = 0.25,
    popsize: int | None = None,
    upsample: str = "nearest",
) -> tuple[FrangiParams, list[dict]]:
    """CMA-ES over the unit box of `BOUNDS`, minimising 1 - mean F1 over the images.

    `max_evals` bounds the candidate evaluations in total (each over every image), the start point
    included as evaluation 0; only whole generations run, so the count stops at or below it. With
    `state_path`, the ES state, the history and numpy's random state are pickled atomically after every
    generation, and a later call with the same path, data, downscale and seed continues from there
    (raise `max_evals` to tune further; a resumed run repeats an uninterrupted one exactly). `workers` > 1
    spreads the (candidate, image) pairs of a generation over a process pool. Returns the best parameters
    seen and the history: one dict per evaluation (eval, generation, params, f1, seconds).
    """
    with warnings.catch_warnings():  # cma warns at import when matplotlib (for its plots) is absent
        warnings.simplefilter("ignore", UserWarning)
        import cma

    if len(images) != len(masks) or not images:
        raise ValueError(f"need the same non-zero number of images and masks, got {len(images)} and {len(masks)}")
    for image, mask in zip(images, masks, strict=True):
        if image.shape[:2] != mask.shape:
            raise ValueError(f"image {image.shape[:2]} and mask {mask.shape} differ in size")
    start = start or FrangiParams()
    settings = {"downscale": downscale, "upsample": upsample, "seed": seed, "n_sigmas": start.n_sigmas}
    caller_random_state = np.random.get_state()  # cma draws from numpy's global generator
    greys = [prepare_grey(image, downscale) for image in images]
    pool = None
    if workers > 1:
        context = multiprocessing.get_context()
        pool = context.Pool(workers, initializer=_init_worker, initargs=(greys, list(masks), downscale, upsample))
    else:
        _init_worker(greys, list(masks), downscale, upsample)
    mapper = pool.map if pool is not None else lambda fn, jobs: list(map(fn, jobs))
    path = Path(state_path) if state_path is not None else None
    search = _Search(len(images), start, _fingerprint(images, masks, settings), path, mapper)
    try:
        es = search.load()
        if es is None:
            np.random.seed(seed)
            search.evaluate([start.to_unit()], generation=0)
            es = _new_strategy(cma, start, seed, sigma0, popsize)
            search.save(es)
        while len(search.history) + es.popsize <= max_evals and not es.stop():
            units = es.ask()
            f1s = search.evaluate(units, es.countiter + 1)
            es.tell(units, [1.0 - f1 for f1 in f1s])
            search.save(es)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        np.random.set_state(caller_random_state)
        _DATA.clear()  # the serial path keeps the images in this process otherwise
    best = max(search.history, key=lambda row: row["f1"] if math.isfinite(row["f1"]) else -math.inf)
    return FrangiParams(**best["params"]), search.history
