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
    image: list[str] | None = typer.Option(
        None, "--image", help="attach an image to the first prompt (PNG, JPEG, GIF, WebP); repeatable", metavar="PATH"
    ),
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
        images=image or [],
    )
    raise typer.Exit(code)


def run_goal_command(
    objective: str,
    *,
    output_format: str = "text",
    yolo: bool = False,
    model: str | None = None,
    resume: str | None = None,
    images: list[str] | None = None,
    **options: Any,
) -> int:
    """Run goal mode in the current context and print the outcome; returns the exit code.

    ``images``: ``--image`` paths. The other keywords (quiet, max_iterations, max_duration, out,
    err) are those of `run_goal_in_app`. Raises UsageError (exit 2) for an empty objective, a bad
    option or image, PandoError for other failures.
    """
    from ..frontends.run import check_output_format
    from .run_cmd import load_images

    output_format = check_output_format(output_format)  # usage errors before the App is built
    objective = (objective or "").strip()
    if not objective and not resume:
        raise UsageError('the goal objective is empty: pando goal "OBJECTIVE"')
    attachments = load_images(list(images or []), current())
    from ..app import App, AppOptions

    with App.running(current(), AppOptions(startup_mode="goal", yolo=yolo, model=model)) as app:
        return run_goal_in_app(
            app, objective, output_format=output_format, resume=resume, attachments=attachments, model=model, **options
        )


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
    attachments: list[dict[str, Any]] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Goal mode in an existing App; ``yolo`` and ``model`` are for an App not built with them.
    *attachments*: image parts sent with the first prompt. An objective ``/NAME args`` naming a
    custom command is that command's rendered prompt (its model and allowed-tools hold for the goal)."""
    from ..frontends.goal import GoalOptions
    from ..frontends.goal.display import GoalView
    from ..frontends.run import check_output_format, prepare_app

    output_format = check_output_format(output_format)
    goal_options = GoalOptions.resolve(app, max_iterations, max_duration)  # bad limits: a usage error first
    goal_options.plan = plan
    goal_options.attachments = list(attachments or [])
    prepare_app(app, yolo=yolo, model=model, attachments=goal_options.attachments)
    err = err or sys.stderr
    view = GoalView(output_format, quiet, out or sys.stdout, err)
    import asyncio

    chosen_model = model or getattr(app.options, "model", None)
    result = asyncio.run(_drive(app, objective, goal_options, resume, view, err, chosen_model))
    view.finish(result)
    return result.exit_code


async def _custom_objective(app, objective, goal_options, err, chosen_model):  # noqa: ANN001, ANN202
    """``/NAME args`` naming a custom command: its rendered prompt (its !`cmd` run, its files
    attached) is the objective; its model (unless --model) and allowed-tools hold for the goal."""
    from ..slash_commands.render import invocation_for, prepare

    called = invocation_for(app, objective)
    if called is None:
        return objective
    invocation = await prepare(app, "", *called)
    for note in invocation.notes:
        err.write(f"pando: /{invocation.command.name}: {note}\n")
    goal_options.grants = invocation.grants
    if invocation.model and not chosen_model:
        goal_options.model_ref = invocation.model
    return invocation.prompt


async def _drive(app, objective, goal_options, resume, view, err, chosen_model):  # noqa: ANN001, ANN202
    from ..frontends.goal import arun_goal
    from ..frontends.run import cancel_on_signals

    objective = await _custom_objective(app, objective, goal_options, err, chosen_model)
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
