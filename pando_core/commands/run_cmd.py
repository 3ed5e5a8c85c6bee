"""``pando run PROMPT``: one non-interactive agent turn (also ``pando -p PROMPT``)."""

import sys

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
) -> None:
    """Run one prompt through the agent and print the answer (exit 0 ok, 1 error, 2 usage, 130 cancelled)."""
    text = read_prompt(list(prompt or []))
    if not text.strip():
        raise UsageError("no prompt given: pando run \"PROMPT\" (or pipe it on stdin)")
    code = run_prompt(text, output_format, quiet, yolo, model, session, continue_last, mode="run")
    raise typer.Exit(code)


def run_prompt(text, output_format, quiet, yolo, model, session, continue_last, mode="run") -> int:
    from ..app import App, AppOptions

    output_format, quiet, yolo, model = current().with_root_options(output_format, quiet, yolo, model)
    with App.running(current(), AppOptions(startup_mode=mode, yolo=yolo, model=model)) as app:
        return app.run_non_interactive(
            text, output_format=output_format, quiet=quiet, yolo=yolo, session_id=session, continue_last=continue_last
        )


def register(cli: typer.Typer) -> None:
    cli.command("run")(run_command)
