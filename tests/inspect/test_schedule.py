"""Query schedules: the next run is the first matching second after now, for every
schedule; omitted fields follow the binding's cron-like reading; bad ones are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from traceledger.errors import SubscriptionError
from traceledger.inspect.schedule import Schedule, parse_schedule

MOMENT = datetime(2026, 3, 1, 23, 59, 58, 500_000, tzinfo=UTC)  # a Sunday


def _matches(schedule: Schedule, moment: datetime) -> bool:
    seconds, minutes, hours = schedule.allowed[:3]
    return (
        moment.second in seconds
        and moment.minute in minutes
        and moment.hour in hours
        and schedule.matches_day(moment)
    )


@given(
    st.sets(st.integers(0, 59), min_size=1, max_size=5),
    st.sets(st.integers(0, 59), min_size=1, max_size=5),
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
)
def test_the_next_run_is_the_first_matching_second_after_now(
    seconds: set[int], minutes: set[int], now: datetime
) -> None:
    text = {"second": ",".join(map(str, seconds)), "minute": ",".join(map(str, minutes))}
    schedule = parse_schedule(text)
    run = schedule.next_after(now)
    assert run > now
    assert _matches(schedule, run)
    # Every hour matches, so a run comes within the hour: check each second before it.
    moment = now.replace(microsecond=0) + timedelta(seconds=1)
    while moment < run:
        assert not _matches(schedule, moment)
        moment += timedelta(seconds=1)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"hour": "1", "minute": "5"}, datetime(2026, 3, 2, 1, 5, tzinfo=UTC)),
        ({"second": "0/30"}, datetime(2026, 3, 2, 0, 0, 0, tzinfo=UTC)),
        ({"minute": "[10-12]"}, datetime(2026, 3, 2, 0, 10, tzinfo=UTC)),
        ({"dayOfWeek": "1"}, datetime(2026, 3, 2, tzinfo=UTC)),  # Monday, midnight
        ({"dayOfMonth": "15", "hour": 6}, datetime(2026, 3, 15, 6, tzinfo=UTC)),
        ({"month": "12", "dayOfMonth": "25"}, datetime(2026, 12, 25, tzinfo=UTC)),
        ({"second": "59"}, datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_omitted_fields_read_as_the_binding_intends(
    fields: dict[str, object], expected: datetime
) -> None:
    assert parse_schedule(fields).next_after(MOMENT) == expected


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"hour": "24"},
        {"minute": "5-1"},
        {"second": "0/0"},
        {"second": "every"},
        {"week": "1"},
        {"hour": True},
        ["hour", "1"],
    ],
)
def test_bad_schedules_are_refused(fields: object) -> None:
    with pytest.raises(SubscriptionError):
        parse_schedule(fields)


def test_a_schedule_naming_no_real_date_is_refused_when_asked_for_a_run() -> None:
    with pytest.raises(SubscriptionError):
        parse_schedule({"dayOfMonth": "30", "month": "2"}).next_after(MOMENT)
