"""Resolution, line-intersect grid and trait settings, resolved once for every command (dpi or mm_per_pixel)."""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from rootseg.config.typed import Bool, Number
from rootseg.measure.cleaning import Cleaning
from rootseg.measure.intervals import IntervalSettings
from rootseg.measure.traits import (
    DEFAULT_DEPTH_OF_FIELD_MM,
    DEFAULT_DIAMETER_EDGES_MM,
    TraitSettings,
    check_edges,
)


def mm_per_pixel_from_dpi(dpi: float) -> float:
    """Pixel size of a scan; CI-600 images are usually 100-2400 dpi."""
    if dpi <= 0:
        raise ValueError(f"dpi must be positive, got {dpi}")
    return 25.4 / dpi


def resolve_mm_per_pixel(cfg: DictConfig) -> float | None:
    """mm per pixel from `mm_per_pixel=` or `dpi=` (25.4 / dpi); both may be given if they agree (0.5 %)."""
    positive = Number(low=0, low_open=True, optional=True)
    mm, dpi = (positive.convert(key, cfg.get(key)) for key in ("mm_per_pixel", "dpi"))
    if dpi is None:
        return None if mm is None else float(mm)
    from_dpi = mm_per_pixel_from_dpi(float(dpi))
    if mm is not None and not math.isclose(float(mm), from_dpi, rel_tol=0.005):
        raise ValueError(
            f"mm_per_pixel={mm} and dpi={dpi} disagree ({dpi} dpi is {from_dpi:.5f} mm per pixel); give one of them"
        )
    return from_dpi if mm is None else float(mm)


def resolve_grids(cfg: DictConfig) -> list[float]:
    """`line_intersect_grid_mm=10` or `=[10,20,40,80]` (Smith et al.'s grids): spacings in mm, first = headline."""
    value = cfg.get("line_intersect_grid_mm")
    values = [10.0] if value is None else list(value) if isinstance(value, list | tuple | ListConfig) else [value]
    try:
        grids = [float(v) for v in values]
    except (TypeError, ValueError):
        grids = []
    if not grids or not all(math.isfinite(g) and g > 0 for g in grids) or len(set(grids)) != len(grids):
        raise ValueError(
            f"line_intersect_grid_mm must be a positive spacing in mm or a list of distinct ones "
            f"(e.g. [10,20,40,80]), got {value!r}"
        )
    return grids


def resolve_grid_px(cfg: DictConfig) -> float | None:
    """`line_intersect_grid_px=40`: the pixel grid used without a resolution, or None."""
    rule = Number(low=0, low_open=True, optional=True, unit="spacing in pixels")
    return rule.convert("line_intersect_grid_px", cfg.get("line_intersect_grid_px"))


def resolve_traits(cfg: DictConfig) -> TraitSettings | None:
    """`traits=true` (default) with `diameter_classes_mm=[0.5,1,2]` and `depth_of_field_mm=2`: the trait columns'
    settings, or None for `traits=false` (root pixels and length only, ~1 s less per 2550 x 2273 scan)."""
    if not Bool().convert("traits", cfg.get("traits", True)):
        return None
    edges = cfg.get("diameter_classes_mm")
    edges = DEFAULT_DIAMETER_EDGES_MM if edges is None else edges
    edges = list(edges) if isinstance(edges, list | tuple | ListConfig) else [edges]
    depth = Number(low=0, low_open=True, optional=True, unit="mm").convert(
        "depth_of_field_mm", cfg.get("depth_of_field_mm")
    )
    depth = DEFAULT_DEPTH_OF_FIELD_MM if depth is None else depth
    return TraitSettings(tuple(check_edges(edges)), depth, resolve_cleaning(cfg), resolve_interval(cfg))


def resolve_cleaning(cfg: DictConfig) -> Cleaning | None:
    """`clean.min_component_px=30 clean.prune_px=2 ...` (`rootseg.measure.cleaning`): the robust-measurement
    settings, the defaults where a key is not given; `clean=null`: None (the mask as it is, pinholes filled)."""
    return _settings_group(cfg, "clean", Cleaning, "clean.prune_px=2")


def resolve_interval(cfg: DictConfig) -> IntervalSettings | None:
    """`interval.delta=0.45 interval.margin=0.424` (`rootseg.measure.intervals`): the error bar of each
    trait, the defaults where a key is not given; `interval=null`: None (no interval columns)."""
    return _settings_group(cfg, "interval", IntervalSettings, "interval.delta=0.45")


def _settings_group(cfg: DictConfig, key: str, cls: type, example: str) -> Any:
    """A group of settings given as `key.name=value` (the dataclass `cls`'s defaults where absent), or None."""
    if key not in cfg:
        return cls()
    values = cfg.get(key)
    if values is None:
        return None
    if isinstance(values, DictConfig):
        values = OmegaConf.to_container(values, resolve=True)
    if not isinstance(values, dict):
        raise ValueError(f"{key} must be a group of settings ({example}, ...) or null, got {values!r}")
    return cls.from_mapping(values)
