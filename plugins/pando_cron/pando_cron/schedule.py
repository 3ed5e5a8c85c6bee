"""Cron schedules: five fields read with crontab semantics, the five ``@`` aliases, a timezone.

cronsim reads the fields as Vixie cron does (0 and 7 are Sunday, ``1-5`` is Monday to Friday,
day-of-month OR day-of-week when both are restricted) and handles DST gaps; it has no ``@daily``,
so the aliases are mapped here. ``@reboot`` has no time to compute and is refused: a job that
should run when pando starts is not what a schedule describes. Times are epoch seconds (floats)
at the boundary, so the scheduler and its clocks deal in one unit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31"),
    ("month", "1-12 or jan-dec"),
    ("day-of-week", "0-7 (0 and 7 are Sunday) or sun-sat"),
)
_SYNTAX = "numbers, ranges a-b, steps */n or a-b/n, lists a,b"


class ScheduleError(ValueError):
    """A schedule that cannot be read; the message names the field and why."""


def expand(expression: str) -> str:
    """The five-field form of *expression* (aliases mapped); ScheduleError when it is not one."""
    text = " ".join(str(expression or "").split())
    if not text:
        raise ScheduleError("the schedule is empty (five fields: minute hour day-of-month month day-of-week)")
    if text.startswith("@"):
        if text.lower() == "@reboot":
            raise ScheduleError(
                "@reboot is not supported: pando has no boot to run it at; use a time schedule"
            )
        alias = ALIASES.get(text.lower())
        if alias is None:
            raise ScheduleError(f"unknown schedule {text!r}: the aliases are {', '.join(sorted(ALIASES))}")
        return alias
    fields = text.split(" ")
    if len(fields) != 5:
        raise ScheduleError(
            f"schedule {text!r} has {len(fields)} field{'s' if len(fields) != 1 else ''}; "
            "cron needs five: minute hour day-of-month month day-of-week"
        )
    _check_fields(fields)
    return text


def _check_fields(fields: list[str]) -> None:
    from cronsim import CronSim, CronSimError

    start = datetime(2000, 1, 1)
    for index, (name, allowed) in enumerate(FIELDS):
        alone = ["*"] * 5
        alone[index] = fields[index]
        try:
            CronSim(" ".join(alone), start)
        except CronSimError:
            raise ScheduleError(f"bad {name} field {fields[index]!r}: use {allowed} ({_SYNTAX})") from None
    try:
        CronSim(" ".join(fields), start)
    except CronSimError as exc:  # each field is fine alone: they never meet (31 February)
        raise ScheduleError(
            f"schedule {' '.join(fields)!r} never fires: day-of-month {fields[2]!r} does not occur in month {fields[3]!r}"
        ) from exc


def local_timezone() -> tzinfo:
    """This machine's zone, with its DST rules (TZ, else /etc/localtime), else its current offset."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        with open("/etc/localtime", "rb") as handle:
            return ZoneInfo.from_file(handle, key="localtime")
    except (OSError, ValueError):
        return datetime.now().astimezone().tzinfo  # type: ignore[return-value]


def timezone_named(name: str | None) -> tzinfo:
    """The zone called *name* (``Europe/Madrid``, ``UTC``); empty or ``local``: this machine's."""
    if not name or name.lower() == "local":
        return local_timezone()
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"unknown timezone {name!r} (use an IANA name such as Europe/Madrid, or UTC)"
        ) from None


@dataclass(frozen=True)
class Schedule:
    expression: str  # as written (an alias stays an alias)
    fields: str  # the five fields it means
    zone: Any

    @classmethod
    def parse(cls, expression: str, timezone: str | None = None) -> Schedule:
        return cls(str(expression).strip(), expand(expression), timezone_named(timezone))

    def next_after(self, when: float) -> float:
        """The first scheduled time strictly after *when* (epoch seconds)."""
        return self.following(when, 1)[0]

    def following(self, when: float, count: int) -> list[float]:
        """The next *count* scheduled times strictly after *when*."""
        from cronsim import CronSim

        start = datetime.fromtimestamp(when, self.zone)
        out = []
        for moment in CronSim(self.fields, start):
            if moment.timestamp() > when:
                out.append(moment.timestamp())
                if len(out) >= count:
                    break
        return out

    def latest_at_or_before(self, when: float) -> float | None:
        """The last scheduled time at or before *when* (None if there is none in the last 5 years)."""
        from cronsim import CronSim

        # cronsim's reverse walk starts strictly before its start minute: begin one minute later
        start = datetime.fromtimestamp(when, self.zone).replace(second=0, microsecond=0) + timedelta(
            minutes=1
        )
        for moment in CronSim(self.fields, start, reverse=True):
            stamp = moment.timestamp()
            if stamp <= when:
                return stamp
            if when - stamp > 5 * 366 * 86400:  # pragma: no cover - cronsim ends impossible walks itself
                return None
        return None
