from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tollway.governance.windows import Duration, next_reset, parse_duration, window_bounds

BERLIN = ZoneInfo("Europe/Berlin")
SANTIAGO = ZoneInfo("America/Santiago")  # DST changes at local midnight
ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/Santiago",
    "America/Havana",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "Asia/Kolkata",
    "Pacific/Apia",  # skipped 2011-12-30 entirely
]
ANCHOR = datetime(2020, 1, 1, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


def cal(text: str, now: datetime, tz: ZoneInfo = BERLIN) -> tuple[datetime, datetime]:
    return window_bounds(parse_duration(text), now, calendar_aligned=True, tz=tz, anchor=ANCHOR)


def anchored(text: str, now: datetime, anchor: datetime, tz: ZoneInfo = BERLIN) -> datetime:
    start, _ = window_bounds(
        parse_duration(text), now, calendar_aligned=False, tz=tz, anchor=anchor
    )
    return start


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1m", Duration(1, "m")),
        ("5m", Duration(5, "m")),
        ("1h", Duration(1, "h")),
        ("1d", Duration(1, "d")),
        ("30d", Duration(30, "d")),
        ("2w", Duration(2, "w")),
        ("1M", Duration(1, "M")),
        ("1Q", Duration(1, "Q")),
        ("1Y", Duration(1, "Y")),
    ],
)
def test_parse_duration(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize("text", ["", "0d", "1x", "-1d", "d", "1", "1.5h", "1 d", "01d", "1dd"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_duration_validates_and_describes() -> None:
    with pytest.raises(ValueError):
        Duration(0, "d")
    with pytest.raises(ValueError):
        Duration(1, "s")
    assert Duration(1, "M").describe() == "1 month"
    assert Duration(30, "m").describe() == "30 minutes"
    assert Duration(2, "w").fixed_length == timedelta(days=14)
    assert Duration(1, "Q").months == 3 and Duration(1, "Q").fixed_length is None


def test_calendar_day_follows_local_midnight_and_dst() -> None:
    assert cal("1d", utc(2026, 6, 10, 12)) == (utc(2026, 6, 9, 22), utc(2026, 6, 10, 22))
    spring = cal("1d", utc(2026, 3, 29, 12))
    assert spring == (utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))
    assert spring[1] - spring[0] == timedelta(hours=23)
    autumn = cal("1d", utc(2026, 10, 25, 12))
    assert autumn[1] - autumn[0] == timedelta(hours=25)


def test_calendar_units() -> None:
    now = utc(2026, 5, 20, 12)  # a Wednesday
    assert cal("1w", now) == (utc(2026, 5, 17, 22), utc(2026, 5, 24, 22))  # Monday 00:00 local
    assert cal("1M", now) == (utc(2026, 4, 30, 22), utc(2026, 5, 31, 22))
    assert cal("1Q", now) == (utc(2026, 3, 31, 22), utc(2026, 6, 30, 22))
    assert cal("1Y", now) == (utc(2025, 12, 31, 23), utc(2026, 12, 31, 23))
    assert cal("1Y", now, ZoneInfo("UTC")) == (utc(2026, 1, 1), utc(2027, 1, 1))


def test_calendar_multiples_count_from_the_epoch() -> None:
    u = ZoneInfo("UTC")
    assert cal("2M", utc(2026, 5, 20), u) == (utc(2026, 5, 1), utc(2026, 7, 1))
    assert cal("2M", utc(2026, 4, 20), u) == (utc(2026, 3, 1), utc(2026, 5, 1))
    start, end = cal("3d", utc(2026, 5, 20, 5), u)
    assert (start.date() - datetime(1970, 1, 1).date()).days % 3 == 0
    assert end - start == timedelta(days=3)
    start, _ = cal("2w", utc(2026, 5, 20), u)
    assert start.weekday() == 0 and (start.date() - datetime(1969, 12, 29).date()).days % 14 == 0


def test_minutes_and_hours_are_clock_aligned_in_utc() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")  # +05:30 must not shift hour windows
    assert cal("5m", utc(2026, 5, 20, 12, 7, 30), kolkata) == (
        utc(2026, 5, 20, 12, 5),
        utc(2026, 5, 20, 12, 10),
    )
    assert cal("1h", utc(2026, 5, 20, 12, 59, 59), kolkata) == (
        utc(2026, 5, 20, 12),
        utc(2026, 5, 20, 13),
    )


def test_midnight_in_a_dst_gap_starts_the_day_at_the_jump() -> None:
    # Santiago 2026-09-06: 00:00 -04 jumps to 01:00 -03, so the day begins at 04:00Z.
    start, end = cal("1d", utc(2026, 9, 6, 12), SANTIAGO)
    assert start == utc(2026, 9, 6, 4)
    assert end - start == timedelta(hours=23)


def test_repeated_hour_at_midnight_belongs_to_the_long_day() -> None:
    # Santiago 2026-04-05: 24:00 -03 goes back to 23:00 -04; Saturday has 25 hours.
    start, end = cal("1d", utc(2026, 4, 5, 3, 30), SANTIAGO)
    assert (start, end) == (utc(2026, 4, 4, 3), utc(2026, 4, 5, 4))


def test_anchored_months_clamp_from_the_anchor() -> None:
    u = ZoneInfo("UTC")
    anchor = utc(2026, 1, 31, 10)
    assert anchored("1M", utc(2026, 2, 15), anchor, u) == anchor
    assert anchored("1M", utc(2026, 3, 1), anchor, u) == utc(2026, 2, 28, 10)
    assert anchored("1M", utc(2026, 4, 1), anchor, u) == utc(2026, 3, 31, 10)
    assert anchored("1M", utc(2028, 3, 1), anchor, u) == utc(2028, 2, 29, 10)
    assert anchored("1Q", utc(2026, 5, 1), anchor, u) == utc(2026, 4, 30, 10)
    assert anchored("1Y", utc(2027, 3, 1), anchor, u) == utc(2027, 1, 31, 10)


def test_a_month_is_not_thirty_days() -> None:
    anchor = utc(2026, 1, 1)
    _, end = window_bounds(
        Duration(1, "M"), utc(2026, 1, 5), calendar_aligned=False, tz=ZoneInfo("UTC"), anchor=anchor
    )
    assert end == utc(2026, 2, 1)


def test_anchored_months_keep_local_wall_time_across_dst() -> None:
    anchor = datetime(2026, 3, 15, 9, tzinfo=BERLIN)  # 08:00Z, winter time
    assert anchored("1M", utc(2026, 4, 20), anchor) == datetime(2026, 4, 15, 9, tzinfo=BERLIN)


def test_anchored_fixed_units_use_elapsed_time() -> None:
    anchor = utc(2026, 3, 28, 10, 17)
    start, end = window_bounds(
        Duration(1, "d"), utc(2026, 3, 30), calendar_aligned=False, tz=BERLIN, anchor=anchor
    )
    assert (start, end) == (utc(2026, 3, 29, 10, 17), utc(2026, 3, 30, 10, 17))  # 24 h over DST
    assert anchored("5m", utc(2026, 3, 28, 10, 23), anchor) == utc(2026, 3, 28, 10, 22)


def test_before_the_anchor_is_the_first_window() -> None:
    anchor = utc(2026, 3, 28, 10)
    for text in ("1h", "1M"):
        assert anchored(text, utc(2026, 1, 1), anchor) == anchor


def test_next_reset_and_naive_input() -> None:
    now = utc(2026, 5, 20, 12)
    assert next_reset(
        Duration(1, "d"), now, calendar_aligned=True, tz=ZoneInfo("UTC"), anchor=ANCHOR
    ) == utc(2026, 5, 21)
    with pytest.raises(ValueError, match="aware"):
        cal("1d", datetime(2026, 5, 20))


durations = st.builds(
    Duration, st.integers(min_value=1, max_value=5), st.sampled_from(list("mhdwMQY"))
)
instants = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
)


# Local midnights next to DST changes and the day Samoa skipped, +-36 h.
transitions = st.sampled_from(
    [
        utc(2026, 4, 5, 3),  # Santiago, back at midnight
        utc(2026, 9, 6, 4),  # Santiago, forward over midnight
        utc(2026, 3, 8, 5),  # Havana, forward at midnight
        utc(2026, 11, 1, 5),  # Havana and New York, back
        utc(2026, 3, 29, 1),  # Berlin
        utc(2026, 4, 4, 15),  # Lord Howe, 30 minutes back
        utc(2011, 12, 30, 10),  # Apia
    ]
).flatmap(lambda t: st.integers(-36 * 3600, 36 * 3600).map(lambda s: t + timedelta(seconds=s)))


@settings(max_examples=300, deadline=None)
@given(durations, instants, instants, st.sampled_from(ZONES), st.booleans())
def test_window_contains_now_and_tiles_time(
    duration: Duration, now: datetime, anchor: datetime, zone: str, aligned: bool
) -> None:
    _check_window(duration, now, anchor, zone, aligned)


@settings(max_examples=300, deadline=None)
@given(durations, transitions, transitions, st.sampled_from(ZONES), st.booleans())
def test_windows_around_dst_changes(
    duration: Duration, now: datetime, anchor: datetime, zone: str, aligned: bool
) -> None:
    _check_window(duration, now, anchor, zone, aligned)


def _check_window(
    duration: Duration, now: datetime, anchor: datetime, zone: str, aligned: bool
) -> None:
    tz = ZoneInfo(zone)
    start, end = window_bounds(duration, now, calendar_aligned=aligned, tz=tz, anchor=anchor)
    assert start.tzinfo is UTC and end.tzinfo is UTC
    assert start < end
    if aligned or now >= anchor:
        assert start <= now < end
    else:
        assert start == anchor
    # Windows tile the line: the start is in its own window, the end starts the next one.
    again = window_bounds(duration, start, calendar_aligned=aligned, tz=tz, anchor=anchor)
    assert again == (start, end)
    following = window_bounds(duration, end, calendar_aligned=aligned, tz=tz, anchor=anchor)
    assert following[0] == end
    if aligned and duration.unit in "dwMQY":
        local = start.astimezone(tz)
        assert local.hour < 2  # midnight, or just after a DST jump over it
        if duration.unit in "MQY":
            months = (local.year - 1970) * 12 + local.month - 1
            assert local.day == 1 and months % (duration.months or 1) == 0
        if duration.unit == "w":
            assert local.weekday() == 0
