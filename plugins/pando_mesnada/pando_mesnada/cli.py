"""``pando mesnada ...``: every command is a ``call_primary("mesnada.<op>")``, so it works whether
this pando is the primary (then its orchestrator runs for as long as the command does) or a
secondary of a pando running elsewhere in the same directory."""

# no `from __future__ import annotations`: typer evaluates the annotations

import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

STATUS_HELP = "pending, running, paused, completed, failed or cancelled (repeatable)"


@contextmanager
def _app():
    from pando_core.app import App, AppOptions
    from pando_core.context import current

    with App.running(current(), AppOptions(startup_mode="mesnada")) as app:
        yield app


def _call(app: Any, method: str, params: dict | None = None, timeout: float | None = None) -> Any:
    from .client import call

    return call(app, method, params, timeout)


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2))


def _ago(ms: int | None) -> str:
    if not ms:
        return "-"
    seconds = max(0, time.time() - ms / 1000)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def _one_line(text: str, width: int = 60) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _table(tasks: list[dict]) -> Any:
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("ID", "STATUS", "ENGINE", "CREATED", "TAGS", "PROMPT"):
        table.add_column(column)
    for task in tasks:
        status = task["status"]
        if task.get("progress") and task["progress"].get("percentage") is not None:
            status += f" {task['progress']['percentage']}%"
        table.add_row(task["id"], status, task["engine"], _ago(task["created_at"]), ",".join(task["tags"]), _one_line(task["prompt"]))
    return table


def _show_text(task: dict) -> None:
    rows = [
        ("id", task["id"]), ("status", task["status"]), ("engine", task["engine"] + (f" ({task['model']})" if task["model"] else "")),
        ("work dir", task["work_dir"]), ("tags", ", ".join(task["tags"]) or "-"),
        ("dependencies", ", ".join(task["dependencies"]) or "-"), ("priority", task["priority"]),
        ("timeout", f"{task['timeout_seconds']:g}s" if task["timeout_seconds"] else "-"), ("persona", task["persona"] or "-"),
        ("pid", task["pid"] or "-"), ("exit code", "-" if task["exit_code"] is None else task["exit_code"]),
        ("error", task["error"] or "-"), ("created", _ago(task["created_at"])), ("started", _ago(task["started_at"])),
        ("ended", _ago(task["completed_at"])), ("log", task["log_file"]),
    ]  # fmt: skip
    if task.get("branch"):
        rows.append(("branch", task["branch"]))
    for name, value in rows:
        typer.echo(f"{name:>13}: {value}")
    if task.get("diff_stat"):
        typer.echo("\n" + task["diff_stat"])
    if task["output_tail"]:
        typer.echo("\n--- output (tail) ---\n" + task["output_tail"])


def build_cli() -> typer.Typer:
    cli = typer.Typer(help="Sub-agent tasks: spawn, list, show, logs, wait, cancel, ...", no_args_is_help=True)

    @cli.command("spawn")
    def spawn(
        prompt: str = typer.Argument(..., help="what the sub-agent must do ('-' reads it from stdin)"),
        engine: str = typer.Option(None, "--engine", "-e", help="pando (default), claude, gemini, opencode, codex, copilot, command"),
        model: str = typer.Option(None, "--model", "-m", help="model for the engine"),
        after: list[str] = typer.Option(None, "--after", help="start only when this task has completed (repeatable)"),
        tag: list[str] = typer.Option(None, "--tag", "-t", help="a tag (repeatable)"),
        timeout: str = typer.Option(None, "--timeout", help="stop the task after this long: 90s, 10m, 1h"),
        persona: str = typer.Option(None, "--persona", help="a persona: assistant, software-engineer, qa, system-engineer, or .pando/mesnada/personas/NAME.md"),
        worktree: bool = typer.Option(False, "--worktree", help="run in a git worktree and branch of its own"),
        work_dir: str = typer.Option(None, "--work-dir", "-C", help="directory to work in (default: this one)"),
        priority: int = typer.Option(0, "--priority", help="higher starts first when tasks wait for a slot"),
        dependency_logs: bool = typer.Option(False, "--include-dependency-logs", help="append the end of the --after tasks' logs to the prompt"),
        wait: bool = typer.Option(False, "--wait", help="wait for the task to end (exit code 1 if it did not complete)"),
        as_json: bool = typer.Option(False, "--json", help="print the task as JSON"),
    ) -> None:
        """Start a sub-agent task. It keeps running after this command exits."""
        text = sys.stdin.read() if prompt == "-" else prompt
        params: dict[str, Any] = {"prompt": text, "tags": list(tag or []), "dependencies": list(after or []), "priority": priority}
        for key, value in (("engine", engine), ("model", model), ("timeout", timeout), ("persona", persona), ("work_dir", work_dir)):
            if value is not None:
                params[key] = value
        if worktree:
            params["isolation"] = "worktree"
        if dependency_logs:
            params["include_dependency_logs"] = True
        with _app() as app:
            task = _call(app, "spawn", params)
            if wait:
                from .client import wait_for

                task = wait_for(app, [task["id"]])["tasks"][0]
        if as_json:
            _print_json(task)
        else:
            typer.echo(f"{task['id']} {task['status']}")
            if wait and task["output_tail"]:
                typer.echo(task["output_tail"])
        if wait and task["status"] != "completed":
            raise typer.Exit(1)

    @cli.command("list")
    def list_(
        status: list[str] = typer.Option(None, "--status", "-s", help=STATUS_HELP),
        tag: list[str] = typer.Option(None, "--tag", "-t", help="only tasks with all these tags (repeatable)"),
        limit: int = typer.Option(None, "--limit", "-n", help="at most this many (newest first)"),
        as_json: bool = typer.Option(False, "--json", help="print the tasks as JSON"),
        watch: bool = typer.Option(False, "--watch", "-w", help="a live table, refreshed every second (Ctrl-C ends it)"),
        watch_for: float = typer.Option(None, "--for", help="with --watch: stop after this many seconds"),
    ) -> None:
        """List tasks, newest first."""
        params: dict[str, Any] = {"status": list(status or []) or None, "tags": list(tag or []) or None, "limit": limit}
        with _app() as app:
            if not watch:
                tasks = _call(app, "list", params)
                if as_json:
                    _print_json(tasks)
                elif not tasks:
                    typer.echo("no tasks")
                else:
                    from rich.console import Console

                    Console().print(_table(tasks))
                return
            from rich.live import Live

            end = None if watch_for is None else time.monotonic() + watch_for
            try:
                with Live(_table(_call(app, "list", params)), refresh_per_second=2) as live:
                    while end is None or time.monotonic() < end:
                        time.sleep(1.0)
                        live.update(_table(_call(app, "list", params)))
            except KeyboardInterrupt:
                pass

    @cli.command("show")
    def show(task_id: str = typer.Argument(..., help="the task id"), as_json: bool = typer.Option(False, "--json")) -> None:
        """Everything about one task."""
        with _app() as app:
            task = _call(app, "get", {"id": task_id})
        if as_json:
            _print_json(task)
        else:
            _show_text(task)

    @cli.command("logs")
    def logs(
        task_id: str = typer.Argument(..., help="the task id"),
        follow: bool = typer.Option(False, "--follow", "-f", help="keep printing new output until the task ends"),
        lines: int = typer.Option(None, "--lines", "-n", help="only the last N lines"),
    ) -> None:
        """Print a task's log (stdout and stderr of its process)."""
        with _app() as app:
            task = _call(app, "get", {"id": task_id})
            path = Path(task["log_file"])
            if lines is not None:
                typer.echo(_call(app, "output", {"id": task_id, "lines": lines})["output"])
                offset = path.stat().st_size if path.exists() else 0
            else:
                offset = _copy(path, 0)
            while follow and task is not None and task["status"] in ("pending", "running"):
                time.sleep(0.2)
                offset = _copy(path, offset)
                task = app.store.mesnada.find(id=task_id)  # a local read, on any instance; None once deleted
            if follow:
                _copy(path, offset)

    @cli.command("wait")
    def wait(
        task_ids: list[str] = typer.Argument(..., help="task ids"),
        any_: bool = typer.Option(False, "--any", help="return as soon as one of them ends"),
        all_: bool = typer.Option(False, "--all", help="return when all of them ended (the default)"),
        timeout: str = typer.Option(None, "--timeout", help="give up after this long (90s, 10m); exit code 2"),
        as_json: bool = typer.Option(False, "--json", help="print {tasks, timeout} as JSON"),
    ) -> None:
        """Wait for tasks to end (all of them, or --any). Exit code 0 if every task that ended
        completed, 1 if one failed or was cancelled or paused, 2 on timeout."""
        from pando_core.errors import ValidationError

        from .client import wait_for
        from .model import parse_timeout

        if any_ and all_:
            raise ValidationError("--any and --all exclude each other")
        try:
            parse_timeout(timeout)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        with _app() as app:
            result = wait_for(app, list(task_ids), not any_, timeout)
        if as_json:
            _print_json(result)
        else:
            for task in result["tasks"]:
                typer.echo(f"{task['id']} {task['status']}" + (f" ({task['error']})" if task["error"] else ""))
        if result["timeout"]:
            typer.echo("timed out waiting", err=True)
            raise typer.Exit(2)
        ended = [t for t in result["tasks"] if t["status"] not in ("pending", "running")]
        if any(t["status"] != "completed" for t in ended):
            raise typer.Exit(1)

    def simple(name: str, method: str, doc: str) -> None:
        def command(task_id: str = typer.Argument(..., help="the task id"), as_json: bool = typer.Option(False, "--json")) -> None:
            with _app() as app:
                result = _call(app, method, {"id": task_id})
            if as_json:
                _print_json(result)
            elif isinstance(result, dict) and "status" in result:
                typer.echo(f"{result['id']} {result['status']}")
            else:
                typer.echo(f"{task_id}: {name} done")

        command.__doc__ = doc
        cli.command(name)(command)

    simple("cancel", "cancel", "Cancel a pending or running task (its whole process group is stopped).")
    simple("pause", "pause", "Stop a task's process and mark it paused (resume starts a continuation).")
    simple("resume", "resume", "A new task that continues a paused or ended one (pointing at its log).")
    simple("retry", "retry", "A new task with the same parameters; its output goes on in the same log.")
    simple("relaunch", "relaunch", "Run the same task (same id) again from pending.")
    simple("delete", "delete", "Delete a task (stopping it if running); its log stays.")
    simple("purge", "purge", "Delete a task and its log and files (fine if it is already gone).")

    @cli.command("stats")
    def stats(as_json: bool = typer.Option(False, "--json")) -> None:
        """Counts of tasks by status, and the running ones."""
        with _app() as app:
            result = _call(app, "stats")
        if as_json:
            _print_json(result)
            return
        typer.echo(f"{result['total']} tasks (max {result['max_parallel']} at once, backend {result['backend']})")
        for status, count in result["by_status"].items():
            typer.echo(f"  {status:>9}: {count}")

    return cli


def _copy(path: Path, offset: int) -> int:
    """Print what *path* has after *offset*; the new offset."""
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            while chunk := handle.read(65536):
                sys.stdout.write(chunk.decode("utf-8", "replace"))
                offset += len(chunk)
    except FileNotFoundError:
        return offset
    sys.stdout.flush()
    return offset
