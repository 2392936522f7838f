"""NCRONTAB schedules as the timer trigger reads them: six fields with seconds.

`{second} {minute} {hour} {day} {month} {day-of-week}`; each field takes `*`, a value, a range `a-b`, a step
`*/n`, `a-b/n` or `a/n`, or a comma-separated list of those. Months and days of the week also take names
(`Jan`, `Mon`); day-of-week 0 (or 7) is Sunday. As in NCrontab, a time matches when every field matches
(day of month AND day of week). Times are evaluated in UTC unless WEBSITE_TIME_ZONE names an IANA zone.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
# (name, low, high, names)
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("second", 0, 59, {}),
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _DAYS),
)


class ScheduleError(ValueError):
    """A schedule expression the timer trigger would refuse."""


def _value(text: str, field: str, low: int, high: int, names: dict[str, int]) -> int:
    key = text.lower()
    if key in names:
        return names[key]
    if not re.fullmatch(r"\d+", text):
        raise ScheduleError(f"{field} field: {text!r} is not a number")
    number = int(text)
    if not low <= number <= high:
        raise ScheduleError(f"{field} field: {number} is outside {low}-{high}")
    return number


def _parse_field(text: str, field: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        if item == "":
            raise ScheduleError(f"{field} field: empty list item in {text!r}")
        step = 1
        if "/" in item:
            item, step_text = item.split("/", 1)
            if not re.fullmatch(r"\d+", step_text) or int(step_text) == 0:
                raise ScheduleError(f"{field} field: bad step {step_text!r}")
            step = int(step_text)
        if item == "*":
            start, end = low, high if field != "day-of-week" else 6
        elif "-" in item:
            first, last = item.split("-", 1)
            start, end = _value(first, field, low, high, names), _value(last, field, low, high, names)
            if start > end:
                raise ScheduleError(f"{field} field: range {item!r} runs backwards")
        else:
            start = _value(item, field, low, high, names)
            end = (high if field != "day-of-week" else 6) if step != 1 else start
        values.update(range(start, end + 1, step))
    if field == "day-of-week" and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        fields = expression.split()
        if len(fields) != 6:
            raise ScheduleError(
                f"schedule {expression!r}: expected 6 fields "
                "({second} {minute} {hour} {day} {month} {day-of-week}), got " + str(len(fields))
            )
        try:
            parsed = [_parse_field(text, *spec) for text, spec in zip(fields, _FIELDS, strict=True)]
        except ScheduleError as exc:
            raise ScheduleError(f"schedule {expression!r}: {exc}") from None
        return cls(expression, *parsed)

    def matches(self, when: dt.datetime) -> bool:
        return (
            when.second in self.seconds
            and when.minute in self.minutes
            and when.hour in self.hours
            and when.day in self.days
            and when.month in self.months
            and (when.isoweekday() % 7) in self.weekdays
        )

    def next_after(self, after: dt.datetime) -> dt.datetime:
        """The first matching time strictly after `after` (same tzinfo; naive stays naive)."""
        tz = after.tzinfo
        current = after.replace(tzinfo=None, microsecond=0) + dt.timedelta(seconds=1)
        limit = current + dt.timedelta(days=366 * 5)
        while current <= limit:
            if current.month not in self.months:
                year, month = (
                    (current.year + 1, 1) if current.month == 12 else (current.year, current.month + 1)
                )
                current = dt.datetime(year, month, 1)
                continue
            if current.day not in self.days or (current.isoweekday() % 7) not in self.weekdays:
                current = dt.datetime(current.year, current.month, current.day) + dt.timedelta(days=1)
                continue
            if current.hour not in self.hours:
                current = current.replace(minute=0, second=0) + dt.timedelta(hours=1)
                continue
            if current.minute not in self.minutes:
                current = current.replace(second=0) + dt.timedelta(minutes=1)
                continue
            if current.second not in self.seconds:
                current += dt.timedelta(seconds=1)
                continue
            return current.replace(tzinfo=tz)
        raise ScheduleError(f"schedule {self.expression!r} never fires")
