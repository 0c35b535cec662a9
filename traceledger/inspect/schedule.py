"""EPCIS query schedules: when a scheduled subscription runs (cron-like, in UTC).

A schedule names some of `second`, `minute`, `hour`, `dayOfMonth`, `month` and `dayOfWeek`
(1 = Monday ... 7 = Sunday, as ISO 8601). Each value is a comma-separated list of numbers,
ranges (`[1-5]`, as the REST binding writes them, or `1-5`) and steps (`0/30` from 0
every 30, `*/15`). Omitted fields finer than the finest one given take their least value,
so {"hour": "1", "minute": "5"} runs at 01:05:00 each day and {"dayOfWeek": "1"} at
midnight on Mondays; other omitted fields match any value, so {"second": "0/30"} runs
every thirty seconds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from traceledger.errors import SubscriptionError

# (name, least, greatest), finest first.
FIELDS = (
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("dayOfMonth", 1, 31),
    ("month", 1, 12),
    ("dayOfWeek", 1, 7),
)
_NAMES = tuple(name for name, _, _ in FIELDS)
_DAY_FIELDS = 3  # FIELDS from here on name days, not times of day
_ELEMENT = re.compile(r"\[?(\*|\d{1,2})(?:-(\d{1,2}))?\]?(?:/(\d{1,2}))?")
# A schedule matching no day for this long never matches (say the 31st of February).
_HORIZON_DAYS = 8 * 366


@dataclass(frozen=True, slots=True)
class Schedule:
    """The allowed values of each field, finest first."""

    allowed: tuple[frozenset[int], ...]

    def matches_day(self, day: datetime) -> bool:
        _, _, _, days, months, weekdays = self.allowed
        return day.day in days and day.month in months and day.isoweekday() in weekdays

    def next_after(self, moment: datetime) -> datetime:
        """The first scheduled time strictly after `moment` (UTC, whole seconds)."""
        start = moment.astimezone(UTC).replace(microsecond=0)
        seconds, minutes, hours = (sorted(a) for a in self.allowed[:3])
        day = start.replace(hour=0, minute=0, second=0)
        now = (start.hour, start.minute)
        for n in range(_HORIZON_DAYS):
            if self.matches_day(day):
                # On the first day, skip the hours and minutes already past.
                for h, m in ((h, m) for h in hours for m in minutes if n or (h, m) >= now):
                    for s in seconds:
                        candidate = day.replace(hour=h, minute=m, second=s)
                        if candidate > moment:
                            return candidate
            day += timedelta(days=1)
        raise SubscriptionError("schedule", "the schedule names no date that exists")


def _values(name: str, text: str, low: int, high: int) -> frozenset[int]:
    found: set[int] = set()
    for element in text.split(","):
        match = _ELEMENT.fullmatch(element.strip())
        if match is None:
            raise SubscriptionError(
                name, f"schedule {name}: {element[:20]!r} is not a number, [a-b] range or a/step"
            )
        first, last, step = match.groups()
        a = low if first == "*" else int(first)
        b = int(last) if last is not None else (high if first == "*" or step else a)
        if not low <= a <= b <= high or step == "0":
            raise SubscriptionError(name, f"schedule {name} takes values from {low} to {high}")
        found.update(range(a, b + 1, int(step or 1)))
    return frozenset(found)


def parse_schedule(raw: object) -> Schedule:
    """A Schedule from the binding's `schedule` object (or WebSocket query parameters)."""
    if not isinstance(raw, Mapping) or not raw:
        raise SubscriptionError("schedule", "a schedule is an object naming at least one field")
    unknown = set(raw) - set(_NAMES)
    if unknown:
        shown = sorted(str(u)[:40] for u in unknown)
        raise SubscriptionError("schedule", f"unknown schedule fields {shown}; known: {_NAMES}")
    finest = min(_NAMES.index(n) for n in raw)
    allowed = []
    for position, (name, low, high) in enumerate(FIELDS):
        value = raw.get(name)
        if value is None:
            # Time of day below the finest field given starts at its least value; an
            # omitted day field (day of month, month, weekday) allows every day.
            least = position < finest and position < _DAY_FIELDS
            allowed.append(frozenset({low}) if least else frozenset(range(low, high + 1)))
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or len(value) > 200:
            raise SubscriptionError(name, f"schedule {name} must be a string such as '5' or '0/30'")
        allowed.append(_values(name, value, low, high))
    return Schedule(tuple(allowed))
