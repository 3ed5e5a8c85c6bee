from __future__ import annotations

from pathlib import Path

import pytest
from pando_skills.errors import SkillParseError
from pando_skills.parser import first_paragraph, normalise_key, parse_skill, parse_skill_text


def test_defaults_name_from_directory_description_from_first_paragraph(tmp_path: Path, make_skill) -> None:
    path = make_skill(
        tmp_path / "sql-tuning",
        front="when-to-use: slow sql",
        body="\n\n  Tune   SQL\nqueries safely.  \n\nSecond paragraph.\n",
    )
    skill = parse_skill(path)
    assert skill.name == "sql-tuning"
    assert skill.description == "Tune SQL queries safely."
    assert skill.body == "Tune   SQL\nqueries safely.  \n\nSecond paragraph."
    assert skill.path == path
    assert skill.root == tmp_path / "sql-tuning"
    assert skill.source_root is None
    assert skill.triggers == ["slow sql"]
    assert skill.disable_model_invocation is False
    assert skill.user_invocable is True
    assert skill.version is None and skill.license is None and skill.allowed_tools == []
    assert skill.metadata == {}


def test_empty_front_matter_is_allowed(tmp_path: Path, make_skill) -> None:
    skill = parse_skill(make_skill(tmp_path / "x", front="", body="Hello"))
    assert (skill.name, skill.description, skill.body) == ("x", "Hello", "Hello")


def test_every_front_matter_key(tmp_path: Path, make_skill) -> None:
    front = """name: sql
description: Tune SQL safely
when-to-use: postgres tuning, query optimization,  slow   sql
when-not-to-use: mysql
disable-model-invocation: true
user-invocable: false
version: 1.0
license: MIT
author: Ada
compatibility: python>=3.11
context: fork
allowed-tools: Bash(git status:*), Read
homepage: https://example.com
metadata:
  category: db
"""
    skill = parse_skill(make_skill(tmp_path / "dir", front=front))
    assert skill.name == "sql"
    assert skill.description == "Tune SQL safely"
    assert skill.when_to_use == "postgres tuning, query optimization, slow sql"
    assert skill.triggers == ["postgres tuning", "query optimization", "slow sql"]
    assert skill.when_not_to_use == "mysql"
    assert skill.disable_model_invocation is True
    assert skill.user_invocable is False
    assert skill.version == "1.0"
    assert skill.license == "MIT"
    assert skill.author == "Ada"
    assert skill.compatibility == "python>=3.11"
    assert skill.context == "fork"
    assert skill.allowed_tools == ["Bash(git status:*)", "Read"]
    assert skill.metadata == {"homepage": "https://example.com", "category": "db"}
    assert skill.to_dict()["metadata"] == skill.metadata


def test_snake_case_and_list_spellings(tmp_path: Path, make_skill) -> None:
    front = """name: s
when_to_use: [alpha beta, gamma]
disable_model_invocation: "yes"
allowed_tools: Read Grep Bash(npm run:*)
"""
    skill = parse_skill(make_skill(tmp_path / "s", front=front))
    assert skill.triggers == ["alpha beta", "gamma"]
    assert skill.disable_model_invocation is True
    assert skill.allowed_tools == ["Read", "Grep", "Bash(npm run:*)"]


@pytest.mark.parametrize(
    ("key", "expected"),
    [("when_to_use", "when-to-use"), ("When-To-Use", "when-to-use"), ("whenToUse", "when-to-use")],
)
def test_normalise_key(key: str, expected: str) -> None:
    assert normalise_key(key) == expected


def test_crlf_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "crlf" / "SKILL.md"
    path.parent.mkdir()
    text = (
        "---\r\nname: crlf\r\nwhen-to-use: windows files\r\n---\r\nFirst line\r\nsecond line\r\n\r\nMore.\r\n"
    )
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    skill = parse_skill(path)
    assert skill.name == "crlf"
    assert skill.triggers == ["windows files"]
    assert skill.description == "First line second line"
    assert "\r" not in skill.body


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("no front matter\n", "missing opening '---'"),
        ("---\nname: x\nbody without closing\n", "missing closing '---'"),
        ("---\nname: [unclosed\n---\nbody\n", "invalid YAML front matter at line 2"),
        ("---\n- a\n- b\n---\nbody\n", "must be a YAML mapping, got a list"),
        ("---\nname: a/b\n---\nbody\n", "path separator"),
        ("---\nname: {x: 1}\n---\nbody\n", "'name' must be a string"),
        ("---\ndisable-model-invocation: maybe\n---\nbody\n", "must be true or false"),
        ("---\nwhen-to-use: a\nwhen_to_use: b\n---\nbody\n", "mean the same thing"),
    ],
)
def test_malformed_files_name_the_file_and_problem(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad" / "SKILL.md"
    path.parent.mkdir()
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SkillParseError) as info:
        parse_skill(path)
    assert str(path) in str(info.value)
    assert problem in str(info.value)
    assert info.value.path == path


def test_invalid_utf8_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "b" / "SKILL.md"
    path.parent.mkdir()
    path.write_bytes(b"---\nname: \xff\n---\n")
    with pytest.raises(SkillParseError, match="not valid UTF-8"):
        parse_skill(path)
    with pytest.raises(SkillParseError, match="cannot read file"):
        parse_skill(tmp_path / "missing" / "SKILL.md")


def test_first_paragraph_and_text_entry_point(tmp_path: Path) -> None:
    assert first_paragraph("\n\n\n") == ""
    assert first_paragraph("a\n b\n\n c") == "a b"
    skill = parse_skill_text("---\ndescription: d\n---\n", tmp_path / "t" / "SKILL.md")
    assert (skill.name, skill.description, skill.body) == ("t", "d", "")
