from __future__ import annotations

import json
from pathlib import Path

import pytest
from pando_skills.cli import build_cli
from pando_skills.config import SkillsSettings
from typer.testing import CliRunner

runner = CliRunner()


@pytest.fixture
def cli(dirs):
    workdir, home = dirs
    settings = SkillsSettings(workdir=workdir, home=home, paths=["agents/skills"], catalog_url="")
    return build_cli(lambda: settings), settings


def invoke(app, *args: str):
    return runner.invoke(app, list(args))


def test_list_show_json_and_warnings(cli, make_skill) -> None:
    app, settings = cli
    make_skill(
        settings.workdir / ".pando" / "skills" / "sql", front="description: Tune SQL\nwhen-to-use: slow sql"
    )
    make_skill(
        settings.home / ".claude" / "skills" / "manual",
        front="disable-model-invocation: true\ndescription: M",
    )
    bad = make_skill(settings.workdir / "agents" / "skills" / "bad", front="name: [")
    result = invoke(app, "list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("manual") and "(manual)" in lines[0] and lines[0].endswith("[claude-global]")
    assert lines[1].startswith("sql") and "Tune SQL" in lines[1] and lines[1].endswith("[project]")
    assert f"warning: skipped {bad}" in result.stderr
    data = json.loads(invoke(app, "list", "--json").stdout)
    assert [s["name"] for s in data["skills"]] == ["manual", "sql"]
    assert data["skills"][1]["triggers"] == ["slow sql"] and data["skills"][1]["location"] == "project"
    assert len(data["warnings"]) == 1
    shown = invoke(app, "show", "sql")
    assert shown.exit_code == 0
    assert "when-to-use: slow sql" in shown.stdout and shown.stdout.rstrip().endswith("Body.")


def test_show_unknown_is_one_line_error(cli, make_skill) -> None:
    app, settings = cli
    make_skill(settings.workdir / ".pando" / "skills" / "sql-tuning", front="description: x")
    result = invoke(app, "show", "sql-tunin")
    assert result.exit_code == 1
    assert result.stderr.strip() == "pando: error: Unknown skill 'sql-tunin'. Did you mean: sql-tuning?"
    assert "Traceback" not in result.output


def test_empty_list(cli) -> None:
    app, _ = cli
    assert "No skills found" in invoke(app, "list").stdout


def test_new_install_uninstall_cycle(cli, tmp_path: Path, make_skill) -> None:
    app, settings = cli
    created = invoke(app, "new", "my-skill")
    assert created.exit_code == 0
    path = settings.workdir / ".agents" / "skills" / "my-skill" / "SKILL.md"  # committed with the project
    assert created.stdout.strip() == f"Created {path}"
    assert invoke(app, "new", "my-skill").exit_code == 1
    assert invoke(app, "new", "g", "--scope", "global").exit_code == 0
    assert (settings.home / ".pando" / "skills" / "g" / "SKILL.md").exists()
    assert invoke(app, "new", "d", "--dir", "custom").exit_code == 0
    assert (settings.workdir / "custom" / "d" / "SKILL.md").exists()

    src = tmp_path / "src" / "sql"
    make_skill(src, front="name: sql")
    result = invoke(app, "install", str(src), "--scope", "global")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        f"Installed sql into {settings.home / '.pando' / 'skills' / 'sql'} (local)"
    )
    again = invoke(app, "install", str(src), "--scope", "global")
    assert again.exit_code == 1
    assert "already installed" in again.stderr and "--force" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    forced = invoke(app, "install", str(src), "--scope", "global", "--force")
    assert forced.exit_code == 0 and "replaced" in forced.stdout
    removed = invoke(app, "uninstall", "sql", "--scope", "global")
    assert removed.exit_code == 0 and "Removed sql" in removed.stdout
    missing = invoke(app, "uninstall", "sql", "--scope", "global")
    assert missing.exit_code == 1 and missing.stderr.startswith("pando: error: skill 'sql' is not installed")


def test_install_all_and_skill_options(cli, tmp_path: Path, make_skill) -> None:
    app, settings = cli
    make_skill(tmp_path / "pack" / "a", front="name: a")
    make_skill(tmp_path / "pack" / "b", front="name: b")
    ambiguous = invoke(app, "install", str(tmp_path / "pack"))
    assert ambiguous.exit_code == 1 and "--skill" in ambiguous.stderr
    assert invoke(app, "install", str(tmp_path / "pack"), "--skill", "b").exit_code == 0
    both = invoke(app, "install", str(tmp_path / "pack"), "--all", "--force")
    assert both.exit_code == 0 and both.stdout.count("Installed") == 2


def test_bad_scope_and_disabled_catalog(cli) -> None:
    app, _ = cli
    result = invoke(app, "uninstall", "x", "--scope", "moon")
    assert result.exit_code == 1 and "--scope must be 'project' or 'global'" in result.stderr
    result = invoke(app, "search", "sql")
    assert (
        result.exit_code == 1
        and result.stderr.strip() == "pando: error: the skills catalog is disabled in the configuration"
    )
    result = invoke(app, "install", "acme/skills/sql")
    assert result.exit_code == 1 and "no skills catalog is configured" in result.stderr


def test_search_and_install_through_catalog(dirs, catalog_server, tmp_path: Path, repo_factory) -> None:
    workdir, home = dirs
    repo = tmp_path / "repo"
    repo_factory(repo, {"skills/sql/SKILL.md": "---\nname: sql\n---\nbody\n"})
    catalog_server.skills = [
        {
            "id": "acme/skills/sql",
            "skillId": "sql",
            "name": "sql",
            "source": f"file://{repo}",
            "installs": 1500,
        }
    ]
    settings = SkillsSettings(workdir=workdir, home=home, catalog_url=catalog_server.url)
    app = build_cli(lambda: settings)
    found = invoke(app, "search", "sql")
    assert found.exit_code == 0
    assert found.stdout.splitlines()[0].split() == ["acme/skills/sql", "1.5K", "installs", f"file://{repo}"]
    data = json.loads(invoke(app, "search", "sql", "--json").stdout)
    assert data["skills"][0]["installs_text"] == "1.5K installs"
    installed = invoke(app, "install", "acme/skills/sql")
    assert installed.exit_code == 0, installed.output
    assert "(catalog, commit " in installed.stdout
    assert (workdir / ".agents" / "skills" / "sql" / "SKILL.md").exists()


def test_unreachable_catalog_cli(dirs, closed_port_url: str) -> None:
    workdir, home = dirs
    app = build_cli(lambda: SkillsSettings(workdir=workdir, home=home, catalog_url=closed_port_url))
    result = invoke(app, "search", "sql")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"pando: error: skills catalog {closed_port_url} is unreachable")
    assert len(result.stderr.strip().splitlines()) == 1


def test_location_labels_when_home_is_the_workdir(tmp_path: Path, make_skill) -> None:
    """The label map is built once per command; with home == workdir the project labels win."""
    settings = SkillsSettings(workdir=tmp_path, home=tmp_path, catalog_url="")
    make_skill(tmp_path / ".pando" / "skills" / "a", front="description: A")
    make_skill(tmp_path / ".claude" / "skills" / "b", front="description: B")
    result = invoke(build_cli(lambda: settings), "list", "--json")
    assert result.exit_code == 0, result.output
    locations = {s["name"]: s["location"] for s in json.loads(result.stdout)["skills"]}
    assert locations == {"a": "project", "b": "claude-project"}
