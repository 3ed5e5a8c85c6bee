"""The ``[cron]`` configuration: ``enabled`` and ``[[cron.jobs]]``, validated into ``CronJob``s.

The Go original's spelling is read too: a ``[CronJobs]`` table with ``Enabled`` and
``[[CronJobs.Jobs]]`` of ``Name``, ``Schedule``, ``Prompt``, ``WorkDir``, ... (any key spelled
with capitals or camel case is mapped to its snake_case name). Jobs of both tables are merged;
a job named in both is a duplicate. Every problem is a ``CronConfigError`` with one sentence
naming the job and the key, so ``pando cron`` and the scheduler can say exactly what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pando_core.errors import ConfigError

from .schedule import Schedule, ScheduleError

GO_SECTION = "CronJobs"
JOB_KEYS = (
    "name",
    "schedule",
    "prompt",
    "enabled",
    "engine",
    "model",
    "work_dir",
    "tags",
    "timeout",
    "timezone",
    "catch_up",
)
CATCH_UP = ("none", "once")


class CronConfigError(ConfigError):
    """The cron configuration is wrong; the message says which job, which key and why."""


@dataclass
class CronJob:
    name: str
    schedule: str
    prompt: str
    enabled: bool = True
    engine: str = ""
    model: str = ""
    work_dir: str = ""  # as written (relative to the pando's working directory)
    tags: list[str] = field(default_factory=list)
    timeout: Any = ""
    timezone: str = ""  # empty: local
    catch_up: str = "none"
    resolved_work_dir: str = ""  # the absolute directory the task runs in
    parsed: Schedule | None = field(default=None, repr=False, compare=False)

    def spawn_tags(self) -> list[str]:
        """``cronjob``, ``cronjob:<name>`` and the job's own tags, each once, in that order."""
        out: list[str] = []
        for tag in ["cronjob", f"cronjob:{self.name}", *self.tags]:
            if tag not in out:
                out.append(tag)
        return out

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values.pop("parsed")
        return values


@dataclass
class CronConfig:
    enabled: bool = True
    jobs: list[CronJob] = field(default_factory=list)

    def job(self, name: str) -> CronJob:
        """The job called *name* (case-insensitive, as the Go original looks them up)."""
        for job in self.jobs:
            if job.name == name:
                return job
        for job in self.jobs:
            if job.name.lower() == name.lower():
                return job
        known = ", ".join(j.name for j in self.jobs) or "none are configured"
        from pando_core.errors import NotFoundError

        raise NotFoundError(f"no cron job {name!r} (jobs: {known})")


def _snake(key: str) -> str:
    """``WorkDir`` -> ``work_dir``, ``CatchUp`` -> ``catch_up``, ``name`` stays."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", str(key)).lower()


def _normalise(table: Mapping[str, Any]) -> dict[str, Any]:
    return {_snake(key): value for key, value in table.items()}


def raw_jobs(cron: Mapping[str, Any] | None, go: Mapping[str, Any] | None) -> tuple[bool, list[Any]]:
    """``(enabled, [job tables])`` from the ``[cron]`` section and the Go ``[CronJobs]`` table."""
    enabled = True
    jobs: list[Any] = []
    for table in (go, cron):
        if not isinstance(table, Mapping):
            continue
        table = _normalise(table)
        if "enabled" in table:
            enabled = table["enabled"]
        listed = table.get("jobs") or []
        if not isinstance(listed, list):
            raise CronConfigError("cron.jobs must be a list of tables ([[cron.jobs]])")
        jobs.extend(listed)
    if not isinstance(enabled, bool):
        raise CronConfigError(f"cron.enabled must be true or false, got {enabled!r}")
    return enabled, jobs


def parse(cron: Mapping[str, Any] | None, go: Mapping[str, Any] | None, workdir: Path) -> CronConfig:
    """Validate both tables into a ``CronConfig``; the first problem raises ``CronConfigError``."""
    enabled, tables = raw_jobs(cron, go)
    jobs: list[CronJob] = []
    seen: set[str] = set()
    for index, table in enumerate(tables, 1):
        job = _parse_job(table, index, Path(workdir))
        if job.name in seen:
            raise CronConfigError(f"cron job {job.name!r} is defined twice: names must be unique")
        seen.add(job.name)
        jobs.append(job)
    return CronConfig(enabled=enabled, jobs=sorted(jobs, key=lambda j: j.name.lower()))


def _parse_job(table: Any, index: int, workdir: Path) -> CronJob:
    if not isinstance(table, Mapping):
        raise CronConfigError(f"cron job #{index} must be a table, got {type(table).__name__}")
    values = _normalise(table)
    name = values.get("name")
    if not isinstance(name, str) or not name.strip():
        raise CronConfigError(f"cron job #{index} has no name: every job needs a unique name")
    name = name.strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise CronConfigError(
            f"cron job {name!r}: a name may use letters, digits, '.', '_' and '-' (no spaces)"
        )
    where = f"cron job {name!r}"
    unknown = sorted(set(values) - set(JOB_KEYS))
    if unknown:
        raise CronConfigError(
            f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} (keys: {', '.join(JOB_KEYS)})"
        )
    text = {}
    for key in ("schedule", "prompt", "engine", "model", "work_dir", "timezone", "catch_up"):
        value = values.get(key, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise CronConfigError(f"{where}: {key} must be a string, got {value!r}")
        text[key] = value.strip() if key != "prompt" else value
    if not text["prompt"].strip():
        raise CronConfigError(f"{where}: the prompt is empty: say what the task should do")
    if not text["schedule"]:
        raise CronConfigError(f"{where}: no schedule (five fields, e.g. '0 9 * * 1-5', or @daily)")
    try:
        parsed = Schedule.parse(text["schedule"], text["timezone"])
    except ScheduleError as exc:
        raise CronConfigError(f"{where}: {exc}") from None
    enabled = values.get("enabled", True)
    if not isinstance(enabled, bool):
        raise CronConfigError(f"{where}: enabled must be true or false, got {enabled!r}")
    tags = values.get("tags") or []
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags):
        raise CronConfigError(f"{where}: tags must be a list of non-empty strings, got {tags!r}")
    catch_up = text["catch_up"] or "none"
    if catch_up not in CATCH_UP:
        raise CronConfigError(f"{where}: catch_up must be none or once, got {catch_up!r}")
    timeout = values.get("timeout", "")
    try:
        from pando_mesnada.model import parse_timeout

        parse_timeout(timeout)
    except ImportError:  # pragma: no cover - pando-mesnada is a dependency; `pando cron` says so
        pass
    except ValueError as exc:
        raise CronConfigError(f"{where}: {exc}") from None
    directory = (workdir / text["work_dir"]).resolve() if text["work_dir"] else workdir.resolve()
    if not directory.is_dir():
        raise CronConfigError(
            f"{where}: work_dir {text['work_dir']!r} is not a directory (looked for {directory})"
        )
    return CronJob(
        name=name,
        schedule=text["schedule"],
        prompt=text["prompt"],
        enabled=enabled,
        engine=text["engine"],
        model=text["model"],
        work_dir=text["work_dir"],
        tags=[t.strip() for t in tags],
        timeout=timeout,
        timezone=text["timezone"],
        catch_up=catch_up,
        resolved_work_dir=str(directory),
        parsed=parsed,
    )


def from_app(app: Any) -> CronConfig:
    """The jobs of the App's configuration as loaded at start."""
    config = app.config
    return parse(config.section("cron"), config.data.get(GO_SECTION), Path(app.workdir))


def read_current(workdir: Path) -> CronConfig:
    """The jobs as the config files say now (read again: they may have changed since start)."""
    from pando_core.config import load_config

    from .plugin import SECTION

    config = load_config(Path(workdir), [SECTION])
    return parse(config.section("cron"), config.data.get(GO_SECTION), Path(workdir))


def config_paths(workdir: Path) -> list[Path]:
    """The files whose change means the jobs may have changed."""
    from pando_core.config import project_config_paths, user_config_paths

    return [*user_config_paths(), *project_config_paths(Path(workdir))]
