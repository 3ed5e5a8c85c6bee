"""`pando skills …` commands (typer). The plugin supplies the settings through `build_cli(get_settings)`."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from pando_core.errors import one_line

from .config import SkillsSettings
from .errors import SkillsError

if TYPE_CHECKING:
    from .model import Skill

F = TypeVar("F", bound=Callable[..., Any])

# The skills library (discovery, installer, catalog, tools) is imported inside each command, when it
# runs, rather than when `pando` starts.


def _fail(message: str) -> typer.Exit:
    typer.echo(f"pando: error: {message}", err=True)  # the core's one-line error form
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
    from .installer import check_scope

    return check_scope(scope or settings.default_scope, "--scope")


def _locations(settings: SkillsSettings) -> Callable[[Skill], str]:
    """`location` of a listed skill: the label of its standard root, else the root (or skill) path.
    The label map is built once per command."""
    from .discovery import standard_roots

    # dict: when home == workdir the later (project) label wins, as it always has
    labels = {root: label for label, root in standard_roots(settings.workdir, settings.home)}

    def where(skill: Skill) -> str:
        if skill.source_root is None:
            return str(skill.root)
        return labels.get(skill.source_root, str(skill.source_root))

    return where


def build_cli(get_settings: Callable[[], SkillsSettings]) -> typer.Typer:
    app = typer.Typer(
        name="skills",
        help="Manage SKILL.md skills: list, show, create, install from git or the skills.sh catalog.",
        no_args_is_help=True,
        add_completion=False,
    )

    def discover(settings: SkillsSettings) -> tuple[list[Skill], list[str]]:
        from .discovery import discover_skills

        result = discover_skills(settings.workdir, settings.home, settings.paths)
        return result.skills, result.warnings

    @app.command("list")
    @_one_line_errors
    def list_command(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """List the discovered skills (first definition of a name wins)."""
        settings = get_settings()
        skills, warnings = discover(settings)
        where = _locations(settings)
        if as_json:
            payload = {
                "skills": [{**s.to_dict(), "location": where(s)} for s in skills],
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
            typer.echo(f"{skill.name:<{width}}  {one_line(skill.description, 70)}{flags}  [{where(skill)}]")

    @app.command("show")
    @_one_line_errors
    def show_command(name: str = typer.Argument(..., help="Skill name.")) -> None:
        """Show a skill's metadata, resource files and instructions."""
        from .tools import find_skill, list_resources, unknown_skill_message

        settings = get_settings()
        skills, _ = discover(settings)
        skill = find_skill(skills, name)
        if skill is None:
            raise _fail(unknown_skill_message(name, skills))
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
            ("location", _locations(settings)(skill)),
            ("path", str(skill.path)),
            ("tokens", str(skill.tokens)),
        ]
        for key, value in rows:
            if value:
                typer.echo(f"{key}: {value}")
        resources, more = list_resources(skill)
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
        from .installer import scaffold, skills_root

        settings = get_settings()
        dest = (
            directory
            if directory is not None
            else skills_root(_scope(settings, scope), settings.workdir, settings.home)
        )
        if not dest.is_absolute():
            dest = settings.workdir / dest
        path = scaffold(name, dest)
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
        from .catalog import CatalogClient
        from .installer import install_many

        settings = get_settings()
        chosen_scope = _scope(settings, scope)
        catalog = (
            CatalogClient(settings.catalog_url, settings.catalog_timeout) if settings.catalog_url else None
        )
        installed = install_many(
            source,
            chosen_scope,
            settings.workdir,
            settings.home,
            force,
            catalog,
            skill=skill,
            single=not all_skills,  # without --all: one skill, or an error naming the skills found
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
        from .catalog import CatalogClient, format_installs

        settings = get_settings()
        if not settings.catalog_url:
            raise _fail("the skills catalog is disabled in the configuration")
        results = CatalogClient(settings.catalog_url, settings.catalog_timeout).search(query, limit=limit)
        if as_json:
            typer.echo(json.dumps({"query": query, "skills": [r.to_dict() for r in results]}, indent=2))
            return
        if not results:
            typer.echo(f"No skills found for {query!r}.")
            return
        width = max(len(r.id) for r in results)
        for result in results:
            about = one_line(result.description, 60) if result.description else result.source
            typer.echo(f"{result.id:<{width}}  {format_installs(result.installs):>14}  {about}")
        typer.echo("Install one with: pando skills install ID")

    @app.command("uninstall")
    @_one_line_errors
    def uninstall_command(
        name: str = typer.Argument(..., help="Skill name."),
        scope: str | None = typer.Option(None, "--scope", help="project or global."),
    ) -> None:
        """Remove an installed skill and its lock entry."""
        from .installer import uninstall

        settings = get_settings()
        path = uninstall(name, _scope(settings, scope), settings.workdir, settings.home)
        typer.echo(f"Removed {name} from {path.parent}")

    return app
