"""The pluggy wiring of pando-skills: config section, App subsystem, prompt section, tools, CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pando_core import hookimpl
from pando_core.config import ConfigSection, Field

if TYPE_CHECKING:
    from pando_core.plugin_api import PluginApp

# The declared [skills] section: the one place the defaults are written (SkillsConfig, SkillsSettings
# and the catalog client take theirs from here). It stays in this module, which every `pando` start
# imports, so that config.py and catalog.py are loaded only when they are used.
SECTION = ConfigSection(
    "skills",
    {
        "enabled": Field("bool", True, "discover skills and list them in the system prompt"),
        "paths": Field("list", [], "extra skill roots, searched after the standard ones"),
        "catalog_url": Field("str", "https://skills.sh", "skills.sh catalog base URL", aliases=("base_url", "BaseURL")),
        "catalog_enabled": Field("bool", True, "allow `pando skills search/install ID`"),
        "catalog_timeout": Field("float", 10.0, "catalog HTTP timeout (seconds)"),
        "default_scope": Field(
            "str",
            "project",
            "where install/new/uninstall act",
            choices=("project", "global"),
            aliases=("DefaultScope",),
        ),
        "budget_tokens": Field("int", 4000, "token budget for active skill bodies (LRU eviction)"),
        "max_active": Field("int", 20, "most skills active at once"),
        "tools": Field("bool", True, "give the agent skill_read and skill_resource", aliases=("tools_enabled",)),
        "match_names": Field("bool", False, "also activate a skill the prompt names"),
    },
    "SKILL.md skills",
)


def _config(section: dict[str, Any]):
    from .config import SkillsConfig

    return SkillsConfig.from_dict(section)


class SkillsSubsystem:
    """``app.skills``: the manager plus one active-skill set per session."""

    def __init__(self, manager) -> None:  # noqa: ANN001
        self.manager = manager
        self._contexts: dict[str, Any] = {}

    def context(self, session_id: str):
        if session_id not in self._contexts:
            self._contexts[session_id] = self.manager.new_context()
        return self._contexts[session_id]


@hookimpl
def pando_config_sections():
    return SECTION


@hookimpl
def pando_app_subsystems(app: PluginApp):
    config = _config(app.config.section("skills"))
    if not config.enabled:
        return None  # no app.skills: the prompt and tool hooks below add nothing

    import logging

    from .manager import SkillManager

    manager = SkillManager(app.workdir, config=config)  # home: Path.home()
    for warning in manager.reload():
        logging.getLogger("pando.skills").warning("skills: %s", warning)
    return {"skills": SkillsSubsystem(manager)}


@hookimpl
def pando_system_prompt_sections(app: PluginApp, session_id, prompt):
    subsystem = getattr(app, "skills", None)
    if subsystem is None:  # disabled
        return None
    from pando_core.agent.prompt import PromptSection

    context = subsystem.context(session_id)
    subsystem.manager.activate(context, prompt)
    text = subsystem.manager.system_prompt(context)
    return [PromptSection("skills", text, order=60)] if text else None


@hookimpl
def pando_register_tools(app: PluginApp):
    subsystem = getattr(app, "skills", None)
    if subsystem is None:  # disabled
        return None
    return subsystem.manager.tools()


@hookimpl
def pando_register_commands(cli):
    from .cli import build_cli

    def settings():
        from pando_core.context import current

        context = current()
        return _config(context.config.section("skills")).settings(context.workdir)

    cli.add_typer(
        build_cli(settings), name="skills", help="Manage SKILL.md skills: list, show, new, install, search."
    )
