"""Root traits per binary mask, the numbers RhizoVision Explorer reports, in pixels and in mm.

One call, `root_traits(mask, mm_per_pixel)`, returns a flat dict with stable column names (`trait_columns`) so a
CSV row can carry it, for a prediction and for an annotation alike. One skeleton serves every trait
(`rootseg.measure.skeleton`: pinholes filled, Zhang's thinning repaired with Lee's):

- length: Kimura et al. (1999) per unbranched skeleton segment, as `skeleton_length` measures it, of the
  mask with its pinholes filled (`skeleton_length` of the mask as it is, which predict and eval report as
  `root_length_px`, differs only where a pinhole was filled);
- diameter at each skeleton pixel: twice its distance to the root's edge at half-pixel resolution
  (`rootseg.measure.diameter`). Mean, median and length per diameter class weight each skeleton pixel by the
  length it carries, so the classes sum to the total length; the class rule is RhizoVision Explorer's
  (d <= edge goes to the lower class);
- projected area (root pixels), surface area sum(pi d l) and volume sum(pi d^2 l / 4) over skeleton pixels, as
  RhizoVision Explorer sums them;
- tips: skeleton ends, less those where the root leaves the image (`border_ends`); branch points: junction
  clusters merged where closer than the root's radius (`rootseg.measure.topology`); a right-angle crossing
  reads as one, an oblique one as two (the skeleton's ">-<"), as skan and RhizoVision Explorer count them;
  connected roots: 8-connected components;
- root length density: cm of root per cm^2 of image, and per cm^3 of soil seen through a minirhizotron tube
  with a depth of field (RLD = L / (A * DOF)).

Defaults and where they come from (README "Measure traits"):

- `DEFAULT_DIAMETER_EDGES_MM` = 0.5, 1, 2 mm: fine roots are those < 2 mm (McCormack et al. 2015, New
  Phytologist 207:505-518), split at 0.5 and 1 mm as minirhizotron studies report very fine roots. RhizoVision
  Explorer's own default is 2 and 5 mm (`dranges = {2.0, 5.0}` in RhizoVisionExplorer/MainUI.h, Seethepalli
  et al. 2021, AoB Plants 13:plab056), made for washed crop roots: every minirhizotron fine root would land in
  its first class. `RHIZOVISION_DIAMETER_EDGES_MM` gives it for comparison.
- `DEFAULT_DEPTH_OF_FIELD_MM` = 2 mm: the depth of soil a minirhizotron image is taken to show, "usually
  assumed to be 0.2 or 0.3 cm" (Fahey et al. 1999, in Standard Soil Methods for Long-Term Ecological
  Research); Taylor et al. 2014 (Plant and Soil 374:941-948) measured 0.78 mm, which would give 2.6x the RLD.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage as ndi

from rootseg.measure.cleaning import Cleaning, robust_root
from rootseg.measure.diameter import edge_distances
from rootseg.measure.length import LENGTH_METHODS, root_and_labelled
from rootseg.measure.skeleton import DEFAULT_MAX_HOLE_PX, SkeletonGraph, fill_pinholes, skeletonize_mask
from rootseg.measure.topology import at_border, branch_points

if TYPE_CHECKING:
    from rootseg.measure.intervals import IntervalSettings

DEFAULT_DIAMETER_EDGES_MM: tuple[float, ...] = (0.5, 1.0, 2.0)
RHIZOVISION_DIAMETER_EDGES_MM: tuple[float, ...] = (2.0, 5.0)
DEFAULT_DEPTH_OF_FIELD_MM: float = 2.0

_EIGHT = np.ones((3, 3), dtype=bool)
_HEAD = ["length_px", "length_mm", "diameter_mean_px", "diameter_median_px", "diameter_mean_mm", "diameter_median_mm"]
_TAIL = [
    "projected_area_px2",
    "projected_area_mm2",
    "surface_area_px2",
    "surface_area_mm2",
    "volume_px3",
    "volume_mm3",
    "tips",
    "border_ends",
    "branch_points",
    "connected_roots",
    "image_area_px",
    "image_area_mm2",
    "rld_cm_per_cm2",
    "rld_cm_per_cm3",
    "mm_per_pixel",
    "depth_of_field_mm",
]


def check_edges(edges_mm: Sequence[float]) -> list[float]:
    """Diameter class edges in mm: positive, finite, strictly increasing."""
    try:
        edges = [float(edge) for edge in edges_mm]
    except (TypeError, ValueError):
        edges = []
    if not edges or any(not math.isfinite(e) or e <= 0 for e in edges) or sorted(set(edges)) != edges:
        raise ValueError(
            f"diameter class edges {list(edges_mm) if isinstance(edges_mm, Sequence) else edges_mm!r}: need "
            "positive, finite, strictly increasing values in mm (e.g. [0.5, 1, 2])"
        )
    return edges


def diameter_class_columns(edges_mm: Sequence[float] = DEFAULT_DIAMETER_EDGES_MM) -> list[str]:
    """Column names of the length per diameter class, e.g. `length_mm_d0-0.5`, ..., `length_mm_d2-inf`."""
    edges = check_edges(edges_mm)
    bounds = [0.0, *edges, math.inf]
    return [f"length_mm_d{low:g}-{high:g}" for low, high in zip(bounds[:-1], bounds[1:])]


def trait_columns(edges_mm: Sequence[float] = DEFAULT_DIAMETER_EDGES_MM) -> list[str]:
    """All columns `root_traits` returns, in a stable order (the CSV header)."""
    return [*_HEAD, *diameter_class_columns(edges_mm), *_TAIL]


TRAIT_COLUMNS: tuple[str, ...] = tuple(trait_columns())


@dataclass(frozen=True)
class TraitSettings:
    """How pixel measurements become trait columns: diameter class edges (mm) and the depth of field (mm); and
    how a mask is cleaned before it is measured (`clean`, `rootseg.measure.cleaning`; None: pinholes only); and
    the error bar of each trait where a probability map is at hand (`interval`, `rootseg.measure.intervals`;
    None: none)."""

    diameter_edges_mm: tuple[float, ...] = DEFAULT_DIAMETER_EDGES_MM
    depth_of_field_mm: float = DEFAULT_DEPTH_OF_FIELD_MM
    clean: Cleaning | None = None
    interval: IntervalSettings | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "diameter_edges_mm", tuple(check_edges(self.diameter_edges_mm)))
        if not (math.isfinite(self.depth_of_field_mm) and self.depth_of_field_mm > 0):
            raise ValueError(f"depth_of_field_mm must be a positive number (mm), got {self.depth_of_field_mm}")

    def columns(self) -> list[str]:
        return trait_columns(self.diameter_edges_mm)


def _labelled_root(mask: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    root, labelled = root_and_labelled(mask)
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != root.shape:
            raise ValueError(f"valid has shape {valid.shape}, the mask {root.shape}")
        labelled = labelled & valid
    return root & labelled, labelled


def pixel_traits(
    mask: np.ndarray,
    *,
    valid: np.ndarray | None = None,
    max_hole_px: int = DEFAULT_MAX_HOLE_PX,
    length_method: str | None = None,
    clean: Cleaning | None = None,
) -> dict[str, Any]:
    """Everything measured in pixels, JSON-ready, from which `traits_from_pixels` builds the columns at any
    resolution, diameter classes and depth of field: a record of predict keeps it.

    Diameters are kept as a histogram (each distinct skeleton diameter and the length carried at it). `valid`
    (or 255 in a label mask) limits the image to labelled pixels; holes of at most `max_hole_px` pixels inside a
    root are filled first (0: none). With `clean` (`rootseg.measure.cleaning`, the commands' `clean:` settings)
    small components, gaps, spurs and a border band are dealt with too, and its `max_hole_px` applies. With a
    `length_method`, `root_length_px` is `skeleton_length` of the mask as it is (not cleaned), from the traits'
    skeleton when cleaning changed nothing, so one thinning serves both.
    """
    as_given, labelled = _labelled_root(mask, valid)
    if clean is None:
        root = fill_pinholes(as_given, max_hole_px)
        skeleton = raw = skeletonize_mask(root)
    else:
        root, skeleton, labelled = robust_root(as_given, labelled, clean)
        raw = None
    graph = SkeletonGraph.from_skeleton(skeleton)
    reuse = graph if root is as_given and skeleton is raw else None
    extra = {} if length_method is None else {"root_length_px": _root_length(as_given, reuse, length_method)}
    half_pixel, radius = edge_distances(root, graph.ys, graph.xs)
    lengths = graph.pixel_lengths()
    carried = lengths > 0
    diameters, at = np.unique(np.round(2.0 * half_pixel[carried], 9), return_inverse=True)
    ends, junctions = graph.ends_and_junctions()
    cut = int(np.count_nonzero(ends & at_border(graph, radius)))
    return {
        "length_px": float(lengths.sum()),
        "diameters_px": diameters.tolist(),
        "diameter_lengths_px": np.bincount(at.ravel(), lengths[carried], diameters.size).tolist(),
        "projected_area_px2": int(np.count_nonzero(root)),
        "tips": int(np.count_nonzero(ends)) - cut,
        "border_ends": cut,
        "branch_points": branch_points(graph, junctions, radius),
        "connected_roots": int(ndi.label(root, structure=_EIGHT)[1]),
        "image_area_px": int(np.count_nonzero(labelled)),
        **extra,
    }


def _root_length(as_given: np.ndarray, graph: SkeletonGraph | None, method: str) -> float:
    """`skeleton_length(as_given, method)`, reusing the traits' skeleton (`graph`) where it is the one of the
    mask as given."""
    if method not in LENGTH_METHODS:
        raise ValueError(f"length_method must be one of {LENGTH_METHODS}, got {method!r}")
    if graph is None:
        graph = SkeletonGraph.from_skeleton(skeletonize_mask(as_given))
    return float(graph.size) if method == "pixels" else graph.corrected_length()


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    cumulative = np.cumsum(weights)  # values sorted ascending
    return float(values[np.searchsorted(cumulative, cumulative[-1] / 2.0)])


def _diameter_stats(pixels: dict[str, Any], edges_px: list[float] | None) -> dict[str, Any]:
    """Mean and median diameter (px, length-weighted), surface, volume, and length per class (px)."""
    diameters = np.asarray(pixels["diameters_px"], np.float64)
    lengths = np.asarray(pixels["diameter_lengths_px"], np.float64)
    total = float(lengths.sum())
    stats: dict[str, Any] = {
        "diameter_mean_px": float((diameters * lengths).sum() / total) if total > 0 else math.nan,
        "diameter_median_px": _weighted_median(diameters, lengths) if total > 0 else math.nan,
        "surface_area_px2": float((math.pi * diameters * lengths).sum()),
        "volume_px3": float((math.pi * diameters**2 / 4.0 * lengths).sum()),
    }
    if edges_px is not None:
        # d <= edge goes to the lower class; diameters come in steps of half pixels and edges often fall on one,
        # so a rounding error in mm / mm_per_pixel (0.3 / 0.1 = 2.9999999999999996) must not move them
        classes = np.searchsorted(np.asarray(edges_px) * (1 + 1e-9), diameters, side="left")
        stats["class_lengths_px"] = np.bincount(classes, weights=lengths, minlength=len(edges_px) + 1)
    return stats


def traits_from_pixels(
    pixels: dict[str, Any], mm_per_pixel: float | None = None, settings: TraitSettings | None = None
) -> dict[str, float]:
    """The trait columns (`settings.columns()` order) of a `pixel_traits` measurement; mm, mm^2, mm^3, class
    and density columns are NaN without `mm_per_pixel`."""
    settings = settings or TraitSettings()
    if mm_per_pixel is not None and not (math.isfinite(mm_per_pixel) and mm_per_pixel > 0):
        raise ValueError(f"mm_per_pixel must be a positive number, got {mm_per_pixel}")
    edges_px = None if mm_per_pixel is None else [edge / mm_per_pixel for edge in settings.diameter_edges_mm]
    stats = _diameter_stats(pixels, edges_px)
    traits = {
        **{k: float(pixels[k]) for k in ("length_px", "projected_area_px2", "image_area_px")},
        **{k: int(pixels[k]) for k in ("tips", "border_ends", "branch_points", "connected_roots")},
        **{k: stats[k] for k in ("diameter_mean_px", "diameter_median_px", "surface_area_px2", "volume_px3")},
        "depth_of_field_mm": float(settings.depth_of_field_mm),
    }
    class_columns = diameter_class_columns(settings.diameter_edges_mm)
    traits.update(_in_mm(traits, mm_per_pixel, stats.get("class_lengths_px"), class_columns))
    return {column: traits[column] for column in settings.columns()}


def root_traits(
    mask: np.ndarray,
    mm_per_pixel: float | None = None,
    *,
    diameter_edges_mm: Sequence[float] = DEFAULT_DIAMETER_EDGES_MM,
    depth_of_field_mm: float = DEFAULT_DEPTH_OF_FIELD_MM,
    valid: np.ndarray | None = None,
    max_hole_px: int = DEFAULT_MAX_HOLE_PX,
    clean: Cleaning | None = None,
) -> dict[str, float]:
    """Traits of one mask as a flat dict (`trait_columns(diameter_edges_mm)` order); see the module notes.

    mm, mm^2, mm^3 and root length density columns are NaN without `mm_per_pixel`. `valid` (or 255 in a label
    mask) limits the image to labelled pixels: root outside it is ignored and its area is not counted. Holes of
    at most `max_hole_px` pixels inside a root are filled first (0: none). `clean=Cleaning()` measures as the
    commands do (robust measurement, `rootseg.measure.cleaning`).
    """
    settings = TraitSettings(tuple(diameter_edges_mm), float(depth_of_field_mm))
    if mm_per_pixel is not None and not (math.isfinite(mm_per_pixel) and mm_per_pixel > 0):
        raise ValueError(f"mm_per_pixel must be a positive number, got {mm_per_pixel}")
    pixels = pixel_traits(mask, valid=valid, max_hole_px=max_hole_px, clean=clean)
    return traits_from_pixels(pixels, mm_per_pixel, settings)


def _in_mm(
    traits: dict[str, Any], mm_per_pixel: float | None, class_lengths_px: np.ndarray | None, class_columns: list[str]
) -> dict[str, float]:
    """The mm, mm^2, mm^3 and density columns; NaN without a resolution."""
    scale = math.nan if mm_per_pixel is None else float(mm_per_pixel)
    out = {
        "mm_per_pixel": scale,
        "length_mm": traits["length_px"] * scale,
        "diameter_mean_mm": traits["diameter_mean_px"] * scale,
        "diameter_median_mm": traits["diameter_median_px"] * scale,
        "projected_area_mm2": traits["projected_area_px2"] * scale**2,
        "surface_area_mm2": traits["surface_area_px2"] * scale**2,
        "volume_mm3": traits["volume_px3"] * scale**3,
        "image_area_mm2": traits["image_area_px"] * scale**2,
    }
    classes = class_lengths_px * scale if class_lengths_px is not None else [math.nan] * len(class_columns)
    out.update({column: float(value) for column, value in zip(class_columns, classes)})
    area_cm2 = out["image_area_mm2"] / 100.0
    per_cm2 = (out["length_mm"] / 10.0) / area_cm2 if area_cm2 > 0 else math.nan
    out["rld_cm_per_cm2"] = per_cm2
    out["rld_cm_per_cm3"] = per_cm2 / (traits["depth_of_field_mm"] / 10.0)
    return out


def length_turnover(before: np.ndarray, after: np.ndarray, mm_per_pixel: float | None = None) -> dict[str, float]:
    """Root length kept, gained and lost at one tube position between two dates, as RootDetector counts it.

    The skeleton of both masks together; each skeleton pixel's length goes to `kept` (root in both), `gained`
    (only after) or `lost` (only before). The masks must be aligned: RootDetector first warps the later image
    onto the earlier one (rootseg does not register images).
    """
    old, _ = root_and_labelled(before)
    new, _ = root_and_labelled(after)
    if old.shape != new.shape:
        raise ValueError(f"masks of one tube position must have one size: before {old.shape}, after {new.shape}")
    graph = SkeletonGraph.from_skeleton(skeletonize_mask(old | new))
    lengths = graph.pixel_lengths()
    scale = math.nan if mm_per_pixel is None else float(mm_per_pixel)
    parts = {"kept": old & new, "gained": new & ~old, "lost": old & ~new}
    out = {f"{key}_px": float(lengths[part[graph.ys, graph.xs]].sum()) for key, part in parts.items()}
    out.update({f"{key}_mm": out[f"{key}_px"] * scale for key in parts})
    return out
