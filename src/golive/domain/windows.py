"""Release windows and freeze dates: when a project may release to production.

A project may allow production releases only in weekly windows ("Mon-Thu 10:00-11:30") of
its own time zone, and block whole local days ("2026-12-24..2027-01-02", a freeze). This module
parses those settings and answers, for a given instant, whether a release may start, when the
next chance comes and when the current one ends. It reads no clock and does no I/O: the service
layer passes `now`, so tests pin it.

Time zone rules, so that the three answers always agree with each other:
* a window on a day is one stretch of real time, from the first instant the local clock shows
  `start` to the first instant it shows `end` (the next day when end <= start);
* a wall time skipped by a spring-forward jump means the first minute that exists after it, and
  a wall time repeated by a fall-back means its first occurrence;
* a freeze covers every instant whose local date is frozen, even in the middle of a window.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HORIZON = timedelta(days=400)
"""How far next_open and window_end look ahead."""

_DAY_INDEX = {name.lower(): index for index, name in enumerate(DAY_NAMES)}
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
_DATE = r"\d{4}-\d{2}-\d{2}"
_FREEZE = re.compile(rf"({_DATE})(?:\s*\.\.\s*({_DATE}))?")
_WINDOW_EXAMPLE = "'Mon-Thu 10:00-11:30'"
_FREEZE_EXAMPLE = "'2026-12-24' or '2026-12-24..2027-01-02'"


@dataclass(frozen=True)
class Window:
    """A weekly window: opens at `start` on each of `days` (0 = Monday), closes at `end`."""

    days: frozenset[int]
    start: time
    end: time
    text: str

    @property
    def overnight(self) -> bool:
        """True when the window closes on the day after it opens."""
        return self.end <= self.start


def parse_window(text: str) -> Window:
    """Days and times: ``"Mon-Thu 10:00-11:30"``, ``"Mon,Wed 14:00-16:00"``, ``"daily ..."``.

    End <= start crosses midnight (``"Sat 22:00-02:00"``); ``24:00`` ends at midnight.
    """
    try:
        # "Mon - Thu 10:00 - 11:30" is the same window; only the space between days and times counts
        parts = re.sub(r"\s*([,-])\s*", r"\1", text.strip()).split()
        if len(parts) != 2:
            raise ValueError("expected days, a space, then HH:MM-HH:MM")
        days, days_text = _parse_days(parts[0])
        start, end, times_text = _parse_times(parts[1])
    except ValueError as exc:
        raise ValueError(f"release window {text!r} is not like {_WINDOW_EXAMPLE}: {exc}") from None
    return Window(days, start, end, f"{days_text} {times_text}")


def _parse_days(text: str) -> tuple[frozenset[int], str]:
    if text.lower() == "daily":
        return frozenset(range(7)), "daily"
    days: set[int] = set()
    items: list[str] = []
    for item in text.split(","):
        names = item.split("-")
        if len(names) > 2:
            raise ValueError(f"day range {item!r} has more than two days")
        first, last = _day(names[0]), _day(names[-1])
        # modulo 7 lets a range wrap the week: Fri-Mon is Fri, Sat, Sun, Mon
        days.update((first + step) % 7 for step in range((last - first) % 7 + 1))
        items.append("-".join(DAY_NAMES[_day(name)] for name in names))
    return frozenset(days), ",".join(items)


def _day(name: str) -> int:
    try:
        return _DAY_INDEX[name.lower()]
    except KeyError:
        raise ValueError(f"unknown day {name!r} (use {' '.join(DAY_NAMES)} or daily)") from None


def _parse_times(text: str) -> tuple[time, time, str]:
    bounds = text.split("-")
    if len(bounds) != 2:
        raise ValueError(f"{text!r} is not a time range HH:MM-HH:MM")
    start, end = _clock(bounds[0], is_end=False), _clock(bounds[1], is_end=True)
    if start == end:
        raise ValueError("start and end are equal")
    normalized = "-".join(f"{hour:02d}:{minute:02d}" for hour, minute in (start, end))
    return time(start[0], start[1]), time(end[0] % 24, end[1]), normalized


def _clock(text: str, *, is_end: bool) -> tuple[int, int]:
    match = _CLOCK.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a HH:MM time")
    hour, minute = int(match[1]), int(match[2])
    if minute > 59 or (hour > 23 and not (is_end and (hour, minute) == (24, 0))):
        hint = "" if is_end else " (24:00 can only end a window)"
        raise ValueError(f"{text!r} is not a time of day{hint}")
    return hour, minute


def parse_freeze(text: str) -> tuple[date, date]:
    """``"2026-12-24"`` (one day) or ``"2026-12-24..2027-01-02"`` (both ends included)."""
    match = _FREEZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"freeze date {text!r} is not like {_FREEZE_EXAMPLE}")
    try:
        first = date.fromisoformat(match[1])
        last = date.fromisoformat(match[2] or match[1])
    except ValueError as exc:
        raise ValueError(f"freeze date {text!r} is not a real date: {exc}") from None
    if last < first:
        raise ValueError(f"freeze range {text!r} ends before it starts")
    return first, last


@dataclass(frozen=True)
class ReleasePolicy:
    """When production releases may start; the empty policy allows any time."""

    windows: tuple[Window, ...] = ()
    freeze: tuple[tuple[date, date], ...] = ()
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        # a typo in the zone must fail when the settings load, not at the first release
        _zone(self.timezone)

    @classmethod
    def from_settings(cls, windows: list[str], freeze: list[str], timezone: str) -> ReleasePolicy:
        return cls(
            tuple(parse_window(text) for text in windows),
            tuple(parse_freeze(text) for text in freeze),
            timezone,
        )

    @property
    def restricted(self) -> bool:
        return bool(self.windows or self.freeze)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r} (use a name like 'Europe/Berlin')") from None


def is_open(policy: ReleasePolicy, now: datetime) -> bool:
    """True when a release may start at `now` (an aware datetime)."""
    return _open_at(policy, _zone(policy.timezone), _utc(now))


def next_open(policy: ReleasePolicy, now: datetime) -> datetime | None:
    """The first instant >= now at which is_open holds, in the policy's zone; None past HORIZON."""
    zone = _zone(policy.timezone)
    moment = _first_change(policy, zone, _utc(now), to_open=True)
    return None if moment is None else moment.astimezone(zone)


def window_end(policy: ReleasePolicy, now: datetime) -> datetime | None:
    """The first instant after `now` at which is_open stops holding, in the policy's zone.

    Overlapping or touching windows count as one, and a freeze day cuts a window at its local
    midnight. None when closed at `now`, unrestricted, or open for all of HORIZON.
    """
    zone, utc = _zone(policy.timezone), _utc(now)
    if not policy.restricted or not _open_at(policy, zone, utc):
        return None
    moment = _first_change(policy, zone, utc, to_open=False)
    return None if moment is None else moment.astimezone(zone)


def describe(policy: ReleasePolicy) -> str:
    """One line: ``Mon-Thu 10:00-11:30 (Asia/Shanghai); frozen 2026-12-24..2027-01-02``."""
    if not policy.restricted:
        return "any time"
    windows = ", ".join(window.text for window in policy.windows) or "any time"
    line = f"{windows} ({policy.timezone})"
    if policy.freeze:
        days = (f"{a}" if a == b else f"{a}..{b}" for a, b in policy.freeze)
        line += "; frozen " + ", ".join(days)
    return line


def _utc(now: datetime) -> datetime:
    if now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    return now.astimezone(UTC)


def _open_at(policy: ReleasePolicy, zone: ZoneInfo, utc: datetime) -> bool:
    today = utc.astimezone(zone).date()
    if any(first <= today <= last for first, last in policy.freeze):
        return False
    if not policy.windows:
        return True
    # yesterday for overnight windows; tomorrow because a fall-back at midnight can show
    # yesterday's date again after tomorrow's first midnight has passed
    for offset in (-1, 0, 1):
        day = today + timedelta(days=offset)
        for window in policy.windows:
            if day.weekday() in window.days:
                start, end = _occurrence(window, day, zone)
                if start <= utc < end:
                    return True
    return False


def _occurrence(window: Window, day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    end_day = day + timedelta(days=1) if window.overnight else day
    return _instants(day, window.start, zone)[0], _instants(end_day, window.end, zone)[0]


def _instants(day: date, clock: time, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants at which the local clock shows `clock` on `day`, in order."""
    wall = datetime.combine(day, clock)
    found = {
        utc
        for fold in (0, 1)
        if _shows(utc := wall.replace(tzinfo=zone, fold=fold).astimezone(UTC), zone, wall)
    }
    return sorted(found) if found else [_after_gap(wall, zone)]


def _after_gap(wall: datetime, zone: ZoneInfo) -> datetime:
    # zoneinfo maps a skipped wall time with the offset before or after the jump, which lands on
    # a minute the clock never showed at that moment; the first minute it does show is wanted
    probe = wall
    for _ in range(2 * 24 * 60):
        probe += timedelta(minutes=1)
        utc = probe.replace(tzinfo=zone).astimezone(UTC)
        if _shows(utc, zone, probe):
            return utc
    return wall.replace(tzinfo=zone).astimezone(UTC)


def _shows(utc: datetime, zone: ZoneInfo, wall: datetime) -> bool:
    return utc.astimezone(zone).replace(tzinfo=None) == wall


def _first_change(
    policy: ReleasePolicy, zone: ZoneInfo, utc: datetime, *, to_open: bool
) -> datetime | None:
    if _open_at(policy, zone, utc) == to_open:
        return utc
    for moment in _boundaries(policy, zone, utc.astimezone(zone).date() - timedelta(days=1)):
        if moment > utc + HORIZON:
            return None
        if moment > utc and _open_at(policy, zone, moment) == to_open:
            return moment
    return None


def _boundaries(policy: ReleasePolicy, zone: ZoneInfo, first_day: date) -> Iterator[datetime]:
    """Every instant at which is_open can change, in order, from `first_day` on.

    Local midnights and every window's start and end on every day: a superfluous candidate
    costs one check, a missing one a wrong answer.
    """
    clocks = {time(0)} | {w.start for w in policy.windows} | {w.end for w in policy.windows}
    pending: list[datetime] = []
    for offset in range(HORIZON.days + 3):
        day = first_day + timedelta(days=offset)
        pending.extend(moment for clock in clocks for moment in _instants(day, clock, zone))
        # later days only yield instants from their first midnight on; earlier ones are final
        # (a repeated late hour of this day may still fall after it, so it waits)
        settled = _instants(day + timedelta(days=1), time(0), zone)[0]
        pending.sort(reverse=True)
        while pending and pending[-1] < settled:
            yield pending.pop()
