"""``pando init``: write a .pando.toml (interactive wizard, or flags for scripts)."""

import os
import sys

import typer

from ..context import current
from ..errors import UsageError

PRESETS = {
    "openai": {"type": "openai", "base_url": "", "api_key_env": "OPENAI_API_KEY", "model": "gpt-4o-mini"},
    "anthropic": {"type": "anthropic", "base_url": "", "api_key_env": "ANTHROPIC_API_KEY", "model": "claude-sonnet-4-5"},
    "ollama": {"type": "openai", "base_url": "http://localhost:11434/v1", "api_key_env": "", "model": "llama3.2"},
    "openrouter": {"type": "openai", "base_url": "https://openrouter.ai/api/v1", "api_key_env": "OPENROUTER_API_KEY", "model": "openai/gpt-4o-mini"},
    "custom": {"type": "openai", "base_url": "http://localhost:8000/v1", "api_key_env": "", "model": ""},
}


def render_config(provider: str, kind: str, base_url: str, api_key_env: str, model: str, plugins: list[str] | None) -> str:
    lines = ["# written by `pando init`", "[agent]", f'model = "{provider}/{model}"', "", f"[providers.{provider}]", f'type = "{kind}"']
    if base_url:
        lines.append(f'base_url = "{base_url}"')
    if api_key_env:
        lines.append(f'api_key_env = "{api_key_env}"')
    if plugins is not None:
        lines += ["", "[plugins]", "enabled = [" + ", ".join(f'"{p}"' for p in plugins) + "]"]
    return "\n".join(lines) + "\n"


def init_command(
    provider: str | None = typer.Option(None, "--provider", help="openai, anthropic, ollama, openrouter or custom"),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint"),
    model: str | None = typer.Option(None, "--model", help="model id at that provider"),
    api_key_env: str | None = typer.Option(None, "--api-key-env", help="environment variable holding the key"),
    plugins: str | None = typer.Option(None, "--enable-plugins", help="comma-separated default plugins"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing .pando.toml"),
    yes: bool = typer.Option(False, "--yes", "-y", help="no questions: take flags and defaults"),
) -> None:
    """Create .pando.toml in the working directory: provider, base URL, model, key variable, plugins."""
    context = current()
    target = context.workdir / ".pando.toml"
    if target.exists() and not force:
        raise UsageError(f"{target} exists; use --force to overwrite it")
    interactive = not yes and sys.stdin.isatty() and sys.stdout.isatty()
    installed = sorted(info.name for info in context.plugins.list())
    chosen_plugins = [p.strip() for p in plugins.split(",") if p.strip()] if plugins is not None else None
    if interactive:
        import questionary

        provider = provider or questionary.select("Provider:", choices=list(PRESETS)).unsafe_ask()
    elif provider is None:
        raise UsageError("no terminal to ask questions: pass --provider (and --model), e.g. pando init --provider openai --yes")
    if provider not in PRESETS:
        raise UsageError(f"--provider must be one of {', '.join(PRESETS)}")
    preset = PRESETS[provider]
    if interactive:
        if provider in ("ollama", "custom") or base_url:
            base_url = questionary.text("Base URL:", default=base_url or preset["base_url"]).unsafe_ask()
        model = questionary.text("Model:", default=model or preset["model"]).unsafe_ask()
        api_key_env = questionary.text(
            "Environment variable holding the API key (empty for none):", default=api_key_env if api_key_env is not None else preset["api_key_env"]
        ).unsafe_ask()
        if installed and chosen_plugins is None:
            chosen_plugins = questionary.checkbox("Plugins to enable:", choices=installed).unsafe_ask()
    model = model or preset["model"]
    if not model:
        raise UsageError("--model is required for a custom provider")
    key_env = api_key_env if api_key_env is not None else preset["api_key_env"]
    text = render_config(provider, preset["type"], base_url if base_url is not None else preset["base_url"], key_env, model, chosen_plugins)
    target.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {target}")
    if key_env and not os.environ.get(key_env):
        typer.echo(f"next: export {key_env}=...   then: pando run \"hello\"")
    else:
        typer.echo('next: pando run "hello"')


def register(cli: typer.Typer) -> None:
    cli.command("init")(init_command)
