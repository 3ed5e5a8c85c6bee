"""The ``pando`` command line.

Plugins add subcommands, so they must be selected before the CLI exists: ``--plugins``, ``--cwd``
and ``--debug`` are read from argv first, then the typer app is built and run. Errors print one
line (``--debug`` shows the traceback) and exit non-zero: 1 for failures, 2 for bad usage or
configuration, 130 when interrupted.
"""

import os
import sys
from pathlib import Path

GLOBAL_VALUE_OPTIONS = ("--plugins", "--cwd")


def prescan(argv: list[str]) -> dict[str, str | bool | None]:
    """Read the global options that must be known before the CLI is built."""
    found: dict[str, str | bool | None] = {"--plugins": None, "--cwd": None, "--debug": False}
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            break
        if arg == "--debug":
            found["--debug"] = True
        for name in GLOBAL_VALUE_OPTIONS:
            if arg == name and index + 1 < len(argv):
                found[name] = argv[index + 1]
                index += 1
            elif arg.startswith(name + "="):
                found[name] = arg.split("=", 1)[1]
        index += 1
    return found


def _print_version() -> None:
    from . import __version__

    print(f"pando {__version__}")


# root options that take a value (so the word after them is not the subcommand)
ROOT_VALUE_OPTIONS = frozenset({"--plugins", "--cwd", "--prompt", "-p", "--goal", "--output-format", "-f", "--model", "-m"})


def invoked_command(argv: list[str]) -> str | None:
    """The subcommand argv names (``pando --model x run ...`` -> ``run``), None when there is none."""
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            return None
        if arg.startswith("-"):
            index += 2 if arg in ROOT_VALUE_OPTIONS else 1
            continue
        return arg
    return None


def build_cli(context, invoked: str | None = None):  # noqa: ANN001 - typer imported lazily
    import typer

    from .commands import builtin_commands

    cli = typer.Typer(
        name="pando",
        help="Pando: a terminal AI coding assistant. Run `pando` for an interactive session.",
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @cli.callback(invoke_without_command=True)
    def root(
        ctx: typer.Context,
        version: bool = typer.Option(False, "--version", "-V", help="print the version and exit"),
        cwd: Path = typer.Option(None, "--cwd", help="working directory (default: the current one)"),
        plugins: str = typer.Option(
            None, "--plugins", help="comma-separated plugins to load (default: all installed; 'none' for none)"
        ),
        debug: bool = typer.Option(False, "--debug", help="show tracebacks and debug logs"),
        prompt: str = typer.Option(None, "--prompt", "-p", help="run one prompt non-interactively (like `pando run`)"),
        goal: str = typer.Option(None, "--goal", help="work toward an objective (like `pando goal`)"),
        output_format: str = typer.Option("text", "--output-format", "-f", help="with -p/--goal: text, json or stream-json"),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="with -p/--goal: no spinner"),
        yolo: bool = typer.Option(False, "--yolo", help="with -p/--goal: approve every tool call"),
        model: str = typer.Option(None, "--model", "-m", help="provider/model to use"),
        skip_lsp: bool = typer.Option(False, "--skip-lsp", help="start no language server (pando-lsp)"),
    ) -> None:
        if version:
            _print_version()
            raise typer.Exit(0)
        context.root_options = {"output_format": output_format, "quiet": quiet, "yolo": yolo, "model": model}
        context.root_options["skip_lsp"] = skip_lsp
        if prompt is not None and goal is not None:
            from .errors import UsageError

            raise UsageError("--goal cannot be combined with --prompt")
        if ctx.invoked_subcommand is None and prompt is not None:
            from .commands.run_cmd import read_prompt, run_prompt

            text = read_prompt([prompt])
            raise typer.Exit(run_prompt(text, output_format, quiet, yolo, model, None, False))
        if ctx.invoked_subcommand is None and goal is not None:
            from .commands.goal_cmd import run_goal_command

            raise typer.Exit(run_goal_command(goal, output_format=output_format, quiet=quiet, yolo=yolo, model=model))
        if ctx.invoked_subcommand is None:
            from .commands import entry

            entry.run_default(ctx)

    builtin_commands.register_all(cli)
    builtin = {c.name or (c.callback.__name__ if c.callback else "") for c in cli.registered_commands}
    builtin |= {g.name for g in cli.registered_groups}
    if invoked is None or invoked not in builtin:
        # plugins' commands are built only when one may be invoked (or listed by --help): a
        # built-in command such as `pando plugins` or `pando run` does not import them
        context.plugins.hooks.pando_register_commands(cli=cli)
    return cli


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv in (["--version"], ["-V"]):
        _print_version()  # fast path: no plugin discovery for the version
        return 0
    early = prescan(argv)
    debug = bool(early["--debug"]) or bool(os.environ.get("PANDO_DEBUG"))
    if debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    code = _run(argv, early, debug)
    sys.stdout.flush()
    return code


def _run(argv: list[str], early: dict, debug: bool) -> int:
    from .errors import PandoError
    from .plugins import PluginLoadError, parse_names

    try:
        from .context import PandoContext, set_current

        workdir = Path(early["--cwd"] or os.getcwd())
        if not workdir.is_dir():
            print(f"pando: error: --cwd {workdir} is not a directory", file=sys.stderr)
            return 2
        context = PandoContext(workdir, requested_plugins=parse_names(early["--plugins"]))
        set_current(context)
        cli = build_cli(context, invoked_command(argv))
        try:
            # standalone mode: typer/click print usage errors themselves and raise SystemExit
            cli(args=argv, prog_name="pando")
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return 0
    except PluginLoadError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except PandoError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        print(f"pando: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("pando: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - never a traceback unless --debug
        if debug:
            import traceback

            traceback.print_exc()
        from .db.storage import storage_full

        full = storage_full(exc, Path(early["--cwd"] or os.getcwd()) / ".pando")
        if full is not None:  # a full disk shows in many shapes (OSError, "disk I/O error", ...)
            print(f"pando: error: {full}", file=sys.stderr)
            return full.exit_code
        print(f"pando: error: {_unexpected_error_line(exc)} (run with --debug for details)", file=sys.stderr)
        return 1


DAMAGED_DATABASE = ("file is not a database", "database disk image is malformed")


def _unexpected_error_line(exc: BaseException) -> str:
    """One line for an error nobody turned into a PandoError: a SQLAlchemy error is told by the
    SQLite error inside it (without SQLAlchemy's second "Background on this error" line), and a
    damaged database file says which file and what to do."""
    from .errors import one_line

    cause = getattr(exc, "orig", None) or exc
    text = str(cause)
    if any(marker in text for marker in DAMAGED_DATABASE):
        return f"the database .pando/pando.db is damaged ({one_line(text)}); move it aside to start with a new one"
    return one_line(f"{type(cause).__name__}: {text}", limit=300)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
