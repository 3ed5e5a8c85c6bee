"""``pando lua check FILE`` and ``pando lua run FILE --hook NAME --input JSON``."""

import json
from pathlib import Path

import typer


def build_cli() -> typer.Typer:
    app = typer.Typer(help="Check and try Lua hook scripts.", no_args_is_help=True)

    @app.command("check")
    def check(file: Path = typer.Argument(..., help="a Lua script")) -> None:
        """Load a script in the sandbox and list the hooks and filters it defines."""
        from .engine import LuaEngine, LuaLoadError

        if not file.is_file():
            typer.echo(f"error: {file} does not exist", err=True)
            raise typer.Exit(1)
        try:
            engine = LuaEngine([file], strict=True)
        except LuaLoadError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        try:
            hooks = engine.defined_hooks()
        finally:
            engine.close()
        typer.echo(f"{file}: ok")
        for name in hooks:
            typer.echo(f"  {name}")
        if not hooks:
            typer.echo("  (defines no hooks or filters)")

    @app.command("run")
    def run(
        file: Path = typer.Argument(..., help="a Lua script"),
        hook: str = typer.Option(
            ..., "--hook", help="hook name without hook_ (user_prompt) or a filter (github-input)"
        ),
        input: str = typer.Option("{}", "--input", help="the data as a JSON object"),
        timeout: float = typer.Option(1.0, "--timeout", help="seconds"),
    ) -> None:
        """Call one hook or filter with JSON input and print the result as JSON."""
        from .engine import BUILTIN_SERVER, LuaEngine, LuaLoadError, PandoLuaError, split_filter

        try:
            data = json.loads(input)
        except json.JSONDecodeError as exc:
            typer.echo(f"error: --input is not valid JSON: {exc}", err=True)
            raise typer.Exit(2) from None
        if not isinstance(data, dict):
            typer.echo("error: --input must be a JSON object", err=True)
            raise typer.Exit(2)
        try:
            engine = LuaEngine([file], strict=True, timeout=timeout)
        except LuaLoadError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        try:
            defined = engine.defined_hooks()
            candidates = _functions_serving(hook)
            if not candidates & set(defined):
                listed = ", ".join(defined) or "none"
                typer.echo(f"error: {file} defines no {min(candidates)} (it defines: {listed})", err=True)
                raise typer.Exit(2)
            try:
                tool, _ = split_filter(hook)  # "<tool>-input" / "<tool>_output" …
            except ValueError:
                result = engine.call_hook(hook.removeprefix("hook_"), data)
            else:
                # like the agent's wiring: "<tool>-input", then "builtin-input", then "global-input"
                result = engine.call_filter(hook, data, context={"tool_name": tool}, fallback=BUILTIN_SERVER)
        except PandoLuaError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        finally:
            engine.close()
        typer.echo(json.dumps(result, ensure_ascii=False))

    return app


def _functions_serving(hook: str) -> set[str]:
    """The Lua function names that would answer `--hook hook`: the filter of that tool, then the
    built-in and global filters; or the hook function, then hook_global."""
    from .engine import BUILTIN_SERVER, filter_name, hook_function_name, split_filter

    try:
        tool, direction = split_filter(hook)
    except ValueError:
        try:
            return {hook_function_name(hook), "hook_global"}
        except ValueError:
            return {"hook_"}
    servers = (tool, BUILTIN_SERVER, "global")
    dashed = {filter_name(server, direction) for server in servers}
    return dashed | {f"{server.replace('-', '_').replace('.', '_')}_{direction}" for server in servers}
