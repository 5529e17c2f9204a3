"""Release windows and freeze dates as tables, at a fixed clock (2026-06-01 is a Monday)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golive.domain.windows import (
    DAY_NAMES,
    ReleasePolicy,
    describe,
    is_open,
    next_open,
    parse_freeze,
    parse_window,
    window_end,
)


def policy(windows: list[str], freeze: list[str] | None = None, zone: str = "UTC") -> ReleasePolicy:
    return ReleasePolicy.from_settings(windows, freeze or [], zone)


def at(text: str) -> datetime:
    """``"2026-06-01 10:00Z"`` or with an explicit offset."""
    return datetime.fromisoformat(text)


def assert_moment(result: datetime | None, expected: str | None, policy: ReleasePolicy) -> None:
    if expected is None:
        assert result is None
        return
    assert result is not None
    assert result.astimezone(UTC) == at(expected).astimezone(UTC)
    assert result.utcoffset() == at(expected).utcoffset()
    assert str(result.tzinfo) == policy.timezone


ALWAYS = ReleasePolicy()
WEEKDAYS = policy(["Mon-Thu 10:00-11:30"])
OVERNIGHT = policy(["Sat 22:00-02:00"])
WRAPPING = policy(["Fri-Mon 09:00-10:00"])
LISTED = policy(["Mon,Wed,Fri 14:00-16:00"])
HOLIDAYS = policy(["daily 10:00-11:00"], ["2026-12-24..2027-01-02"])
FREEZE_ONLY = policy([], ["2026-12-25"])
ALL_DAY = policy(["daily 00:00-24:00"], ["2026-12-24"])
SUNDAY_FROZEN = policy(["Sat 22:00-02:00"], ["2026-06-07"])
SATURDAY_FROZEN = policy(["Sat 22:00-02:00"], ["2026-06-06"])
SHANGHAI = policy(["Mon-Thu 10:00-11:30"], zone="Asia/Shanghai")
OVERLAPPING = policy(["Mon 10:00-12:00", "Mon 11:00-13:00"])
TOUCHING = policy(["Mon 10:00-11:00", "Mon 11:00-12:00"])
LONG_FREEZE = policy(["daily 10:00-11:00"], ["2026-06-01..2027-06-30"])
ENDLESS_FREEZE = policy(["Mon 10:00-11:00"], ["2026-01-01..2027-12-31"])
BERLIN_GAP = policy(["Sun 02:30-04:00"], zone="Europe/Berlin")
BERLIN_REPEAT = policy(["Sun 02:30-03:30"], zone="Europe/Berlin")
BERLIN_MONDAY = policy(["Mon 10:00-11:00"], zone="Europe/Berlin")


@pytest.mark.parametrize(("text", "days", "start", "end", "normalized"), [
    ("Mon-Thu 10:00-11:30", {0, 1, 2, 3}, time(10), time(11, 30), "Mon-Thu 10:00-11:30"),
    ("Mon,Wed,Fri 14:00-16:00", {0, 2, 4}, time(14), time(16), "Mon,Wed,Fri 14:00-16:00"),
    ("Sat 22:00-02:00", {5}, time(22), time(2), "Sat 22:00-02:00"),
    ("Fri-Mon 09:00-10:00", {4, 5, 6, 0}, time(9), time(10), "Fri-Mon 09:00-10:00"),
    ("Sun-Sat 08:00-09:00", set(range(7)), time(8), time(9), "Sun-Sat 08:00-09:00"),
    ("Wed-Wed 08:00-09:00", {2}, time(8), time(9), "Wed-Wed 08:00-09:00"),
    ("Mon-Tue,Fri 10:00-12:00", {0, 1, 4}, time(10), time(12), "Mon-Tue,Fri 10:00-12:00"),
    ("daily 10:00-11:00", set(range(7)), time(10), time(11), "daily 10:00-11:00"),
    ("DAILY 00:00-24:00", set(range(7)), time(0), time(0), "daily 00:00-24:00"),
    ("Sat 20:00-24:00", {5}, time(20), time(0), "Sat 20:00-24:00"),
    ("mon-THU 10:00-11:30", {0, 1, 2, 3}, time(10), time(11, 30), "Mon-Thu 10:00-11:30"),
    ("  Tue , Thu  9:05 - 17:45 ", {1, 3}, time(9, 5), time(17, 45), "Tue,Thu 09:05-17:45"),
])
def test_parse_window(text: str, days: set[int], start: time, end: time, normalized: str) -> None:
    window = parse_window(text)
    assert (window.days, window.start, window.end, window.text) == (days, start, end, normalized)


@pytest.mark.parametrize("text", [
    "", "Mon", "10:00-11:00", "Mon-Thu 10-11", "Mon-Thu 10:00", "Mon 10:00-11:00 extra",
    "Mox 10:00-11:00", "Monday 10:00-11:00", "Mon,,Tue 10:00-11:00", "Mon-Tue-Wed 10:00-11:00",
    "daily,Mon 10:00-11:00", "Mon 10:00-10:00", "Mon 00:00-00:00", "Mon 24:00-01:00",
    "Mon 10:00-24:30", "Mon 10:60-11:00", "Mon 25:00-26:00", "Mon 10:00-11:00-12:00",
    "Mon 10:00\u201311:00", "Mon 10h00-11h00", "Mon 1000-1100",
])
def test_parse_window_rejects(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_window(text)
    message = str(caught.value)
    assert f"release window {text!r}" in message
    assert "'Mon-Thu 10:00-11:30'" in message


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-12-24", (date(2026, 12, 24), date(2026, 12, 24))),
    ("2026-12-24..2027-01-02", (date(2026, 12, 24), date(2027, 1, 2))),
    (" 2026-12-24 .. 2026-12-25 ", (date(2026, 12, 24), date(2026, 12, 25))),
    ("2026-12-24..2026-12-24", (date(2026, 12, 24), date(2026, 12, 24))),
])
def test_parse_freeze(text: str, expected: tuple[date, date]) -> None:
    assert parse_freeze(text) == expected


@pytest.mark.parametrize(("text", "why"), [
    ("", "is not like"),
    ("20261224", "is not like"),
    ("2026-1-2", "is not like"),
    ("24.12.2026", "is not like"),
    ("2026-12-24..", "is not like"),
    ("2026-12-24...2026-12-25", "is not like"),
    ("2026-12-32", "not a real date"),
    ("2026-02-29", "not a real date"),
    ("2027-01-02..2026-12-24", "ends before it starts"),
    ("2026-12-24..2026-12-23", "ends before it starts"),
])
def test_parse_freeze_rejects(text: str, why: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_freeze(text)
    assert repr(text) in str(caught.value)
    assert why in str(caught.value)


@pytest.mark.parametrize(("windows", "freeze", "zone", "named"), [
    (["Mon-Thu 10:00-11:30", "Sat 10-11"], [], "UTC", "'Sat 10-11'"),
    ([], ["2026-12-24", "2026-13-01"], "UTC", "'2026-13-01'"),
    ([], [], "Mars/Base", "'Mars/Base'"),
    ([], [], "", "''"),
    ([], [], "../etc/passwd", "'../etc/passwd'"),
])
def test_from_settings_names_the_bad_entry(
    windows: list[str], freeze: list[str], zone: str, named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        ReleasePolicy.from_settings(windows, freeze, zone)


def test_policy_rejects_unknown_zone_when_built_directly() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
        ReleasePolicy(timezone="Mars/Base")


@pytest.mark.parametrize(("subject", "restricted"), [
    (ALWAYS, False),
    (policy([], zone="Asia/Shanghai"), False),
    (WEEKDAYS, True),
    (FREEZE_ONLY, True),
])
def test_restricted(subject: ReleasePolicy, restricted: bool) -> None:
    assert subject.restricted is restricted


IS_OPEN = [
    (ALWAYS, "2026-06-06 03:17Z", True),
    (WEEKDAYS, "2026-06-01 10:00Z", True),
    (WEEKDAYS, "2026-06-01 11:29:59Z", True),
    (WEEKDAYS, "2026-06-01 11:30Z", False),
    (WEEKDAYS, "2026-06-01 09:59:59Z", False),
    (WEEKDAYS, "2026-06-04 11:00Z", True),
    (WEEKDAYS, "2026-06-05 10:30Z", False),
    (WEEKDAYS, "2026-06-07 10:30Z", False),
    (OVERNIGHT, "2026-06-06 21:59Z", False),
    (OVERNIGHT, "2026-06-06 22:00Z", True),
    (OVERNIGHT, "2026-06-07 01:59Z", True),
    (OVERNIGHT, "2026-06-07 02:00Z", False),
    (OVERNIGHT, "2026-06-07 23:00Z", False),  # the window belongs to Saturday
    (OVERNIGHT, "2026-06-06 01:00Z", False),  # Friday has no window to spill over
    (WRAPPING, "2026-06-05 09:30Z", True),
    (WRAPPING, "2026-06-06 09:30Z", True),
    (WRAPPING, "2026-06-07 09:30Z", True),
    (WRAPPING, "2026-06-08 09:30Z", True),
    (WRAPPING, "2026-06-02 09:30Z", False),
    (WRAPPING, "2026-06-04 09:30Z", False),
    (LISTED, "2026-06-01 15:00Z", True),
    (LISTED, "2026-06-02 15:00Z", False),
    (LISTED, "2026-06-03 14:00Z", True),
    (LISTED, "2026-06-05 15:59Z", True),
    (LISTED, "2026-06-06 15:00Z", False),
    (HOLIDAYS, "2026-12-23 10:30Z", True),
    (HOLIDAYS, "2026-12-23 12:00Z", False),
    (HOLIDAYS, "2026-12-24 10:30Z", False),
    (HOLIDAYS, "2027-01-01 10:30Z", False),
    (HOLIDAYS, "2027-01-02 10:30Z", False),
    (HOLIDAYS, "2027-01-03 10:30Z", True),
    (FREEZE_ONLY, "2026-12-24 23:59Z", True),
    (FREEZE_ONLY, "2026-12-25 00:00Z", False),
    (FREEZE_ONLY, "2026-12-25 23:59Z", False),
    (FREEZE_ONLY, "2026-12-26 00:00Z", True),
    (ALL_DAY, "2026-12-23 23:59Z", True),
    (ALL_DAY, "2026-12-24 12:00Z", False),
    (ALL_DAY, "2026-12-25 00:00Z", True),
    (SUNDAY_FROZEN, "2026-06-06 23:00Z", True),
    (SUNDAY_FROZEN, "2026-06-07 00:30Z", False),
    (SATURDAY_FROZEN, "2026-06-06 23:00Z", False),
    (SATURDAY_FROZEN, "2026-06-07 00:30Z", True),
    (SHANGHAI, "2026-06-01 02:30Z", True),  # 10:30 in Shanghai
    (SHANGHAI, "2026-06-01 10:30Z", False),  # 18:30 in Shanghai
    (SHANGHAI, "2026-05-31 18:30Z", False),  # Monday 02:30 in Shanghai
    (SHANGHAI, "2026-06-01 04:30+02:00", True),  # any zone of `now` works
    (policy([], ["2026-06-01"], "Asia/Shanghai"), "2026-05-31 16:00Z", False),  # local June 1
    (policy([], ["2026-06-01"], "Asia/Shanghai"), "2026-06-01 16:00Z", True),  # local June 2
]


@pytest.mark.parametrize(("subject", "now", "expected"), IS_OPEN)
def test_is_open(subject: ReleasePolicy, now: str, expected: bool) -> None:
    assert is_open(subject, at(now)) is expected


NEXT_OPEN = [
    (ALWAYS, "2026-06-06 03:17:42Z", "2026-06-06 03:17:42+00:00"),
    (WEEKDAYS, "2026-06-01 10:15:30Z", "2026-06-01 10:15:30+00:00"),
    (WEEKDAYS, "2026-06-01 11:30Z", "2026-06-02 10:00+00:00"),
    (WEEKDAYS, "2026-06-01 04:00:07Z", "2026-06-01 10:00+00:00"),
    (WEEKDAYS, "2026-06-04 12:00Z", "2026-06-08 10:00+00:00"),
    (WEEKDAYS, "2026-06-06 12:00Z", "2026-06-08 10:00+00:00"),
    (OVERNIGHT, "2026-06-07 03:00Z", "2026-06-13 22:00+00:00"),
    (WRAPPING, "2026-06-02 12:00Z", "2026-06-05 09:00+00:00"),
    (WRAPPING, "2026-06-08 10:00Z", "2026-06-12 09:00+00:00"),
    (LISTED, "2026-06-01 16:00Z", "2026-06-03 14:00+00:00"),
    (HOLIDAYS, "2026-12-23 12:00Z", "2027-01-03 10:00+00:00"),
    (FREEZE_ONLY, "2026-12-25 10:00Z", "2026-12-26 00:00+00:00"),
    (ALL_DAY, "2026-12-24 12:00Z", "2026-12-25 00:00+00:00"),
    (SATURDAY_FROZEN, "2026-06-06 12:00Z", "2026-06-07 00:00+00:00"),
    (SHANGHAI, "2026-06-01 04:00Z", "2026-06-02 10:00+08:00"),
    (SHANGHAI, "2026-05-31 12:00Z", "2026-06-01 10:00+08:00"),
    (LONG_FREEZE, "2026-06-01 12:00Z", "2027-07-01 10:00+00:00"),
    (ENDLESS_FREEZE, "2026-06-01 12:00Z", None),
    (policy([], ["2026-06-01..2027-12-31"]), "2026-06-01 12:00Z", None),
]


@pytest.mark.parametrize(("subject", "now", "expected"), NEXT_OPEN)
def test_next_open(subject: ReleasePolicy, now: str, expected: str | None) -> None:
    assert_moment(next_open(subject, at(now)), expected, subject)


WINDOW_END = [
    (ALWAYS, "2026-06-01 10:15Z", None),
    (WEEKDAYS, "2026-06-01 10:15Z", "2026-06-01 11:30+00:00"),
    (WEEKDAYS, "2026-06-01 12:00Z", None),
    (OVERNIGHT, "2026-06-06 23:00Z", "2026-06-07 02:00+00:00"),
    (OVERNIGHT, "2026-06-07 01:00Z", "2026-06-07 02:00+00:00"),
    (SUNDAY_FROZEN, "2026-06-06 23:00Z", "2026-06-07 00:00+00:00"),
    (OVERLAPPING, "2026-06-01 10:30Z", "2026-06-01 13:00+00:00"),
    (TOUCHING, "2026-06-01 10:30Z", "2026-06-01 12:00+00:00"),
    (SHANGHAI, "2026-06-01 02:30Z", "2026-06-01 11:30+08:00"),
    (FREEZE_ONLY, "2026-12-20 12:00Z", "2026-12-25 00:00+00:00"),
    (ALL_DAY, "2026-12-20 12:00Z", "2026-12-24 00:00+00:00"),
    (policy(["daily 00:00-24:00"]), "2026-12-20 12:00Z", None),  # never closes
]


@pytest.mark.parametrize(("subject", "now", "expected"), WINDOW_END)
def test_window_end(subject: ReleasePolicy, now: str, expected: str | None) -> None:
    assert_moment(window_end(subject, at(now)), expected, subject)


# Europe/Berlin: 2026-03-29 02:00 CET jumps to 03:00 CEST; 2026-10-25 03:00 CEST falls to 02:00 CET
DST: list[tuple[Callable[[ReleasePolicy, datetime], object], ReleasePolicy, str, object]] = [
    (next_open, BERLIN_GAP, "2026-03-28 12:00+01:00", at("2026-03-29 03:00+02:00")),
    (is_open, BERLIN_GAP, "2026-03-29 01:59+01:00", False),
    (is_open, BERLIN_GAP, "2026-03-29 03:00+02:00", True),
    (window_end, BERLIN_GAP, "2026-03-29 03:00+02:00", at("2026-03-29 04:00+02:00")),
    (next_open, BERLIN_GAP, "2026-03-29 05:00+02:00", at("2026-04-05 02:30+02:00")),
    (next_open, BERLIN_MONDAY, "2026-03-27 12:00+01:00", at("2026-03-30 10:00+02:00")),
    (next_open, BERLIN_REPEAT, "2026-10-24 12:00+02:00", at("2026-10-25 02:30+02:00")),
    (window_end, BERLIN_REPEAT, "2026-10-25 02:45+02:00", at("2026-10-25 03:30+01:00")),
    (is_open, BERLIN_REPEAT, "2026-10-25 02:45+01:00", True),  # the repeated hour, still open
]


@pytest.mark.parametrize(("function", "subject", "now", "expected"), DST)
def test_dst(
    function: Callable[[ReleasePolicy, datetime], object],
    subject: ReleasePolicy,
    now: str,
    expected: object,
) -> None:
    result = function(subject, at(now))
    if isinstance(result, datetime):
        # an ambiguous local time never equals a time of another zone, hence UTC
        assert isinstance(expected, datetime)
        assert result.astimezone(UTC) == expected.astimezone(UTC)
        assert result.utcoffset() == expected.utcoffset()
        assert str(result.tzinfo) == "Europe/Berlin"
    else:
        assert result == expected


@pytest.mark.parametrize("function", [is_open, next_open, window_end])
def test_naive_now_is_refused(function: Callable[[ReleasePolicy, datetime], object]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        function(WEEKDAYS, datetime(2026, 6, 1, 10, 30))


@pytest.mark.parametrize(("subject", "expected"), [
    (ALWAYS, "any time"),
    (policy(["mon-thu 10:00-11:30"]), "Mon-Thu 10:00-11:30 (UTC)"),
    (
        policy(["Mon-Thu 10:00-11:30", "Sat 22:00-02:00"], ["2026-12-24..2027-01-02"],
               "Asia/Shanghai"),
        "Mon-Thu 10:00-11:30, Sat 22:00-02:00 (Asia/Shanghai); frozen 2026-12-24..2027-01-02",
    ),
    (
        policy([], ["2026-12-24", "2026-12-31..2027-01-01"], "Europe/Berlin"),
        "any time (Europe/Berlin); frozen 2026-12-24, 2026-12-31..2027-01-01",
    ),
])
def test_describe(subject: ReleasePolicy, expected: str) -> None:
    assert describe(subject) == expected


ZONES = ["UTC", "Europe/Berlin", "Asia/Shanghai", "America/New_York", "Asia/Beirut",
         "Australia/Lord_Howe"]
MINUTE = timedelta(minutes=1)


@st.composite
def windows(draw: st.DrawFn) -> str:
    days = draw(st.sets(st.integers(0, 6), min_size=1))
    start = draw(st.integers(0, 24 * 60 - 1))
    end = draw(st.integers(1, 24 * 60).filter(lambda minute: minute != start))
    clock = "{:02d}:{:02d}-{:02d}:{:02d}".format(*divmod(start, 60), *divmod(end, 60))
    return ",".join(DAY_NAMES[day] for day in sorted(days)) + " " + clock


@st.composite
def freezes(draw: st.DrawFn) -> str:
    first = draw(st.dates(date(2026, 1, 1), date(2027, 12, 31)))
    return f"{first}..{first + timedelta(days=draw(st.integers(0, 9)))}"


policies = st.builds(
    policy,
    st.lists(windows(), max_size=3),
    st.lists(freezes(), max_size=2),
    st.sampled_from(ZONES),
)
moments = st.datetimes(
    datetime(2026, 1, 1), datetime(2027, 12, 31),
    timezones=st.sampled_from([UTC, *(ZoneInfo(zone) for zone in ZONES[1:])]),
)


def assert_constant(subject: ReleasePolicy, start: datetime, stop: datetime, state: bool) -> None:
    """is_open is `state` at every minute from `start` to just before `stop` (near both ends)."""
    # in UTC: arithmetic and comparison within one zone follow the wall clock, not real time
    start, stop = start.astimezone(UTC), stop.astimezone(UTC)
    span = int((stop - start) / MINUTE)
    steps = range(span + 1) if span <= 180 else [*range(90), *range(span - 90, span + 1)]
    probes = [start + step * MINUTE for step in steps] + [stop - timedelta(microseconds=1)]
    assert all(is_open(subject, probe) is state for probe in probes if start <= probe < stop)


@settings(max_examples=60, deadline=None, database=None)
@given(policies, moments)
def test_next_open_is_the_first_open_minute(subject: ReleasePolicy, now: datetime) -> None:
    found = next_open(subject, now)
    # freezes of at most ten days cannot close a year, so something always opens
    assert found is not None
    assert is_open(subject, found)
    assert str(found.tzinfo) == subject.timezone
    assert found.astimezone(UTC) >= now.astimezone(UTC)
    if found.astimezone(UTC) > now.astimezone(UTC):
        assert (found.second, found.microsecond) == (0, 0)
        assert_constant(subject, now, found, False)


@settings(max_examples=40, deadline=None, database=None)
@given(policies, moments)
def test_window_end_is_the_first_closed_moment(subject: ReleasePolicy, now: datetime) -> None:
    end = window_end(subject, now)
    if end is None:
        if subject.restricted and is_open(subject, now):  # then open for all of the horizon
            assert all(is_open(subject, now + timedelta(days=days)) for days in (1, 100, 399))
        return
    assert end.astimezone(UTC) > now.astimezone(UTC)
    assert not is_open(subject, end)
    assert_constant(subject, now, end, True)
