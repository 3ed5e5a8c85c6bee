"""Schedules as crontab reads them (cronsim, with the aliases mapped here) and the errors that
say which field is wrong and why."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pando_cron.schedule import ALIASES, Schedule, ScheduleError


def at(*parts, zone=UTC) -> float:
    return datetime(*parts, tzinfo=zone).timestamp()


def iso(stamps, zone=UTC):
    return [datetime.fromtimestamp(s, zone).strftime("%a %Y-%m-%d %H:%M") for s in stamps]


def test_0_and_7_are_sunday_and_1_5_is_monday_to_friday():
    start = at(2026, 3, 4, 12, 0)  # a Wednesday
    sunday = ["Sun 2026-03-08 00:00", "Sun 2026-03-15 00:00"]
    assert iso(Schedule.parse("0 0 * * 0", "UTC").following(start, 2)) == sunday
    assert iso(Schedule.parse("0 0 * * 7", "UTC").following(start, 2)) == sunday
    weekdays = iso(Schedule.parse("0 9 * * 1-5", "UTC").following(start, 5))
    assert [d[:3] for d in weekdays] == ["Thu", "Fri", "Mon", "Tue", "Wed"]


def test_day_of_month_or_day_of_week_when_both_are_given():
    # Vixie cron: the 13th OR a Friday, not only Friday the 13th
    runs = iso(Schedule.parse("0 0 13 * 5", "UTC").following(at(2026, 2, 1), 4))
    assert runs == [
        "Fri 2026-02-06 00:00",
        "Fri 2026-02-13 00:00",
        "Fri 2026-02-20 00:00",
        "Fri 2026-02-27 00:00",
    ]
    runs = iso(Schedule.parse("0 0 13 * 1", "UTC").following(at(2026, 3, 10), 3))
    assert runs == ["Fri 2026-03-13 00:00", "Mon 2026-03-16 00:00", "Mon 2026-03-23 00:00"]


@pytest.mark.parametrize(
    ("alias", "first"),
    [
        ("@yearly", "Fri 2027-01-01 00:00"),
        ("@monthly", "Wed 2026-04-01 00:00"),
        ("@weekly", "Sun 2026-03-08 00:00"),
        ("@daily", "Thu 2026-03-05 00:00"),
        ("@hourly", "Wed 2026-03-04 13:00"),
    ],
)
def test_the_five_aliases(alias, first):
    schedule = Schedule.parse(alias, "UTC")
    assert schedule.expression == alias and schedule.fields == ALIASES[alias]
    assert iso([schedule.next_after(at(2026, 3, 4, 12, 30))]) == [first]


def test_reboot_is_refused_with_a_reason():
    with pytest.raises(ScheduleError, match="@reboot is not supported"):
        Schedule.parse("@reboot")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", "bad minute field '61': use 0-59"),
        ("* 24 * * *", "bad hour field '24': use 0-23"),
        ("* * 0 * *", "bad day-of-month field '0': use 1-31"),
        ("* * * 13 *", "bad month field '13'"),
        ("* * * * 8", "bad day-of-week field '8': use 0-7 (0 and 7 are Sunday)"),
        ("*/0 * * * *", "bad minute field '*/0'"),
        ("* * * *", "has 4 fields; cron needs five"),
        ("0 0 31 2 *", "never fires: day-of-month '31' does not occur in month '2'"),
        ("@fortnightly", "unknown schedule '@fortnightly'"),
        ("", "the schedule is empty"),
    ],
)
def test_a_bad_schedule_names_the_field_and_why(expression, message):
    with pytest.raises(ScheduleError) as caught:
        Schedule.parse(expression)
    assert message in str(caught.value)


def test_timezones_and_dst():
    madrid = Schedule.parse("30 2 * * *", "Europe/Madrid")
    # 2026-03-29: 02:00 -> 03:00 in Madrid, so 02:30 does not exist that day: as Vixie cron does,
    # the job runs as soon as the gap ends instead of being lost
    runs = madrid.following(at(2026, 3, 27, 12, 0), 3)
    local = [datetime.fromtimestamp(s, madrid.zone).strftime("%m-%d %H:%M") for s in runs]
    assert local == ["03-28 02:30", "03-29 03:00", "03-30 02:30"]
    utc9 = Schedule.parse("0 9 * * *", "UTC").next_after(at(2026, 1, 1))
    madrid9 = Schedule.parse("0 9 * * *", "Europe/Madrid").next_after(at(2026, 1, 1))
    assert utc9 - madrid9 == 3600  # 09:00 in Madrid (UTC+1 in winter) is an hour earlier
    with pytest.raises(ScheduleError, match="unknown timezone 'Mars/Olympus'"):
        Schedule.parse("* * * * *", "Mars/Olympus")


def test_latest_at_or_before_includes_the_boundary_itself():
    every = Schedule.parse("* * * * *", "UTC")
    assert every.latest_at_or_before(at(2026, 1, 1, 10, 0)) == at(2026, 1, 1, 10, 0)
    assert every.latest_at_or_before(at(2026, 1, 1, 10, 0, 59)) == at(2026, 1, 1, 10, 0)
    daily = Schedule.parse("@daily", "UTC")
    assert daily.latest_at_or_before(at(2026, 1, 1, 10, 0)) == at(2026, 1, 1)
    assert every.next_after(at(2026, 1, 1, 10, 0)) == at(2026, 1, 1, 10, 1)
