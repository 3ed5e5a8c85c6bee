from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pando_skills.parser import parse_skill
from pando_skills.tools import SkillReadTool, SkillResourceTool, make_tools

from pando_core.agent.tools.base import Tool, ToolContext, tool_schema


@pytest.fixture
def skill_env(tmp_path: Path, make_skill):
    skill_dir = tmp_path / "skills" / "sql-tuning"
    make_skill(skill_dir, front="name: sql-tuning\ndescription: Tune SQL", body="1. EXPLAIN ANALYZE first\n")
    (skill_dir / "references").mkdir()
    (skill_dir / "references" / "checklist.md").write_text("- check indexes\n")
    (skill_dir / "scripts").mkdir()
    (skill_dir / "scripts" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (skill_dir / "assets").mkdir()
    (skill_dir / "assets" / "logo.bin").write_bytes(b"\x89PNG\x00\x00data")
    (skill_dir / "big.txt").write_text("y" * 5000)
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    (skill_dir / "leak.txt").symlink_to(secret)
    (skill_dir / "internal.md").symlink_to(skill_dir / "references" / "checklist.md")
    other = parse_skill(make_skill(tmp_path / "skills" / "sql-review", front="description: Review SQL"))
    skills = [parse_skill(skill_dir / "SKILL.md"), other]
    ctx = ToolContext(workdir=tmp_path)
    return skills, ctx


def run(tool, args, ctx):
    return asyncio.run(tool.run(args, ctx))


def test_tools_implement_the_protocol(skill_env) -> None:
    skills, _ = skill_env
    tools = make_tools(lambda: skills)
    assert [t.name for t in tools] == ["skill_read", "skill_resource"]
    for tool in tools:
        assert isinstance(tool, Tool)
        schema = tool_schema(tool)
        assert schema["parameters"]["type"] == "object"
        assert "name" in schema["parameters"]["required"]


def test_skill_read_returns_body_and_resources(skill_env) -> None:
    skills, ctx = skill_env
    result = run(SkillReadTool(lambda: skills), {"name": "sql-tuning"}, ctx)
    assert not result.is_error
    assert "1. EXPLAIN ANALYZE first" in result.content
    assert result.metadata["resources"] == [
        "assets/logo.bin",
        "big.txt",
        "internal.md",
        "references/checklist.md",
        "scripts/run.sh",
    ]  # leak.txt (symlink leaving the skill) is not listed; SKILL.md itself neither
    assert "- references/checklist.md" in result.content


def test_skill_read_is_case_insensitive_and_accepts_a_mapping(skill_env) -> None:
    skills, ctx = skill_env
    result = run(SkillReadTool(lambda: {s.name: s for s in skills}), {"name": "SQL-Tuning"}, ctx)
    assert not result.is_error and "EXPLAIN" in result.content


def test_unknown_skill_lists_close_names(skill_env) -> None:
    skills, ctx = skill_env
    result = run(SkillReadTool(lambda: skills), {"name": "sql-tunin"}, ctx)
    assert result.is_error
    assert "Unknown skill 'sql-tunin'" in result.content and "sql-tuning" in result.content
    result = run(SkillReadTool(lambda: skills), {"name": "zzz"}, ctx)
    assert result.is_error and "Available skills: sql-review, sql-tuning" in result.content
    assert run(SkillReadTool(lambda: []), {"name": "x"}, ctx).content.endswith("no skills are available")
    assert run(SkillReadTool(lambda: skills), {}, ctx).is_error


def test_skill_resource_reads_text(skill_env) -> None:
    skills, ctx = skill_env
    tool = SkillResourceTool(lambda: skills)
    result = run(tool, {"name": "sql-tuning", "path": "references/checklist.md"}, ctx)
    assert (result.is_error, result.content) == (False, "- check indexes\n")
    assert run(tool, {"name": "sql-tuning", "path": "./internal.md"}, ctx).content == "- check indexes\n"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../sql-review/SKILL.md", "'..' is not allowed"),
        ("references/../../sql-review/SKILL.md", "'..' is not allowed"),
        ("/etc/passwd", "Absolute paths are not allowed"),
        ("~/.ssh/id_rsa", "Absolute paths are not allowed"),
        ("C:\\Windows\\win.ini", "Absolute paths are not allowed"),
        ("leak.txt", "resolves outside the skill directory"),
        ("nope.md", "has no file nope.md"),
        ("references", "is not a file"),
        ("assets/logo.bin", "binary file"),
        ("", "path is required"),
    ],
)
def test_skill_resource_refusals(skill_env, path: str, message: str) -> None:
    skills, ctx = skill_env
    result = run(SkillResourceTool(lambda: skills), {"name": "sql-tuning", "path": path}, ctx)
    assert result.is_error
    assert message in result.content
    assert "TOP SECRET" not in result.content


def test_symlinked_directory_leaving_the_skill_is_refused(skill_env, tmp_path: Path) -> None:
    skills, ctx = skill_env
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "data.txt").write_text("outside data")
    (skills[0].root / "linked").symlink_to(outside, target_is_directory=True)
    result = run(SkillResourceTool(lambda: skills), {"name": "sql-tuning", "path": "linked/data.txt"}, ctx)
    assert result.is_error and "outside" in result.content
    listing = run(SkillReadTool(lambda: skills), {"name": "sql-tuning"}, ctx)
    assert "linked/data.txt" not in listing.content


def test_size_cap_truncates(skill_env) -> None:
    skills, ctx = skill_env
    result = run(
        SkillResourceTool(lambda: skills, max_bytes=100), {"name": "sql-tuning", "path": "big.txt"}, ctx
    )
    assert not result.is_error
    assert result.content.startswith("y" * 100 + "\n\n[truncated: big.txt is 5000 bytes")
    assert result.metadata["truncated"] is True


def test_provider_is_called_each_time(skill_env) -> None:
    skills, ctx = skill_env
    current: list = []
    tool = SkillReadTool(lambda: current)
    assert run(tool, {"name": "sql-tuning"}, ctx).is_error
    current.extend(skills)
    assert not run(tool, {"name": "sql-tuning"}, ctx).is_error
