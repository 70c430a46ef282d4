"""Tube, location or depth, and date from minirhizotron file names; depth from a location along a slanted tube.

- A regular expression with named groups `tube`, `date` and `location` (or `depth`, in cm), and a
  `datetime.strptime` date format. CI-600 (`NAMINGS["ci600"]`): `Untitled_T002_L004_11.04.17_084840_004_...`
  = tube 2, location 4, 11 April 2017 (dd.mm.yy), time 08:48:40, session 4. PRMI (`NAMINGS["prmi"]`):
  `<Species>_T<tube>_L<location>_<yyyy.mm.dd>_...`, the names `rootseg.sources.prmi.NAME_RE` reads. Date
  separators `.`, `-`, `_` and `/` count alike. Names the pattern does not match are returned, never dropped.
- Depth: a location is a step along the tube and the tube slants into the soil, so
  depth_cm = location x spacing_cm x sin(angle_deg) + depth_offset_cm, the angle taken between the tube and
  the soil surface. Defaults: spacing 19.56 cm, the length along the tube of one CI-600 scan (21.59 x 19.56
  cm), so consecutive locations tile the tube; angle 45 deg, the usual installation (CID Bio-Science's
  installation notes: "angled about 45 deg"). Both are settings; a study should give its own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

CI600_PATTERN = (
    r"^(?P<prefix>[^_]*)_T(?P<tube>\d+)_L(?P<location>\d+)_(?P<date>\d{2}\.\d{2}\.\d{2})"
    r"_(?P<time>\d{6})_(?P<session>\d+)"
)
PRMI_PATTERN = (
    r"^(?P<species>[A-Za-z]+)_T(?P<tube>[A-Za-z0-9]+)_L(?P<location>[A-Za-z0-9]+)"
    r"_(?P<date>\d{4}[.\-_]\d{2}[.\-_]\d{2})"
)
#: naming convention -> (regular expression, date format)
NAMINGS: dict[str, tuple[str, str]] = {"ci600": (CI600_PATTERN, "%d.%m.%y"), "prmi": (PRMI_PATTERN, "%Y.%m.%d")}
DEFAULT_SPACING_CM = 19.56
DEFAULT_ANGLE_DEG = 45.0
_SEPARATORS = re.compile(r"[.\-_/]")


def compile_pattern(pattern: str) -> re.Pattern:
    """The pattern, checked: a valid regular expression with the groups a study needs."""
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise ValueError(
            f"study name pattern {pattern!r} is not a valid regular expression ({error}); give one with named "
            "groups such as (?P<tube>\\d+), (?P<location>\\d+) and (?P<date>...), or a naming (ci600, prmi)"
        ) from error
    groups = set(compiled.groupindex)
    missing = [g for g in ("tube", "date") if g not in groups] + (
        [] if groups & {"location", "depth"} else ["location"]
    )
    if missing:
        raise ValueError(
            f"study name pattern {pattern!r} has no named group {', '.join(missing)} (it has "
            f"{sorted(groups) or 'none'}); a study needs (?P<tube>...), (?P<date>...) and (?P<location>...) or "
            "(?P<depth>...) in cm"
        )
    return compiled


def _parse_date(value: str, date_format: str, name: str) -> datetime:
    try:
        return datetime.strptime(_SEPARATORS.sub(".", value), _SEPARATORS.sub(".", date_format))
    except ValueError as error:
        raise ValueError(
            f"{name}: date {value!r} does not parse with the date format {date_format!r} ({error}); set the date "
            "format that the file names use (CI-600: %d.%m.%y, PRMI: %Y.%m.%d)"
        ) from error


def _number(value: str, group: str, name: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise ValueError(
            f"{name}: {group} {value!r} is not a finite number, so no depth can come from it; change the name "
            f"pattern's {group} group to match digits only"
        )
    return number


def parse_names(
    names: Iterable[str], pattern: str = CI600_PATTERN, date_format: str = "%d.%m.%y"
) -> tuple[pd.DataFrame, list[str]]:
    """Tube, location or depth, date and any other named group per file name, and the names that do not match.

    Numeric tubes become integers; the date becomes a pandas Timestamp (day resolution).
    """
    compiled = compile_pattern(pattern)
    rows, unmatched = [], []
    for name in names:
        found = compiled.search(Path(str(name)).name)
        if found is None:
            unmatched.append(str(name))
            continue
        row = {"name": str(name), **found.groupdict()}
        row["date"] = _parse_date(row["date"], date_format, str(name))
        for group in ("location", "depth"):
            if row.get(group) is not None:
                row[group] = _number(row[group], group, str(name))
        rows.append(row)
    table = pd.DataFrame(rows, columns=["name", *compiled.groupindex] if not rows else None)
    if rows:
        tubes = table["tube"].astype(str)
        table["tube"] = tubes.astype(int) if tubes.str.fullmatch(r"\d+").all() else tubes
        table["date"] = pd.to_datetime(table["date"])
        if "location" in table and (table["location"] % 1 == 0).all():
            table["location"] = table["location"].astype(int)
    return table, unmatched


def depth_from_location(
    location: float | np.ndarray | pd.Series,
    spacing_cm: float = DEFAULT_SPACING_CM,
    angle_deg: float = DEFAULT_ANGLE_DEG,
    depth_offset_cm: float = 0.0,
) -> float | np.ndarray | pd.Series:
    """Vertical depth (cm) of a location along a slanted tube: location x spacing x sin(angle) + offset."""
    if not (math.isfinite(spacing_cm) and spacing_cm > 0):
        raise ValueError(f"location spacing must be a positive length in cm, got {spacing_cm}")
    if not 0 < angle_deg <= 90:
        raise ValueError(f"tube angle must be in (0, 90] degrees from the soil surface, got {angle_deg}")
    if not math.isfinite(depth_offset_cm):
        raise ValueError(f"depth_offset_cm must be a finite depth in cm, got {depth_offset_cm}")
    return location * spacing_cm * math.sin(math.radians(angle_deg)) + depth_offset_cm
