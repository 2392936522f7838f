import datetime as dt

from shared.core.model import add_months


def test_due_date_is_one_calendar_month_later_clamped_to_month_end():
    utc = dt.UTC
    assert add_months(dt.datetime(2026, 1, 15, 9, tzinfo=utc), 1) == dt.datetime(2026, 2, 15, 9, tzinfo=utc)
    assert add_months(dt.datetime(2026, 1, 31, tzinfo=utc), 1) == dt.datetime(2026, 2, 28, tzinfo=utc)
    assert add_months(dt.datetime(2028, 1, 31, tzinfo=utc), 1) == dt.datetime(2028, 2, 29, tzinfo=utc)
    assert add_months(dt.datetime(2026, 12, 5, tzinfo=utc), 1) == dt.datetime(2027, 1, 5, tzinfo=utc)
    assert add_months(dt.datetime(2026, 11, 30, tzinfo=utc), 3) == dt.datetime(2027, 2, 28, tzinfo=utc)
