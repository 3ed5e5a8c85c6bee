"""pando-hello: a complete, small Pando plugin (see docs/plugins.md)."""

from __future__ import annotations

from pando_core import hookimpl
from pando_core.agent.tools.base import ToolResult
from pando_core.config import ConfigSection, Field


@hookimpl
def pando_config_sections():
    # [hello] greeting = "Hello"   (or PANDO_HELLO__GREETING=Hi)
    return ConfigSection("hello", {"greeting": Field("str", "Hello", "how to greet")})


@hookimpl
def pando_register_commands(cli):
    import typer

    from pando_core.context import current

    @cli.command("hello")
    def hello(name: str = typer.Argument("world")) -> None:
        """Greet someone (an example plugin command)."""
        greeting = current().config.section("hello")["greeting"]
        typer.echo(f"{greeting}, {name}!")


class GreetTool:
    name = "greet"
    read_only = True  # it changes nothing, so the core never asks permission for it
    description = "Return a greeting for a person. Use it when the user asks to greet someone."
    parameters = {
        "type": "object",
        "properties": {"name": {"type": "string", "description": "who to greet"}},
        "required": ["name"],
    }

    def __init__(self, greeting: str) -> None:
        self.greeting = greeting

    async def run(self, args, ctx):
        return ToolResult(f"{self.greeting}, {args['name']}!")


@hookimpl
def pando_register_tools(app):
    return [GreetTool(app.config.section("hello")["greeting"])]


@hookimpl
def pando_rewrite_prompt(prompt):
    # a pipeline hook: return the new value, or None to leave it alone
    if prompt.startswith("hi:"):
        return "Please greet " + prompt[3:].strip()
    return None


@hookimpl
def pando_bus_setup(bus, app):
    # primary only, at start and again after a promotion
    bus.register("hello.ping", lambda params, call: {"pong": True, "instance": app.instance_id})
