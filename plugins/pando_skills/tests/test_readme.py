"""The plugin README stays true: its example SKILL.md loads, its trigger table and config defaults hold."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from pando_skills.activation import match_skills, trigger_matches
from pando_skills.discovery import discover_skills
from pando_skills.parser import parse_skill
from pando_skills.plugin import SECTION

README = Path(__file__).resolve().parents[1] / "README.md"


def readme() -> str:
    return README.read_text(encoding="utf-8")


def section(heading: str) -> str:
    """The README text under `heading` (a whole line) up to the next heading of the same or a higher
    level; lines inside ``` fences are never headings."""
    lines = readme().splitlines(keepends=True)
    level = len(heading) - len(heading.lstrip("#"))
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    assert start is not None, f"README has no heading {heading!r}"
    fenced = False
    for index in range(start + 1, len(lines)):
        line = lines[index]
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(rf"#{{1,{level}}} ", line):
            return "".join(lines[start + 1 : index])
    return "".join(lines[start + 1 :])


def first_block(heading: str, language: str) -> str:
    match = re.search(rf"^```{language}\n(.*?)^```\s*$", section(heading), re.MULTILINE | re.DOTALL)
    assert match, f"no ```{language} block under {heading!r}"
    return match.group(1)


def test_example_skill_md_parses_and_is_discovered(tmp_path: Path) -> None:
    example = first_block("### Example SKILL.md", "markdown")
    workdir, home = tmp_path / "work", tmp_path / "home"
    skill_dir = workdir / ".pando" / "skills" / "sql-tuning"
    skill_dir.mkdir(parents=True)
    home.mkdir()
    (skill_dir / "SKILL.md").write_text(example, encoding="utf-8")

    skill = parse_skill(skill_dir / "SKILL.md")
    assert skill.name == "sql-tuning"
    assert (
        skill.description == "Tune slow PostgreSQL queries safely, measuring before and after every change."
    )
    assert skill.triggers == ["slow query", "postgres tuning", "query optimization", "explain analyze"]
    assert skill.when_not_to_use == "schema migrations, data modelling"
    assert skill.disable_model_invocation is False and skill.user_invocable is True
    assert (skill.version, skill.license, skill.compatibility) == ("1.2.0", "MIT", "PostgreSQL 13 or later")
    assert skill.author == "Data Team <data@example.com>"
    assert skill.allowed_tools == ["bash", "view", "grep"]
    assert skill.metadata == {"team": "data"}  # every other key is one the plugin interprets
    assert skill.body.startswith("# SQL tuning") and "references/checklist.md" in skill.body

    result = discover_skills(workdir, home)
    assert result.warnings == []
    assert [s.name for s in result.skills] == ["sql-tuning"]
    assert result.skills[0].triggers == skill.triggers
    assert [s.name for s in match_skills("my query is really slow", result.skills)] == ["sql-tuning"]
    assert match_skills("rename a variable", result.skills) == []


def test_every_example_key_is_explained() -> None:
    example = first_block("### Example SKILL.md", "markdown")
    front = example.split("---\n")[1]
    keys = [line.split(":", 1)[0] for line in front.splitlines() if line and not line.startswith(" ")]
    table = section("### Example SKILL.md")
    explained = set(re.findall(r"^\| (.+?) \|", table, re.MULTILINE))
    explained_keys = {key for cell in explained for key in re.findall(r"`([a-z-]+)`", cell)}
    assert set(keys) <= explained_keys, set(keys) - explained_keys


def trigger_rows() -> list[tuple[str, str, bool]]:
    rows = re.findall(
        r'^\| `([^`]+)` \| "([^"]+)" \| (yes|no) \|', section("### Triggers and activation"), re.M
    )
    assert len(rows) >= 5
    return [(trigger, prompt, answer == "yes") for trigger, prompt, answer in rows]


@pytest.mark.parametrize(("trigger", "prompt", "expected"), trigger_rows())
def test_trigger_table(trigger: str, prompt: str, expected: bool) -> None:
    assert trigger_matches(trigger, prompt) is expected


def test_stop_words_listed_are_the_real_ones() -> None:
    from pando_skills.activation import STOP_WORDS

    text = section("### Triggers and activation")
    listed = set(
        re.search(r"not stop words:(.*?)\.\n", text, re.DOTALL)
        .group(1)
        .replace("`", "")
        .replace(",", " ")
        .split()
    )
    assert listed == set(STOP_WORDS)


def test_configuration_block_shows_the_defaults() -> None:
    shown = tomllib.loads(first_block("## Configuration", "toml"))["skills"]
    defaults = SECTION.defaults()
    assert set(shown) == set(defaults)
    assert {k: v for k, v in shown.items() if k != "paths"} == {
        k: v for k, v in defaults.items() if k != "paths"
    }
    assert defaults["paths"] == []
