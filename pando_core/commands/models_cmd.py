"""``pando models``: the models a configured provider offers (GET /models where it is offered)."""

import json

import typer

from ..context import current
from ..errors import ConfigError


def models_command(
    provider: str | None = typer.Argument(None, help="provider name (default: the one of \\[agent] model)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """List the models a provider offers, with context windows and prices where it says."""
    from ..agent.models import builtin_provider_kinds, provider_from_options, provider_options, resolve_model
    from ..agent.providers.base import ProviderError

    context = current()
    config = context.config
    configured, kinds = config.section("providers"), builtin_provider_kinds()
    if provider is not None and provider not in configured and provider not in kinds:
        known = ", ".join(sorted({*configured, *kinds}))
        raise ConfigError(f"unknown provider {provider!r}; known: {known}")
    name = provider or resolve_model(config).provider_name
    instance = provider_from_options(provider_options(config, name), context.plugins)

    async def fetch():
        try:
            return await instance.list_models()
        finally:
            await instance.aclose()

    import asyncio

    try:
        models = asyncio.run(fetch())
    except ProviderError as exc:
        raise ConfigError(str(exc)) from None
    rows = [
        {"id": m.id, "context_window": m.context_window, "input_price": m.input_price_per_m, "output_price": m.output_price_per_m}
        for m in models
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        typer.echo(f"{name}/{row['id']}")


def register(cli: typer.Typer) -> None:
    cli.command("models")(models_command)
