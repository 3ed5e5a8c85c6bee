"""``pando run PROMPT``: one non-interactive agent turn (also ``pando -p PROMPT``)."""

import sys
from typing import Any

import typer

from ..context import current
from ..errors import UsageError


def read_prompt(words: list[str]) -> str:
    """The prompt from arguments; ``-`` or no arguments with piped stdin reads stdin."""
    if words == ["-"] or (not words and not sys.stdin.isatty()):
        return sys.stdin.read()
    return " ".join(words)


def run_command(
    prompt: list[str] | None = typer.Argument(None, help="the prompt; '-' (or piped stdin) reads it from stdin"),
    output_format: str = typer.Option("text", "--output-format", "-f", help="text, json or stream-json"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no spinner or progress on stderr"),
    yolo: bool = typer.Option(False, "--yolo", help="approve every tool call without asking"),
    model: str | None = typer.Option(None, "--model", "-m", help="provider/model to use"),
    session: str | None = typer.Option(None, "--session", "-s", help="continue this session (id or prefix)"),
    continue_last: bool = typer.Option(False, "--continue", "-c", help="continue the most recent session"),
    skip_lsp: bool = typer.Option(False, "--skip-lsp", help="start no language server (pando-lsp)"),
    image: list[str] | None = typer.Option(
        None, "--image", help="attach an image (PNG, JPEG, GIF, WebP); repeatable", metavar="PATH"
    ),
    plan: bool = typer.Option(False, "--plan", help="plan mode: read-only tools; the run ends with the model's plan"),
) -> None:
    """Run one prompt through the agent and print the answer (exit 0 ok, 1 error, 2 usage, 130 cancelled)."""
    if skip_lsp:
        current().root_options["skip_lsp"] = True
    text = read_prompt(list(prompt or []))
    if not text.strip():
        raise UsageError("no prompt given: pando run \"PROMPT\" (or pipe it on stdin)")
    raise typer.Exit(
        run_prompt(text, output_format, quiet, yolo, model, session, continue_last, plan=plan, images=image or [])
    )


def run_prompt(
    text: str,
    output_format: str = "text",
    quiet: bool = False,
    yolo: bool = False,
    model: str | None = None,
    session: str | None = None,
    continue_last: bool = False,
    *,
    plan: bool = False,
    context: Any = None,
    images: list[str] | None = None,
) -> int:
    """One prompt in an App of ``context`` (default: the current one); returns the exit code.

    ``pando run``, ``pando -p`` and a prompt piped into bare ``pando`` all come here; options given
    to ``pando`` itself complete the command's own.
    """
    from ..app import App, AppOptions
    from ..frontends.run import check_output_format

    context = context or current()
    output_format, quiet, yolo, model = context.with_root_options(output_format, quiet, yolo, model)
    output_format = check_output_format(output_format)  # a usage error before the App starts
    attachments = load_images(images or [], context)
    with App.running(context, AppOptions(startup_mode="run", yolo=yolo, model=model)) as app:
        return app.run_non_interactive(
            text,
            output_format=output_format,
            quiet=quiet,
            session_id=session,
            continue_last=continue_last,
            attachments=attachments,
            plan=plan,
        )


def load_images(paths: list[str], context: Any) -> list[dict[str, Any]]:
    """``--image`` files as image parts (paths relative to the working directory); a usage error
    for a missing, too large or non-image file, before the App starts."""
    if not paths:
        return []
    from pathlib import Path

    from ..agent.attachments import DEFAULT_MAX_IMAGE_BYTES, image_part

    limit = int(context.config.section("agent").get("max_image_bytes") or DEFAULT_MAX_IMAGE_BYTES)
    return [image_part(context.workdir / Path(p).expanduser(), max_bytes=limit, shown=p) for p in paths]


def register(cli: typer.Typer) -> None:
    cli.command("run")(run_command)
