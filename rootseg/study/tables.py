"""Minirhizotron study summaries from a per-image table: root length density by tube, depth and date, depth
profiles, and the change between imaging dates at each tube position.

Input: a CSV with a `name` column (the image file name) and trait columns (`rootseg.measure.traits`:
`length_mm`, `rld_cm_per_cm3`, ...): predict's results.csv, `rootseg.measure`'s traits.csv, or eval's
per_image.csv, whose traits carry `pred_` and `true_` prefixes (`side="pred"` or `"true"` picks one).

Change between consecutive dates at each tube position (tube x depth), as RootScanR's `Turnover.TC` computes
it from a table: net = L(t2) - L(t1), also relative to L(t1) and L(t2); `gained` is the net increase, `lost`
the net decrease. A table cannot split one position's growth from its decay; RootDetector does that by
registering the two images pixel by pixel (`rootseg.measure.traits.length_turnover` for aligned masks).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from rootseg.figures.plots import depth_profile_plot
from rootseg.io.atomic import write_text
from rootseg.io.tables import write_csv
from rootseg.study.names import (
    CI600_PATTERN,
    DEFAULT_ANGLE_DEG,
    DEFAULT_SPACING_CM,
    NAMINGS,
    depth_from_location,
    parse_names,
)

log = logging.getLogger(__name__)

SIDES = ("pred", "true")
#: how dates are grouped: each day, or imaging sessions that span days, by ISO week or month (period start)
PERIODS = {"date": None, "week": "W-SUN", "month": "M"}
#: x-axis label of the depth profile plot per profiled column
_AXIS = {
    "rld_cm_per_cm3": "root length density (cm cm$^{-3}$)",
    "rld_cm_per_cm2": "root length per image area (cm cm$^{-2}$)",
    "length_mm": "root length (mm)",
}


def read_per_image(path: Path | str, side: str | None = None) -> pd.DataFrame:
    """A per-image CSV with a `name` column; with `side`, eval's `pred_`/`true_` trait columns, unprefixed."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such per-image table (expected a CSV with a 'name' column and trait columns)")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a readable CSV table ({error})") from error
    if "name" not in table.columns:
        raise ValueError(f"{path}: no 'name' column (columns: {list(table.columns)[:12]}); the study needs file names")
    if side is None:
        return table
    if side not in SIDES:
        raise ValueError(f"side={side!r}: choose pred (the prediction's traits) or true (the annotation's)")
    prefixed = [c for c in table.columns if c.startswith(f"{side}_")]
    if not prefixed:
        raise ValueError(f"{path}: no {side}_ columns; side= is for eval's per_image.csv, which has pred_ and true_")
    return table[["name", *prefixed]].rename(columns={c: c[len(side) + 1 :] for c in prefixed})


@dataclass
class StudyTables:
    """Everything a study writes: per image, per tube x depth x date, depth profiles, changes, unmatched names."""

    images: pd.DataFrame
    positions: pd.DataFrame
    profiles: pd.DataFrame
    changes: pd.DataFrame
    unmatched: list[str]
    value: str


def _check_columns(per_image: pd.DataFrame, columns: tuple[str, ...], source: str) -> None:
    for column in columns:
        hint = "; eval's per_image.csv needs side=pred or side=true" if f"pred_{column}" in per_image.columns else ""
        if column not in per_image.columns:
            raise ValueError(
                f"{source}: no column {column!r} to summarise (columns: {list(per_image.columns)[:16]}){hint}; "
                "measure traits with a resolution (dpi=...) or choose another column, e.g. value=length_px"
            )
        if not pd.api.types.is_numeric_dtype(per_image[column]) or per_image[column].isna().all():
            raise ValueError(
                f"{source}: column {column!r} holds no numbers (traits measured without a resolution leave the "
                "mm columns empty); measure with dpi=... or mm_per_pixel=..., or choose value=length_px"
            )


def _with_depth(images: pd.DataFrame, spacing_cm: float, angle_deg: float, offset_cm: float, source: str):
    """depth_cm: a name's depth group where it has one, else from its location group (an optional group may be
    missing in some names)."""
    nan = pd.Series(float("nan"), index=images.index)
    depth = images["depth"].astype(float) if "depth" in images.columns else nan
    if "location" in images.columns:
        location = images["location"].astype(float)
        depth = depth.fillna(depth_from_location(location, spacing_cm, angle_deg, offset_cm).round(2))
    images["depth_cm"] = depth
    if images["depth_cm"].isna().any():
        missing = images.loc[images["depth_cm"].isna(), "name"].tolist()
        raise ValueError(
            f"{source}: no location or depth in {len(missing)} matched name(s) (first: {missing[:3]}); make the "
            "pattern's location or depth group required"
        )
    return images


def study_tables(
    per_image: pd.DataFrame,
    pattern: str = CI600_PATTERN,
    date_format: str = "%d.%m.%y",
    *,
    spacing_cm: float = DEFAULT_SPACING_CM,
    angle_deg: float = DEFAULT_ANGLE_DEG,
    depth_offset_cm: float = 0.0,
    value: str = "rld_cm_per_cm3",
    length: str = "length_mm",
    period: str = "date",
    source: str = "per-image table",
) -> StudyTables:
    """The study's tables from a per-image table; `value` is profiled by depth, `length` compared across dates.

    `period="week"` or `"month"` groups the dates into imaging sessions (each image's `date` becomes the
    period's first day; its own day stays in `image_date`)."""
    if period not in PERIODS:
        raise ValueError(f"period={period!r}: choose one of {', '.join(PERIODS)}")
    _check_columns(per_image, (value, length), source)
    depth_from_location(0.0, spacing_cm, angle_deg, depth_offset_cm)  # a bad setting is named before the names
    repeated = per_image["name"][per_image["name"].duplicated()].unique()
    if len(repeated):
        raise ValueError(
            f"{source}: {len(repeated)} image name(s) have more than one row (first: {list(repeated[:3])}); a study "
            "needs one row per image: remove the repeated rows (two tables appended, or one run resumed into another?)"
        )
    meta, unmatched = parse_names(per_image["name"], pattern, date_format)
    if meta.empty:
        raise ValueError(
            f"{source}: none of the {len(per_image)} file names matches the name pattern {pattern!r} (first: "
            f"{unmatched[:3]}); set the pattern (or naming) that the file names follow"
        )
    if unmatched:
        log.warning("%s: %d of %d names do not match the name pattern", source, len(unmatched), len(per_image))
    # what the names say wins over same-named columns of the table (a PRMI table may carry its own tube, date)
    images = meta.merge(per_image.drop(columns=[c for c in meta.columns if c != "name"], errors="ignore"), on="name")
    images = _with_depth(images, spacing_cm, angle_deg, depth_offset_cm, source)
    if PERIODS[period]:
        images.insert(images.columns.get_loc("date") + 1, "image_date", images["date"])
        images["date"] = images["date"].dt.to_period(PERIODS[period]).dt.start_time
    numeric = [
        c
        for c in images.columns
        if c in per_image.columns and c not in meta.columns and pd.api.types.is_numeric_dtype(images[c])
    ]
    grouped = images.groupby(["tube", "depth_cm", "date"], sort=True)
    positions = grouped[numeric].mean().join(grouped.size().rename("n_images")).reset_index()
    if "location" in images.columns:
        positions.insert(1, "location", grouped["location"].first().to_numpy())
    by_depth = positions.groupby(["date", "depth_cm"], sort=True)[value]
    profiles = pd.DataFrame(
        {"n_tubes": by_depth.count(), f"{value}_mean": by_depth.mean(), f"{value}_sd": by_depth.std(ddof=1)}
    ).reset_index()
    return StudyTables(images, positions, profiles, length_changes(positions, length), unmatched, value)


def length_changes(positions: pd.DataFrame, length: str = "length_mm") -> pd.DataFrame:
    """Root length at each tube position between consecutive dates: net, gained, lost, relative (RootScanR)."""
    ordered = positions.sort_values(["tube", "depth_cm", "date"])
    same = ordered.groupby(["tube", "depth_cm"], sort=False)
    before, date_before = same[length].shift(1), same["date"].shift(1)
    paired = ordered.assign(date_before=date_before, before=before).dropna(subset=["date_before"])
    net = paired[length] - paired["before"]
    columns = {
        "tube": paired["tube"],
        "depth_cm": paired["depth_cm"],
        "date_before": paired["date_before"],
        "date_after": paired["date"],
        "days": (paired["date"] - paired["date_before"]).dt.days,
        f"{length}_before": paired["before"],
        f"{length}_after": paired[length],
        "net": net,
        "gained": net.clip(lower=0),
        "lost": (-net).clip(lower=0) + 0.0,  # + 0.0: no -0.0 where nothing changed
        "net_per_before": net / paired["before"].where(paired["before"] > 0),
        "net_per_after": net / paired[length].where(paired[length] > 0),
    }
    if "location" in paired.columns:
        columns = {"tube": columns.pop("tube"), "location": paired["location"], **columns}
    return pd.DataFrame(columns).reset_index(drop=True)


def _rows(table: pd.DataFrame) -> list[dict]:
    """Rows for `rootseg.io.tables.write_csv`, dates as yyyy-mm-dd."""
    table = table.copy()
    for column in table.columns:
        if pd.api.types.is_datetime64_any_dtype(table[column]):
            table[column] = table[column].dt.strftime("%Y-%m-%d")
    return table.to_dict("records")


def _plot(profiles: pd.DataFrame, value: str, path: Path) -> Path:
    lines = {}
    for date in sorted(profiles["date"].unique()):
        rows = profiles[profiles["date"] == date].sort_values("depth_cm")
        label = pd.Timestamp(date).strftime("%Y-%m-%d")
        lines[label] = (rows["depth_cm"].to_numpy(), rows[f"{value}_mean"].to_numpy(), rows[f"{value}_sd"].to_numpy())
    return depth_profile_plot(lines, path, _AXIS.get(value, value))


def write_study(tables: StudyTables, out_dir: Path | str) -> dict[str, Path]:
    """Write the study's tables, the depth profile plot and unmatched.txt into `out_dir`; returns the paths."""
    out = Path(out_dir)
    paths = {
        "images": write_csv(out / "images.csv", _rows(tables.images)),
        "positions": write_csv(out / "tube_depth_date.csv", _rows(tables.positions)),
        "profiles": write_csv(out / "depth_profiles.csv", _rows(tables.profiles)),
        "changes": write_csv(out / "changes.csv", _rows(tables.changes), list(tables.changes.columns)),
        "plot": _plot(tables.profiles, tables.value, out / "depth_profiles.png"),
    }
    paths["unmatched"] = write_text(out / "unmatched.txt", "".join(f"{name}\n" for name in tables.unmatched))
    return paths


def run_study(
    per_image_csv: Path | str,
    out_dir: Path | str,
    naming: str = "ci600",
    *,
    pattern: str | None = None,
    date_format: str | None = None,
    side: str | None = None,
    **options: object,
) -> tuple[StudyTables, dict[str, Path]]:
    """Read a per-image CSV and write its study into `out_dir` (nothing is written when a setting is wrong).

    `naming` picks a convention of `NAMINGS`; `pattern` / `date_format` override it. `options` go to
    `study_tables` (spacing_cm, angle_deg, depth_offset_cm, value, length, period).
    """
    if naming not in NAMINGS:
        raise ValueError(f"study naming {naming!r} is not one of {sorted(NAMINGS)}; or give pattern= and date_format=")
    per_image = read_per_image(per_image_csv, side)
    default_pattern, default_format = NAMINGS[naming]
    tables = study_tables(
        per_image, pattern or default_pattern, date_format or default_format, source=str(per_image_csv), **options
    )
    return tables, write_study(tables, out_dir)
