"""``pando cron ...``: the jobs as the config files say now, their fires from the database, and
``run`` through the primary (``cron.run_now``), so every command works from a secondary and with
no pando running (this command is then the primary for as long as it runs)."""

# no `from __future__ import annotations`: typer evaluates the annotations

import json
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

MESNADA_NEEDED = "cron jobs need the mesnada plugin (pip install pando-mesnada, and do not disable it)"


def _context() -> Any:
    from pando_core.context import current

    return current()


def _has_mesnada() -> bool:
    return "mesnada" in _context().plugins.loaded()


def _need_mesnada() -> None:
    if not _has_mesnada():
        from pando_core.errors import UsageError

        raise UsageError(MESNADA_NEEDED)


@contextmanager
def _app():
    from pando_core.app import App, AppOptions

    with App.running(_context(), AppOptions(startup_mode="cron")) as app:
        yield app


def _jobs() -> Any:
    from .config import read_current

    return read_current(Path(_context().workdir))


def _when(stamp: float | None, zone: Any = None) -> str:
    if stamp is None:
        return "-"
    return datetime.fromtimestamp(stamp, zone).strftime("%Y-%m-%d %H:%M %Z").strip()


def _cut(text: str, width: int = 40) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def _tell_primary(app: Any) -> None:
    """The primary's scheduler reads the files again (they may have changed since it did)."""
    from pando_core.errors import PandoError

    try:
        app.call_primary("cron.reload", {}, timeout=5)
    except PandoError:
        pass  # a primary without pando-cron schedules nothing anyway


def _fire_text(fire: dict) -> str:
    if fire["status"] == "fired":
        return f"fired {fire['task_id']}"
    if fire["status"] == "claimed":
        return "interrupted (claimed, the primary stopped before spawning)"
    return f"{fire['status']}: {fire.get('reason') or '-'}"


def build_cli() -> typer.Typer:
    cli = typer.Typer(
        help="Scheduled prompts run as Mesnada tasks: list, next, run, history, install", no_args_is_help=True
    )

    @cli.command("list")
    def list_jobs(as_json: bool = typer.Option(False, "--json", help="print the jobs as JSON")) -> None:
        """The configured jobs: schedule, next run, last run and its task."""
        config = _jobs()
        with _app() as app:
            _tell_primary(app)
            latest = app.store.cron.latest()
        now = time.time()
        rows = []
        for job in config.jobs:
            scheduled = config.enabled and job.enabled
            last = latest.get(job.name)
            rows.append(
                {
                    "name": job.name,
                    "schedule": job.schedule,
                    "timezone": job.timezone or "local",
                    "enabled": job.enabled,
                    "next_run": job.parsed.next_after(now) if scheduled else None,
                    "last_run": (last["claimed_at"] / 1000) if last else None,
                    "last_status": last["status"] if last else None,
                    "last_task": last["task_id"] if last else None,
                    "prompt": job.prompt,
                }
            )
        if as_json:
            _print_json({"enabled": config.enabled, "mesnada": _has_mesnada(), "jobs": rows})
            return
        if not _has_mesnada():
            typer.echo(f"note: {MESNADA_NEEDED}; no job fires", err=True)
        if not config.enabled:
            typer.echo(
                "note: [cron] enabled = false: no job fires on its schedule (`pando cron run` still works)",
                err=True,
            )
        if not rows:
            typer.echo("no cron jobs: add [[cron.jobs]] tables (name, schedule, prompt) to .pando.toml")
            return
        by_name = {job.name: job for job in config.jobs}
        table = [("NAME", "SCHEDULE", "ENABLED", "NEXT RUN", "LAST RUN", "TASK", "PROMPT")]
        for row in rows:
            zone = by_name[row["name"]].parsed.zone
            task = row["last_task"] or (row["last_status"] or "-")
            table.append(
                (row["name"], row["schedule"], "yes" if row["enabled"] else "no", _when(row["next_run"], zone),
                 _when(row["last_run"], zone), task, _cut(row["prompt"]))
            )  # fmt: skip
        widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
        for line in table:
            typer.echo(
                "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
            )

    @cli.command("next")
    def next_runs(
        name: str = typer.Argument(..., help="the job's name"),
        count: int = typer.Option(5, "--count", "-n", min=1, max=1000, help="how many run times to show"),
        as_json: bool = typer.Option(
            False, "--json", help="print them as JSON (epoch seconds and ISO times)"
        ),
    ) -> None:
        """The next times a job is scheduled to run (in its timezone)."""
        job = _jobs().job(name)
        times = job.parsed.following(time.time(), count)
        if as_json:
            _print_json(
                [{"at": t, "iso": datetime.fromtimestamp(t, job.parsed.zone).isoformat()} for t in times]
            )
            return
        for stamp in times:
            typer.echo(_when(stamp, job.parsed.zone))

    @cli.command("run")
    def run_now(
        name: str = typer.Argument(..., help="the job's name"),
        as_json: bool = typer.Option(False, "--json", help="print the fire as JSON"),
    ) -> None:
        """Fire a job now: spawn its task (in the background) and print the task id."""
        _need_mesnada()
        _jobs().job(name)  # a bad config or an unknown name is said here, in one line
        with _app() as app:
            fire = app.call_primary("cron.run_now", {"name": name}, timeout=60)
        if as_json:
            _print_json(fire)
        elif fire["status"] == "fired":
            typer.echo(fire["task_id"])
        else:
            typer.echo(f"pando: {name} {_fire_text(fire)}", err=True)
        if fire["status"] != "fired":
            raise typer.Exit(1)

    @cli.command("history")
    def history(
        name: str = typer.Argument(None, help="only this job's fires"),
        limit: int = typer.Option(20, "--limit", "-n", min=1, help="how many fires to show"),
        as_json: bool = typer.Option(False, "--json", help="print the fires as JSON"),
    ) -> None:
        """The latest fires, newest first: when, which minute, and the task or why it was skipped."""
        with _app() as app:
            fires = app.store.cron.history(job=name, limit=limit)
        if as_json:
            _print_json(fires)
            return
        if not fires:
            typer.echo(f"no fires of {name!r} yet" if name else "no cron job has fired yet")
            return
        for fire in fires:
            when = _when(fire["claimed_at"] / 1000)
            kind = "manual" if fire["kind"] == "manual" else ("catch-up" if fire["catch_up"] else "scheduled")
            typer.echo(f"{when}  {fire['job']}  {kind}  {_fire_text(fire)}")

    @cli.command("install")
    def install(
        name: str = typer.Argument(..., help="the job's name"),
        dry_run: bool = typer.Option(False, "--dry-run", help="print the new crontab, change nothing"),
        user: str = typer.Option(
            None, "--user", "-u", help="another user's crontab (crontab -u; needs root)"
        ),
    ) -> None:
        """Put the job in your crontab, so the system runs it even with no pando open."""
        from . import crontab

        job = _jobs().job(name)
        lines, new = crontab.install(
            job.name, job.schedule, Path(_context().workdir).resolve(), user=user, dry_run=dry_run
        )
        if dry_run:
            typer.echo(new, nl=False)
            return
        typer.echo(f"installed {job.name} in the crontab:\n" + "\n".join(lines))
        if job.timezone and job.timezone.lower() != "local":
            typer.echo(f"note: cron runs it in the system's timezone, not {job.timezone}", err=True)

    @cli.command("uninstall")
    def uninstall(
        name: str = typer.Argument(..., help="the job's name"),
        user: str = typer.Option(
            None, "--user", "-u", help="another user's crontab (crontab -u; needs root)"
        ),
    ) -> None:
        """Remove the job's entry from your crontab (other lines are left as they are)."""
        from . import crontab

        crontab.uninstall(name, user=user)
        typer.echo(f"removed {name} from the crontab")

    return cli
