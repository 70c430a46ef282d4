"""Smith et al. 2020's Frangi baseline as a rootseg model, so it trains, tests and evaluates like the others.

"Training" is the CMA-ES search of `rootseg.baselines.frangi.tune_frangi` over the training images; it runs
once, in `on_fit_start`, and the five tuned parameters are buffers, so they travel in the checkpoint's
state_dict and `load_module` restores them. Nothing is optimised by gradient: Lightning's fit only runs one
no-op training step and the usual whole-image validation (which the checkpoint callback monitors).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rootseg.baselines.frangi import TUNED, FrangiParams, frangi_segment, tune_frangi
from rootseg.io.masks import read_pair
from rootseg.tasks.base import RootSegModule

log = logging.getLogger(__name__)


class FrangiModule(RootSegModule):
    """Frangi vesselness + threshold + small-object removal; the tuned parameters are buffers.

    The buffers are `frangi_sigma_min` etc. The constructor's parameter values are the search's start
    point (and the segmenter when `tune` is false). `downscale`/`upsample` apply to the search and to
    every prediction alike. `state_path` keeps the CMA-ES state after each generation: a killed run
    started again with the same run directory continues the search where it stopped. `history_path`
    receives one CSV row per evaluation.
    """

    kind = "frangi"

    def __init__(
        self,
        sigma_min: float = 1.5,
        sigma_max: float = 6.0,
        beta: float = 0.5,
        threshold: float = 0.02,
        min_object_size: float = 100.0,
        n_sigmas: int = 4,
        tune: bool = True,
        max_evals: int = 150,
        workers: int = 1,
        downscale: int = 1,
        upsample: str = "nearest",
        seed: int = 0,
        sigma0: float = 0.25,
        popsize: int | None = None,
        state_path: str | None = None,
        history_path: str | None = None,
    ) -> None:
        super().__init__(optimizer=None, threshold=0.5)  # predictions are 0/1, so any threshold in (0, 1]
        self.automatic_optimization = False
        start = FrangiParams(sigma_min, sigma_max, beta, threshold, min_object_size, n_sigmas)
        for name in TUNED:
            # buffers `frangi_<name>`, float64: the threshold spans 1e-4..0.5 and must survive the checkpoint exactly
            self.register_buffer(f"frangi_{name}", torch.tensor(float(getattr(start, name)), dtype=torch.float64))
        self.n_sigmas = int(n_sigmas)
        self.tune = tune
        self.max_evals = int(max_evals)
        self.workers = int(workers)
        self.downscale = int(downscale)
        self.upsample = upsample
        self.seed = int(seed)
        self.sigma0 = float(sigma0)
        self.popsize = popsize
        self.state_path = state_path
        self.history_path = history_path
        self.search_f1: float | None = None

    # -- the parameters ----------------------------------------------------------------------------
    @property
    def params(self) -> FrangiParams:
        """The current segmenter (the start point before the search, the best found after it)."""
        values = {name: float(getattr(self, f"frangi_{name}")) for name in TUNED}
        return FrangiParams(**values, n_sigmas=self.n_sigmas)

    def set_params(self, params: FrangiParams) -> None:
        for name in TUNED:
            getattr(self, f"frangi_{name}").fill_(float(getattr(params, name)))

    # -- the search --------------------------------------------------------------------------------
    def training_images(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The training split of the trainer's datamodule, read whole (the search needs full images)."""
        datamodule = getattr(self.trainer, "datamodule", None)
        source = getattr(datamodule, "source", None)
        if source is None:
            raise ValueError("FrangiModule needs a datamodule with a `source` (rootseg's data configs have one)")
        samples = source.split("train")
        if not samples:
            raise ValueError(f"the train split of {source.root} is empty: nothing to tune the Frangi filter on")
        pairs = [read_pair(s.image_path, s.mask_path, source.mask_threshold) for s in samples]
        return [image for image, _ in pairs], [mask for _, mask in pairs]

    def on_fit_start(self) -> None:
        if not self.tune:
            log.info("tune=false: keeping the given Frangi parameters %s", self.params)
            return
        images, masks = self.training_images()
        max_evals, state_path = self.max_evals, self.state_path
        if self.trainer.fast_dev_run:  # a wiring check: score the start point only, keep no search state
            max_evals, state_path = 1, None
        log.info(
            "CMA-ES over %d training images: up to %d evaluations, downscale %d, upsample %s, %d worker(s)",
            len(images),
            max_evals,
            self.downscale,
            self.upsample,
            self.workers,
        )
        began = time.perf_counter()
        best, history = tune_frangi(
            images,
            masks,
            max_evals=max_evals,
            seed=self.seed,
            workers=self.workers,
            downscale=self.downscale,
            state_path=state_path,
            start=self.params,
            sigma0=self.sigma0,
            popsize=self.popsize,
            upsample=self.upsample,
        )
        self.set_params(best)
        self.search_f1 = max(row["f1"] for row in history)
        log.info(
            "search done: %d evaluations, best train mean F1 %.4f (start %.4f) with %s (%.0f s)",
            len(history),
            self.search_f1,
            history[0]["f1"],
            best,
            time.perf_counter() - began,
        )
        if self.history_path:
            from rootseg.io.tables import write_csv

            rows = [{k: v for k, v in row.items() if k != "params"} | row["params"] for row in history]
            write_csv(Path(self.history_path), rows)

    def configure_optimizers(self) -> None:
        """Nothing to optimise by gradient: the search in `on_fit_start` is the training."""
        return None

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Logs the search's best train mean F1 and steps Lightning's stand-in optimizer (a no-op): that
        advances `global_step`, without which ModelCheckpoint treats the epoch as already saved and keeps
        no best checkpoint."""
        self.optimizers().step()
        if self.search_f1 is not None:
            self.log("train/search_f1", self.search_f1, on_step=False, on_epoch=True, batch_size=1)
        return None

    # -- prediction --------------------------------------------------------------------------------
    def predict_probs(self, image: torch.Tensor | np.ndarray, **_: Any) -> torch.Tensor:
        """(H, W, 3) uint8 image -> (H, W) 0/1 float mask. The sliding-window options of other models
        (step, blend, tta) do not apply and are ignored."""
        array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
        if array.ndim == 3 and array.shape[0] == 3 and array.shape[-1] != 3:
            array = np.moveaxis(array, 0, -1)
        if array.dtype != np.uint8:
            array = np.clip(array, 0, 255).astype(np.uint8)
        mask = frangi_segment(array, self.params, self.downscale, self.upsample)
        return torch.from_numpy(mask.astype(np.float32))

    def describe(self) -> dict[str, Any]:
        """The segmenter as plain data (for logs and reports)."""
        return {**dataclasses.asdict(self.params), "downscale": self.downscale, "upsample": self.upsample}
