"""A simulated annotator with a clock: brush strokes and clicks cost the time a person's hand would take.

After RootPainter's simulated-user benchmark (Abe404/root_painter, `trainer/tests/sim_benchmark/method.md`):

- the mouse travels between strokes at `TRAVEL_SPEED` (800 px/s) in a straight line;
- painting is slower the less room the brush has: speed = clip(slack / (3 * JITTER_RATE), 30, 200) px/s, with
  slack = how far the brush edge stays from the region's edge (aim jitter sigma = speed * JITTER_RATE, and
  the person paints as fast as keeps 3 sigma inside the region);
- the brush stays inside the class it paints: its centres are the region eroded by the brush, so no paint
  spills onto the other class, and the last pixels along a class boundary that no such brush reaches are
  left, as a person leaves boundary-ambiguous slivers;
- the brush is sized to the region: half its equivalent radius sqrt(area / pi), large regions the biggest
  that still allows full speed, never bigger than fits;
- dabs are spaced half a brush radius apart; a stroke goes on while its next dab covers something new.

Clicks (RootSAM) cost the travel to the point plus `CLICK_SECONDS`; every image costs `LOOK_SECONDS` to look
at before anything is done. The clock counts the hand only: model time (prediction, training) is reported
apart, as RootPainter's benchmark does, because it runs while the person works or waits at a computer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

TRAVEL_SPEED = 800.0  # px/s, mouse up
MIN_PAINT_SPEED = 30.0  # px/s, careful painting in tight regions
MAX_PAINT_SPEED = 200.0  # px/s, confident painting in open areas
JITTER_RATE = 0.04  # s: aim sigma = speed * JITTER_RATE
CLICK_SECONDS = 0.3  # a press and release once the cursor is there (also: accept a mask, a key press)
LOOK_SECONDS = 2.0  # looking at a new image (and its prediction) before acting
MAX_RADIUS = 40


def paint_speed(slack: float) -> float:
    """px/s for a brush whose edge stays `slack` px from the region's edge: 3 sigma of aim jitter must fit."""
    return float(np.clip(slack / (3 * JITTER_RATE), MIN_PAINT_SPEED, MAX_PAINT_SPEED))


def disk(radius: int) -> np.ndarray:
    r = int(radius)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (xx * xx + yy * yy <= r * r).astype(np.uint8)


@dataclass
class Clock:
    """Simulated seconds of one person's hand, and where the cursor is (x, y)."""

    seconds: float = 0.0
    cursor: tuple[float, float] = (0.0, 0.0)
    strokes: int = 0
    clicks: int = 0
    painted_px: float = 0.0  # length of the brush paths
    travelled_px: float = 0.0
    events: list[tuple[str, float]] = field(default_factory=list)

    def travel(self, to: tuple[float, float]) -> None:
        distance = math.dist(self.cursor, to)
        self.seconds += distance / TRAVEL_SPEED
        self.travelled_px += distance
        self.cursor = (float(to[0]), float(to[1]))

    def paint_step(self, to: tuple[float, float], speed: float) -> None:
        distance = math.dist(self.cursor, to)
        self.seconds += distance / speed
        self.painted_px += distance
        self.cursor = (float(to[0]), float(to[1]))

    def click(self, at: tuple[float, float]) -> None:
        self.travel(at)
        self.seconds += CLICK_SECONDS
        self.clicks += 1
        self.events.append(("click", self.seconds))

    def press(self) -> None:
        """A key or button (accept a mask, save): no travel."""
        self.seconds += CLICK_SECONDS
        self.events.append(("press", self.seconds))

    def look(self) -> None:
        self.seconds += LOOK_SECONDS
        self.events.append(("look", self.seconds))


def choose_radius(target: np.ndarray, allowed: np.ndarray, area: int | None = None) -> int:
    """The brush for painting `target` inside `allowed` (both bool): half the target's equivalent radius, or for a
    large region the biggest brush that still paints at full speed, and never more than fits inside `allowed`
    where the target is. `area`: the extent to size it to, when not the target's own pixel count."""
    if not target.any():
        return 0
    area = int(area or np.count_nonzero(target))
    equivalent = math.sqrt(area / math.pi)
    full_speed_margin = 3 * MAX_PAINT_SPEED * JITTER_RATE
    wanted = equivalent - full_speed_margin if equivalent > 2 * full_speed_margin else equivalent / 2
    depth = cv2.distanceTransform(np.pad(allowed, 1, mode="edge").astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    fits = float(depth[target & allowed].max()) - 1 if (target & allowed).any() else 0.0
    return int(max(1, min(wanted, fits, MAX_RADIUS)))


class Brush:
    """Paints `target` pixels with a disc of `radius` whose every pixel stays inside `allowed`."""

    def __init__(self, target: np.ndarray, allowed: np.ndarray, radius: int, origin: tuple[int, int] = (0, 0)) -> None:
        self.origin = origin  # (x, y) of this crop's top-left pixel in the image: where the clock's cursor lives
        self.radius = int(radius)
        self.kernel = disk(self.radius)
        padded = np.pad(allowed, self.radius, mode="edge").astype(np.uint8)  # the image border is no edge
        eroded = cv2.erode(padded, self.kernel)[self.radius : -self.radius, self.radius : -self.radius]
        self.centres = eroded.astype(bool)
        reach = cv2.dilate(self.centres.astype(np.uint8), self.kernel).astype(bool)
        self.todo = target & reach  # what this brush can cover; the rest lies too close to the other class
        depth = cv2.distanceTransform(np.pad(allowed, 1, mode="edge").astype(np.uint8), cv2.DIST_L2, 5)
        self.slack = depth[1:-1, 1:-1] - self.radius
        self.painted = np.zeros(target.shape, bool)
        self.step = max(1.0, self.radius / 2)

    def _gain(self) -> np.ndarray:
        """New target pixels a dab at each centre would cover (0 where no dab may go)."""
        gain = cv2.filter2D(self.todo.astype(np.float32), -1, self.kernel.astype(np.float32))
        gain[~self.centres] = 0
        return gain

    def _dab(self, x: int, y: int) -> None:
        r, (h, w) = self.radius, self.todo.shape
        y0, y1, x0, x1 = max(0, y - r), min(h, y + r + 1), max(0, x - r), min(w, x + r + 1)
        stamp = self.kernel[y0 - y + r : y1 - y + r, x0 - x + r : x1 - x + r].astype(bool)
        self.painted[y0:y1, x0:x1] |= stamp
        self.todo[y0:y1, x0:x1] &= ~stamp

    def remaining(self) -> int:
        return int(np.count_nonzero(self.todo))

    def _sweep(self, x0: int, y0: int, x1: int, y1: int) -> None:
        """The brush dragged from one dab to the next paints everything it passes over, not only the dabs."""
        steps = max(abs(x1 - x0), abs(y1 - y0))
        for t in range(1, steps + 1):
            self._dab(round(x0 + (x1 - x0) * t / steps), round(y0 + (y1 - y0) * t / steps))

    def stroke(self, clock: Clock, done: Callable[[np.ndarray], bool] | None = None) -> bool:
        """One stroke: travel to the dab covering most, paint on while each next dab covers something new, and
        lift the brush as soon as `done(painted)` says so. False when nothing is left for this brush."""
        gain = self._gain()
        if gain.max() <= 0:
            return False
        y, x = np.unravel_index(int(gain.argmax()), gain.shape)
        ox, oy = self.origin
        clock.travel((x + ox, y + oy))
        clock.strokes += 1
        self._dab(x, y)
        heading = None
        while done is None or not done(self.painted):
            nxt = self._next(x, y, heading)
            if nxt is None:
                break
            nx, ny = nxt
            heading = (nx - x, ny - y)
            clock.paint_step((nx + ox, ny + oy), paint_speed(float(self.slack[ny, nx])))
            self._sweep(x, y, nx, ny)
            x, y = nx, ny
        return True

    def _next(self, x: int, y: int, heading: tuple[int, int] | None) -> tuple[int, int] | None:
        """The dab within one step that covers most new pixels, ties to keep the heading; None ends the stroke."""
        s, r = int(math.ceil(self.step)), self.radius
        h, w = self.todo.shape
        y0, y1, x0, x1 = max(0, y - s), min(h, y + s + 1), max(0, x - s), min(w, x + s + 1)
        py0, px0 = max(0, y0 - r), max(0, x0 - r)
        window = self.todo[py0 : min(h, y1 + r), px0 : min(w, x1 + r)].astype(np.float32)
        if not window.any():
            return None
        gain = cv2.filter2D(window, -1, self.kernel.astype(np.float32), borderType=cv2.BORDER_CONSTANT)
        gain = gain[y0 - py0 : y1 - py0, x0 - px0 : x1 - px0]
        yy, xx = np.mgrid[y0:y1, x0:x1]
        gain[~self.centres[y0:y1, x0:x1] | ((xx - x) ** 2 + (yy - y) ** 2 > self.step**2)] = 0
        gain[y - y0, x - x0] = 0
        if gain.max() < 0.5:
            return None
        straight = 0.0 if heading is None else (xx - x) * heading[0] + (yy - y) * heading[1]
        score = np.rint(gain) * 1e3 + straight / (2 * self.step + 1)  # most new pixels, then straightest
        score[gain < 0.5] = -np.inf
        j, i = np.unravel_index(int(score.argmax()), score.shape)
        return x0 + int(i), y0 + int(j)


@dataclass
class Region:
    """A connected region as a crop: `mask` (bool) at `slices` of the image, and its pixel count."""

    area: int
    slices: tuple[slice, slice]
    mask: np.ndarray
    size_hint: int | None = None  # the area a person sizes the brush to (a speckled patch's extent)

    @classmethod
    def whole(cls, mask: np.ndarray) -> Region:
        return cls(int(np.count_nonzero(mask)), (slice(0, mask.shape[0]), slice(0, mask.shape[1])), mask)


def components(mask: np.ndarray, min_area: int = 1) -> list[Region]:
    """Connected regions of `mask`, largest first (a person fixes the biggest error first), each as a crop: a
    poor model's thousands of specks stay cheap."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    regions = []
    for i in sorted(range(1, count), key=lambda i: -stats[i, cv2.CC_STAT_AREA]):
        area = int(stats[i, cv2.CC_STAT_AREA])
        if area < min_area:
            break
        x, y, w, h = (int(v) for v in stats[i, :4])
        slices = (slice(y, y + h), slice(x, x + w))
        regions.append(Region(area, slices, labels[slices] == i))
    return regions


def groups(errors: np.ndarray, allowed: np.ndarray, reach: int = 8) -> list[Region]:
    """Errors a person fixes together: error pixels within 2 * `reach` px of each other (through `allowed`) form
    one region, largest error first. A speckled patch is then swept with one brush sized to the patch, as a
    person would, rather than visited speck by speck."""
    near = cv2.dilate(errors.astype(np.uint8), disk(reach)).astype(bool) & allowed
    regions = []
    for group in components(near):
        inside = errors[group.slices] & group.mask
        area = int(np.count_nonzero(inside))
        if area:
            regions.append(Region(area, group.slices, inside, size_hint=group.area))
    return sorted(regions, key=lambda r: -r.area)


Done = Callable[[tuple[slice, slice], np.ndarray], bool]


def paint(
    clock: Clock, region: Region, allowed: np.ndarray, done: Done | None = None
) -> tuple[tuple[slice, slice], np.ndarray]:
    """Paint `region` with brushes that stay inside `allowed` (bool, the whole image): the brush
    `choose_radius` picks, then ever smaller ones for what it could not reach, until radius 1 reaches no more
    (boundary slivers are left) or `done(slices, painted)` says stop. Works in a crop around the region wide
    enough for any brush; returns (slices, painted pixels of that crop), all inside `allowed`."""
    h, w = allowed.shape
    margin = 2 * MAX_RADIUS + 2
    ys, xs = region.slices
    window = (
        slice(max(0, ys.start - margin), min(h, ys.stop + margin)),
        slice(max(0, xs.start - margin), min(w, xs.stop + margin)),
    )
    crop_allowed = allowed[window]
    target = np.zeros(crop_allowed.shape, bool)
    target[
        ys.start - window[0].start : ys.stop - window[0].start, xs.start - window[1].start : xs.stop - window[1].start
    ] = region.mask
    origin = (window[1].start, window[0].start)
    painted = np.zeros(target.shape, bool)
    remaining = target & crop_allowed
    radius = choose_radius(remaining, crop_allowed, region.size_hint)
    while radius >= 1 and remaining.any():
        brush = Brush(remaining, crop_allowed, radius, origin)
        stop = None if done is None else (lambda new, before=painted: done(window, before | new))
        while brush.stroke(clock, stop):
            if stop is not None and stop(brush.painted):
                return window, painted | brush.painted
        painted |= brush.painted
        remaining &= ~painted
        radius = min(radius - 1, choose_radius(remaining, crop_allowed))
    return window, painted


class Tally:
    """A mask being built against its truth, with F1 kept up to date in O(crop) as crops of it change."""

    def __init__(self, mask: np.ndarray, truth: np.ndarray) -> None:
        self.mask, self.truth = mask.copy(), truth
        self.tp, self.fp, self.fn = self._counts(self.mask, truth)

    @staticmethod
    def _counts(mask: np.ndarray, truth: np.ndarray) -> tuple[int, int, int]:
        tp = int(np.count_nonzero(mask & truth))
        return tp, int(np.count_nonzero(mask)) - tp, int(np.count_nonzero(truth)) - tp

    @staticmethod
    def _score(tp: int, fp: int, fn: int) -> float:
        return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)

    def f1(self) -> float:
        return self._score(self.tp, self.fp, self.fn)

    def _after(self, slices: tuple[slice, slice], crop: np.ndarray) -> tuple[int, int, int]:
        old = self._counts(self.mask[slices], self.truth[slices])
        new = self._counts(crop, self.truth[slices])
        return tuple(total - a + b for total, a, b in zip((self.tp, self.fp, self.fn), old, new))

    def f1_with(self, slices: tuple[slice, slice], crop: np.ndarray) -> float:
        """F1 if the mask's `slices` held `crop`."""
        return self._score(*self._after(slices, crop))

    def set(self, slices: tuple[slice, slice], crop: np.ndarray) -> None:
        self.tp, self.fp, self.fn = self._after(slices, crop)
        self.mask[slices] = crop


def f1(mask: np.ndarray, truth: np.ndarray) -> float:
    return Tally._score(*Tally._counts(mask, truth))
