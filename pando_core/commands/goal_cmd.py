"""``pando goal OBJECTIVE``: keep the agent working until an objective is reached (also ``pando --goal``).

Exit codes: 0 completed; 2 failed (max iterations) or timeout; 1 blocked, cancelled, stalled or an
error; 2 bad usage.
"""

# no `from __future__ import annotations`: typer evaluates the annotations

import sys
from typing import Any, TextIO

import typer

from ..context import current
from ..errors import UsageError


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
    skip_lsp: bool = typer.Option(False, "--skip-lsp", help="start no language server (pando-lsp)"),
    plan: bool = typer.Option(False, "--plan", help="plan first (read-only tools until the model presents a plan)"),
) -> None:
    """Work toward OBJECTIVE over several agent turns until done (exit 0 completed, 1 blocked/cancelled/stalled, 2 failed/timeout)."""
    if skip_lsp:
        current().root_options["skip_lsp"] = True
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
        plan=plan,
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
    from ..frontends.run import check_output_format

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
    plan: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Goal mode in an existing App; ``yolo`` and ``model`` are for an App not built with them."""
    from ..frontends.goal import GoalOptions
    from ..frontends.goal.display import GoalView
    from ..frontends.run import check_output_format, prepare_app

    output_format = check_output_format(output_format)
    goal_options = GoalOptions.resolve(app, max_iterations, max_duration)  # bad limits: a usage error first
    goal_options.plan = plan
    prepare_app(app, yolo=yolo, model=model)
    view = GoalView(output_format, quiet, out or sys.stdout, err or sys.stderr)
    import asyncio

    result = asyncio.run(_drive(app, objective, goal_options, resume, view))
    view.finish(result)
    return result.exit_code


async def _drive(app, objective, goal_options, resume, view):  # noqa: ANN001, ANN202
    from ..frontends.goal import arun_goal
    from ..frontends.run import cancel_on_signals

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


def register(cli: typer.Typer) -> None:
    cli.command("goal")(goal_command)
