"""NCRONTAB six-field schedules (no I/O)."""

from __future__ import annotations

import datetime as dt

import pytest

from devtools.funchost.ncrontab import CronSchedule, ScheduleError

T0 = dt.datetime(2026, 3, 14, 10, 29, 58, 500000, tzinfo=dt.UTC)  # a Saturday


def upcoming(expression: str, start: dt.datetime = T0, count: int = 3) -> list[str]:
    schedule = CronSchedule.parse(expression)
    found, current = [], start
    for _ in range(count):
        current = schedule.next_after(current)
        found.append(current.strftime("%a %Y-%m-%d %H:%M:%S"))
    return found


def test_every_second_and_steps() -> None:
    assert upcoming("* * * * * *") == [
        "Sat 2026-03-14 10:29:59",
        "Sat 2026-03-14 10:30:00",
        "Sat 2026-03-14 10:30:01",
    ]
    assert upcoming("*/20 * * * * *") == [
        "Sat 2026-03-14 10:30:00",
        "Sat 2026-03-14 10:30:20",
        "Sat 2026-03-14 10:30:40",
    ]


def test_five_minutes_and_hourly_ranges_and_lists() -> None:
    assert upcoming("0 */5 * * * *") == [
        "Sat 2026-03-14 10:30:00",
        "Sat 2026-03-14 10:35:00",
        "Sat 2026-03-14 10:40:00",
    ]
    assert upcoming("30 15 9-10,17 * * *") == [  # 10:15:30 today has passed
        "Sat 2026-03-14 17:15:30",
        "Sun 2026-03-15 09:15:30",
        "Sun 2026-03-15 10:15:30",
    ]


def test_weekdays_names_and_and_semantics() -> None:
    assert upcoming("0 0 9 * * Mon-Fri") == [
        "Mon 2026-03-16 09:00:00",
        "Tue 2026-03-17 09:00:00",
        "Wed 2026-03-18 09:00:00",
    ]
    # NCrontab: day-of-month AND day-of-week (Friday the 13th), 7 is Sunday too
    assert upcoming("0 0 0 13 * 5", count=2) == ["Fri 2026-11-13 00:00:00", "Fri 2027-08-13 00:00:00"]
    assert upcoming("0 0 12 * Jan 7", count=1) == ["Sun 2027-01-03 12:00:00"]


def test_result_keeps_the_timezone_and_is_strictly_later() -> None:
    at = dt.datetime(2026, 1, 1, 0, 0, 0, tzinfo=dt.UTC)
    nxt = CronSchedule.parse("0 0 0 * * *").next_after(at)
    assert nxt == dt.datetime(2026, 1, 2, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 */5 * * *", "expected 6 fields"),
        ("60 * * * * *", "outside 0-59"),
        ("* * 24 * * *", "outside 0-23"),
        ("* * * 0 * *", "outside 1-31"),
        ("* * * * Foo *", "not a number"),
        ("*/0 * * * * *", "bad step"),
        ("5-1 * * * * *", "backwards"),
        ("0 0 0 30 2 *", "never fires"),
    ],
)
def test_bad_schedules_fail_loudly(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        CronSchedule.parse(expression).next_after(T0)
