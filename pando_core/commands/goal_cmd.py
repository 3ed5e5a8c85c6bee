"""``pando goal OBJECTIVE``: keep the agent working until an objective is reached (also ``pando --goal``).

Exit codes: 0 completed; 2 failed (max iterations) or timeout; 1 blocked, cancelled, stalled or an
error; 2 bad usage.
"""

# no `from __future__ import annotations`: typer evaluates the annotations

import json
import sys
from typing import Any, TextIO

import typer

from ..context import current
from ..errors import UsageError, one_line


def goal_command(
    objective: list[str] | None = typer.Argument(
        None,
        metavar="OBJECTIVE",
        help="what to achieve (optional with --resume: extra instructions for the resumed goal)",
    ),
    max_iterations: int | None = typer.Option(
        None,
        "--max-iterations",
        min=1,
        help="stop (failed) after N agent turns (default 20, or goal.max_iterations)",
    ),
    max_duration: str | None = typer.Option(
        None,
        "--max-duration",
        help="stop (timeout) after SECONDS, or 90s/5m/1h (default 3600, or goal.max_duration)",
    ),
    resume: str | None = typer.Option(
        None,
        "--resume",
        metavar="SESSION",
        help="continue the unfinished goal of this session (id or prefix)",
    ),
    output_format: str = typer.Option("text", "--output-format", "-f", help="text, json or stream-json"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress or summary on stderr"),
    yolo: bool = typer.Option(False, "--yolo", help="approve every tool call without asking"),
    model: str | None = typer.Option(None, "--model", "-m", help="provider/model to use"),
) -> None:
    """Work toward OBJECTIVE over several agent turns until done (exit 0 completed, 1 blocked/cancelled/stalled, 2 failed/timeout)."""
    output_format, quiet, yolo, model = current().with_root_options(output_format, quiet, yolo, model)
    code = run_goal_command(
        " ".join(objective or []),
        output_format=output_format,
        quiet=quiet,
        yolo=yolo,
        model=model,
        max_iterations=max_iterations,
        max_duration=max_duration,
        resume=resume,
    )
    raise typer.Exit(code)


def run_goal_command(
    objective: str,
    *,
    output_format: str = "text",
    yolo: bool = False,
    model: str | None = None,
    resume: str | None = None,
    **options: Any,
) -> int:
    """Run goal mode in the current context and print the outcome; returns the exit code.

    The other keywords (quiet, max_iterations, max_duration, out, err) are those of `run_goal_in_app`.
    Raises UsageError (exit 2) for an empty objective or a bad option, PandoError for other failures.
    """
    from ..noninteractive import check_output_format

    output_format = check_output_format(output_format)  # usage errors before the App is built
    objective = (objective or "").strip()
    if not objective and not resume:
        raise UsageError('the goal objective is empty: pando goal "OBJECTIVE"')
    from ..app import App, AppOptions

    with App.running(current(), AppOptions(startup_mode="goal", yolo=yolo, model=model)) as app:
        return run_goal_in_app(app, objective, output_format=output_format, resume=resume, **options)


def run_goal_in_app(
    app: Any,
    objective: str,
    *,
    output_format: str = "text",
    quiet: bool = False,
    yolo: bool = False,
    model: str | None = None,
    max_iterations: int | None = None,
    max_duration: Any = None,
    resume: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Goal mode in an existing App; ``yolo`` and ``model`` are for an App not built with them."""
    from ..goal import GoalOptions
    from ..noninteractive import check_output_format, prepare_app

    output_format = check_output_format(output_format)
    goal_options = GoalOptions.resolve(app, max_iterations, max_duration)  # bad limits: a usage error first
    prepare_app(app, yolo=yolo, model=model)
    view = _GoalView(output_format, quiet, out or sys.stdout, err or sys.stderr)
    import asyncio

    result = asyncio.run(_drive(app, objective, goal_options, resume, view))
    view.finish(result)
    return result.exit_code


async def _drive(app, objective, goal_options, resume, view):  # noqa: ANN001, ANN202
    from ..goal import arun_goal
    from ..noninteractive import cancel_on_signals

    try:
        with cancel_on_signals() as cancel:
            return await arun_goal(
                app,
                objective,
                options=goal_options,
                resume_session=resume,
                on_event=view.on_event,
                cancel_event=cancel,
                on_progress=view.on_progress,
            )
    finally:
        view.stop_spinner()


class _GoalView:
    """Streams agent events (text / stream-json), progress lines on a TTY, and the final output."""

    def __init__(self, output_format: str, quiet: bool, out: TextIO, err: TextIO) -> None:
        from ..noninteractive import _Printer

        self.format = output_format
        self.quiet = quiet
        self.out = out
        self.err = err
        self.printer = _Printer(output_format, quiet, out, err)
        self.tty = self.printer.tty  # stderr is a terminal and not --quiet
        self.printer.spinner = None  # one spinner per iteration, see on_progress
        self.spinner = None
        self.streamed = False  # any text streamed at all
        self.iteration_text = False  # text streamed in the current iteration
        self.last_char = "\n"

    # -- agent events ------------------------------------------------------------------------------

    def on_event(self, event: Any) -> None:
        if event.type == "content_delta" and self.format == "text":
            self.stop_spinner()
            if not self.iteration_text and self.streamed:
                self.out.write("\n" if self.last_char == "\n" else "\n\n")
            self.iteration_text = True
            self.streamed = True
            delta = event.data.get("delta", "")
            if delta:
                self.last_char = delta[-1]
        self.printer(event)

    # -- goal progress -----------------------------------------------------------------------------

    def on_progress(self, info: Any) -> None:
        if info.kind == "started":
            if self.format == "stream-json":
                self._json_line(
                    {
                        "type": "goal_started",
                        "session_id": info.session_id,
                        "objective": info.objective,
                        "iteration": info.iteration,
                        "max_iterations": info.max_iterations,
                        "resumed": info.resumed,
                    }
                )
            if self.tty:
                verb = "resumed" if info.resumed else "started"
                self.err.write(f"Goal {verb}: {info.objective}\n")
                self.err.flush()
        elif info.kind == "iteration_start":
            self.iteration_text = False
            if self.tty and self.format == "text":
                from ..noninteractive import Spinner

                self.stop_spinner()
                self.spinner = Spinner(self.err)
                self.spinner.label = f"goal iteration {info.iteration + 1}/{info.max_iterations}"
                self.printer.spinner = self.spinner
                self.spinner.start()
        elif info.kind == "iteration":
            self.stop_spinner()
            if self.format == "stream-json":
                self._json_line(
                    {
                        "type": "goal_iteration",
                        "session_id": info.session_id,
                        "iteration": info.iteration,
                        "max_iterations": info.max_iterations,
                        "elapsed_seconds": round(info.elapsed, 3),
                        "status": info.status,
                        "progress": info.progress,
                        "next_step": info.next_step,
                        "blocked_reason": info.blocked_reason,
                    }
                )
            if self.tty:
                if self.format == "text" and self.iteration_text and self.last_char != "\n":
                    self.out.write("\n")
                    self.out.flush()
                    self.last_char = "\n"
                progress = one_line(info.progress or info.next_step or "no progress reported", 160)
                self.err.write(
                    f"iteration {info.iteration}/{info.max_iterations}, elapsed {int(info.elapsed)}s: {progress}\n"
                )
                self.err.flush()

    def stop_spinner(self) -> None:
        if self.spinner is not None:
            self.spinner.stop()
            self.spinner = None
            self.printer.spinner = None

    # -- the outcome -------------------------------------------------------------------------------

    def finish(self, result: Any) -> None:
        self.stop_spinner()
        data = result.as_json()
        if self.format == "json":
            self.out.write(json.dumps(data, indent=2) + "\n")
        elif self.format == "stream-json":
            self._json_line({"type": "result", **data})
        else:
            if self.streamed:
                if self.last_char != "\n":
                    self.out.write("\n")
            else:
                text = result.response or result.progress or result.blocked_reason or "No content available"
                self.out.write(text if text.endswith("\n") else text + "\n")
            if not self.quiet:
                self._summary(result)
        self.out.flush()
        self.err.flush()

    def _summary(self, result: Any) -> None:
        if result.status == "completed":
            self.err.write("Goal completed.\n")
        else:
            self.err.write(f"Goal finished with status: {result.status}\n")
        self.err.write(
            f"Session: {result.session_id} (iteration {result.iteration}/{result.max_iterations})\n"
        )
        if result.progress:
            self.err.write(f"Progress: {one_line(result.progress, 300)}\n")
        if result.blocked_reason and result.blocked_reason != result.progress:
            self.err.write(f"Reason: {one_line(result.blocked_reason, 300)}\n")
        if result.next_step:
            self.err.write(f"Next step: {one_line(result.next_step, 300)}\n")
        if result.status != "completed":
            self.err.write(f"Resume with: pando goal --resume {result.session_id[:8]}\n")

    def _json_line(self, data: dict) -> None:
        self.out.write(json.dumps(data) + "\n")
        self.out.flush()


def register(cli: typer.Typer) -> None:
    cli.command("goal")(goal_command)
