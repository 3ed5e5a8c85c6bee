"""`pando skills …` commands (typer). The plugin supplies the settings through `build_cli(get_settings)`."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from .config import SCOPES, SkillsSettings
from .errors import SkillsError

if TYPE_CHECKING:
    from .model import Skill

F = TypeVar("F", bound=Callable[..., Any])


def _lib() -> SimpleNamespace:
    """The skills library, imported when a command runs rather than when `pando` starts."""
    from . import catalog, discovery, installer, tools

    return SimpleNamespace(
        discover_skills=discovery.discover_skills,
        install=installer.install,
        install_many=installer.install_many,
        scaffold=installer.scaffold,
        skills_root=installer.skills_root,
        uninstall=installer.uninstall,
        find_skill=tools.find_skill,
        list_resources=tools.list_resources,
        unknown_skill_message=tools.unknown_skill_message,
        CatalogClient=catalog.CatalogClient,
        format_installs=catalog.format_installs,
    )


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _one_line_errors(func: F) -> F:
    """Expected failures print one line on stderr and exit 1 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SkillsError as exc:
            raise _fail(str(exc)) from None
        except OSError as exc:
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            raise _fail(f"{where}{exc.strerror or exc}") from None

    return wrapper  # type: ignore[return-value]


def _scope(settings: SkillsSettings, scope: str | None) -> str:
    value = scope or settings.default_scope
    if value not in SCOPES:
        raise _fail(f"--scope must be 'project' or 'global', got {value!r}")
    return value


def _where(skill: Skill, settings: SkillsSettings) -> str:
    labels = {
        settings.home / ".pando" / "skills": "global",
        settings.workdir / ".pando" / "skills": "project",
        settings.home / ".claude" / "skills": "claude-global",
        settings.workdir / ".claude" / "skills": "claude-project",
    }
    if skill.source_root is None:
        return str(skill.root)
    for root, label in labels.items():
        if Path(os.path.normpath(root.expanduser().absolute())) == skill.source_root:
            return label
    return str(skill.source_root)


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build_cli(get_settings: Callable[[], SkillsSettings]) -> typer.Typer:
    app = typer.Typer(
        name="skills",
        help="Manage SKILL.md skills: list, show, create, install from git or the skills.sh catalog.",
        no_args_is_help=True,
        add_completion=False,
    )

    def discover(settings: SkillsSettings) -> tuple[list[Skill], list[str]]:
        result = _lib().discover_skills(settings.workdir, settings.home, settings.paths)
        return result.skills, result.warnings

    @app.command("list")
    @_one_line_errors
    def list_command(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """List the discovered skills (first definition of a name wins)."""
        settings = get_settings()
        skills, warnings = discover(settings)
        if as_json:
            payload = {
                "skills": [{**s.to_dict(), "location": _where(s, settings)} for s in skills],
                "warnings": warnings,
            }
            typer.echo(json.dumps(payload, indent=2))
            return
        for warning in warnings:
            typer.echo(f"warning: {warning}", err=True)
        if not skills:
            typer.echo("No skills found. Create one with `pando skills new NAME` or install one.")
            return
        width = max(len(s.name) for s in skills)
        for skill in skills:
            flags = " (manual)" if skill.disable_model_invocation else ""
            typer.echo(
                f"{skill.name:<{width}}  {_short(skill.description, 70)}{flags}  [{_where(skill, settings)}]"
            )

    @app.command("show")
    @_one_line_errors
    def show_command(name: str = typer.Argument(..., help="Skill name.")) -> None:
        """Show a skill's metadata, resource files and instructions."""
        settings = get_settings()
        skills, _ = discover(settings)
        skill = _lib().find_skill(skills, name)
        if skill is None:
            raise _fail(_lib().unknown_skill_message(name, skills))
        rows = [
            ("name", skill.name),
            ("description", skill.description),
            ("when-to-use", skill.when_to_use),
            ("when-not-to-use", skill.when_not_to_use),
            ("disable-model-invocation", "true" if skill.disable_model_invocation else ""),
            ("version", skill.version or ""),
            ("license", skill.license or ""),
            ("author", skill.author or ""),
            ("allowed-tools", ", ".join(skill.allowed_tools)),
            ("location", _where(skill, settings)),
            ("path", str(skill.path)),
            ("tokens", str(skill.tokens)),
        ]
        for key, value in rows:
            if value:
                typer.echo(f"{key}: {value}")
        resources, more = _lib().list_resources(skill)
        if resources:
            typer.echo("resources:")
            for resource in resources:
                typer.echo(f"  {resource}")
            if more:
                typer.echo("  …")
        typer.echo("---")
        typer.echo(skill.body)

    @app.command("new")
    @_one_line_errors
    def new_command(
        name: str = typer.Argument(..., help="Name of the new skill (its directory name)."),
        scope: str | None = typer.Option(None, "--scope", help="project (default) or global."),
        directory: Path | None = typer.Option(None, "--dir", help="Create it under this directory instead."),
    ) -> None:
        """Create a skill from a template SKILL.md."""
        settings = get_settings()
        dest = (
            directory
            if directory is not None
            else _lib().skills_root(_scope(settings, scope), settings.workdir, settings.home)
        )
        if not dest.is_absolute():
            dest = settings.workdir / dest
        path = _lib().scaffold(name, dest)
        typer.echo(f"Created {path}")

    @app.command("install")
    @_one_line_errors
    def install_command(
        source: str = typer.Argument(..., help="Local directory, git URL (url#subdir), or catalog id."),
        scope: str | None = typer.Option(None, "--scope", help="project or global."),
        force: bool = typer.Option(False, "--force", help="Replace an installed skill of the same name."),
        skill: str | None = typer.Option(None, "--skill", help="Pick one skill of a multi-skill source."),
        all_skills: bool = typer.Option(False, "--all", help="Install every skill of the source."),
    ) -> None:
        """Install a skill from a directory, a git repository or the skills.sh catalog."""
        settings = get_settings()
        chosen_scope = _scope(settings, scope)
        catalog = (
            _lib().CatalogClient(settings.catalog_url, settings.catalog_timeout)
            if settings.catalog_url
            else None
        )
        kwargs: dict[str, Any] = {
            "scope": chosen_scope,
            "workdir": settings.workdir,
            "home": settings.home,
            "force": force,
            "catalog": catalog,
            "skill": skill,
        }
        installed = (
            _lib().install_many(source, **kwargs) if all_skills else [_lib().install(source, **kwargs)]
        )
        for item in installed:
            details = [item.source_type]
            if item.commit:
                details.append(f"commit {item.commit[:12]}")
            if item.replaced:
                details.append("replaced")
            typer.echo(f"Installed {item.name} into {item.path} ({', '.join(details)})")
            for note in item.notes:
                typer.echo(f"note: {note}", err=True)

    @app.command("search")
    @_one_line_errors
    def search_command(
        query: str = typer.Argument(..., help="Search words."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
        limit: int = typer.Option(10, "--limit", min=1, max=100, help="Maximum results."),
    ) -> None:
        """Search the skills.sh catalog."""
        settings = get_settings()
        if not settings.catalog_url:
            raise _fail("the skills catalog is disabled in the configuration")
        results = (
            _lib().CatalogClient(settings.catalog_url, settings.catalog_timeout).search(query, limit=limit)
        )
        if as_json:
            typer.echo(json.dumps({"query": query, "skills": [r.to_dict() for r in results]}, indent=2))
            return
        if not results:
            typer.echo(f"No skills found for {query!r}.")
            return
        width = max(len(r.id) for r in results)
        for result in results:
            about = _short(result.description, 60) if result.description else result.source
            typer.echo(f"{result.id:<{width}}  {_lib().format_installs(result.installs):>14}  {about}")
        typer.echo("Install one with: pando skills install ID")

    @app.command("uninstall")
    @_one_line_errors
    def uninstall_command(
        name: str = typer.Argument(..., help="Skill name."),
        scope: str | None = typer.Option(None, "--scope", help="project or global."),
    ) -> None:
        """Remove an installed skill and its lock entry."""
        settings = get_settings()
        path = _lib().uninstall(name, _scope(settings, scope), settings.workdir, settings.home)
        typer.echo(f"Removed {name} from {path.parent}")

    return app
