"""Budget and rate-limit windows: durations such as ``5m``, ``1d`` or ``1M``, and the
``[start, end)`` span of the window that contains a given instant.

Two kinds of window:

- calendar-aligned: days, weeks, months, quarters and years follow local dates in a time zone
  (a day is midnight to midnight, so 23 or 25 hours long on DST days); ``m`` and ``h`` follow
  the UTC clock. A count above one aligns to multiples counted from the Unix epoch.
- anchored: windows repeat from an anchor (a budget's creation time). ``m h d w`` step by exact
  elapsed time (a day is 24 hours); ``M Q Y`` step by calendar months with the day clamped
  (anchor Jan 31: Feb 28/29, then Mar 31), so a ``1M`` window is never "30 days".

All datetimes are aware; results are in UTC. Nothing here reads the clock.
"""

from __future__ import annotations

import re
from calendar import monthrange
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final

_UNIT_NAMES: Final = {
    "m": "minute",
    "h": "hour",
    "d": "day",
    "w": "week",
    "M": "month",
    "Q": "quarter",
    "Y": "year",
}
_FIXED_UNITS: Final = {
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_MONTH_UNITS: Final = {"M": 1, "Q": 3, "Y": 12}
_DURATION_RE: Final = re.compile(r"([0-9]+)([mhdwMQY])")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DATE: Final = date(1970, 1, 1)
_EPOCH_MONDAY: Final = date(1969, 12, 29)
_SECOND: Final = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Duration:
    """A window length: ``Duration(30, "d")``; build one from text with `parse_duration`.

    Units: ``m`` minutes, ``h`` hours, ``d`` days, ``w`` weeks, ``M`` months, ``Q`` quarters,
    ``Y`` years.
    """

    count: int
    unit: str

    def __post_init__(self) -> None:
        if self.unit not in _UNIT_NAMES:
            raise ValueError(f"unknown duration unit {self.unit!r}: use one of m h d w M Q Y")
        if type(self.count) is not int or self.count < 1:
            raise ValueError(f"duration count must be a positive integer, not {self.count!r}")

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"

    @property
    def fixed_length(self) -> timedelta | None:
        """The exact length for ``m h d w`` (a day counted as 24 h); None for ``M Q Y``."""
        unit = _FIXED_UNITS.get(self.unit)
        return None if unit is None else unit * self.count

    @property
    def months(self) -> int | None:
        """The number of calendar months for ``M Q Y``; None for the fixed units."""
        per = _MONTH_UNITS.get(self.unit)
        return None if per is None else per * self.count

    def describe(self) -> str:
        """Human words: ``1 day``, ``30 days``, ``1 month``."""
        name = _UNIT_NAMES[self.unit]
        return f"{self.count} {name}" if self.count == 1 else f"{self.count} {name}s"


def parse_duration(text: str) -> Duration:
    """``"30d"`` -> ``Duration(30, "d")``. Lowercase ``m`` is minutes, uppercase ``M`` months."""
    match = _DURATION_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration: use a positive count and one of m (minutes), h, d, w, "
            "M (months), Q, Y, e.g. 5m, 30d or 1M"
        )
    digits, unit = match.groups()
    if digits.startswith("0"):
        raise ValueError(f"{text!r} is not a duration: the count must be positive, e.g. 1{unit}")
    return Duration(int(digits), unit)


def window_bounds(
    duration: Duration,
    now: datetime,
    *,
    calendar_aligned: bool,
    tz: tzinfo,
    anchor: datetime,
) -> tuple[datetime, datetime]:
    """The ``[start, end)`` window of `duration` that contains `now`, in UTC.

    `tz` gives local dates for calendar-aligned ``d w M Q Y`` and the calendar that anchored
    ``M Q Y`` windows step through. For anchored windows, an instant before `anchor` falls in
    the first window, the one starting at `anchor`.
    """
    _require_aware(now, "now")
    _require_aware(anchor, "anchor")
    if calendar_aligned:
        return _calendar_window(duration, now, tz)
    return _anchored_window(duration, now, tz, anchor)


def next_reset(
    duration: Duration,
    now: datetime,
    *,
    calendar_aligned: bool,
    tz: tzinfo,
    anchor: datetime,
) -> datetime:
    """When the window containing `now` ends (UTC)."""
    return window_bounds(duration, now, calendar_aligned=calendar_aligned, tz=tz, anchor=anchor)[1]


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got naive {value.isoformat()}")


def _calendar_window(duration: Duration, now: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    length = duration.fixed_length
    if duration.unit in ("m", "h"):
        assert length is not None
        start = _EPOCH + (now - _EPOCH) // length * length
        return start.astimezone(UTC), (start + length).astimezone(UTC)
    local = now.astimezone(tz).date()
    boundary: Callable[[int], datetime]
    months = duration.months
    if months is None:
        assert length is not None
        days = length.days
        origin = _EPOCH_DATE if duration.unit == "d" else _EPOCH_MONDAY
        first = (local - origin).days // days

        def boundary(i: int) -> datetime:
            return _local_midnight(origin + timedelta(days=i * days), tz)

    else:
        first = ((local.year - 1970) * 12 + local.month - 1) // months

        def boundary(i: int) -> datetime:
            year, month = divmod(i * months, 12)
            return _local_midnight(date(1970 + year, month + 1, 1), tz)

    return _containing(boundary, now, first, lowest=None)


def _anchored_window(
    duration: Duration, now: datetime, tz: tzinfo, anchor: datetime
) -> tuple[datetime, datetime]:
    origin = anchor.astimezone(UTC)
    length = duration.fixed_length
    if length is not None:
        k = max(0, (now - origin) // length)
        start = origin + k * length
        return start, start + length
    months = duration.months
    assert months is not None
    wall = anchor.astimezone(tz).replace(tzinfo=None)

    def boundary(i: int) -> datetime:
        return origin if i == 0 else _wall_to_utc(_add_months(wall, i * months), tz)

    local = now.astimezone(tz)
    elapsed = (local.year - wall.year) * 12 + local.month - wall.month
    return _containing(boundary, now, max(0, elapsed // months), lowest=0)


def _containing(
    boundary: Callable[[int], datetime], now: datetime, first: int, *, lowest: int | None
) -> tuple[datetime, datetime]:
    """Walk from the guessed window `first` to the one containing `now`.

    The guess from local dates is off by one only around DST transitions at midnight (a
    repeated local hour), so the loops run at most a step or two.
    """
    i = first
    start = boundary(i)
    while now < start and (lowest is None or i > lowest):
        i -= 1
        start = boundary(i)
    end = boundary(i + 1)
    while now >= end:
        i += 1
        start, end = end, boundary(i + 1)
    return start, end


def _local_midnight(day: date, tz: tzinfo) -> datetime:
    return _wall_to_utc(datetime.combine(day, time()), tz)


def _wall_to_utc(wall: datetime, tz: tzinfo) -> datetime:
    """The first instant at which the local clock in `tz` reads `wall` (naive).

    An ambiguous wall time (a fold) gives its first occurrence; a wall time skipped by a
    forward jump gives the instant of the jump, the first one whose local time is later.
    """
    candidates = [wall.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1)]
    real = [c for c in candidates if c.astimezone(tz).replace(tzinfo=None) == wall]
    if real:
        return min(real)
    low_instant, high_instant = sorted(candidates)
    low, high = 0, (high_instant - low_instant) // _SECOND
    while high - low > 1:  # tz transitions fall on whole seconds
        mid = (low + high) // 2
        if (low_instant + mid * _SECOND).astimezone(tz).replace(tzinfo=None) >= wall:
            high = mid
        else:
            low = mid
    return low_instant + high * _SECOND


def _add_months(wall: datetime, months: int) -> datetime:
    year, month0 = divmod(wall.year * 12 + wall.month - 1 + months, 12)
    day = min(wall.day, monthrange(year, month0 + 1)[1])
    return wall.replace(year=year, month=month0 + 1, day=day)
