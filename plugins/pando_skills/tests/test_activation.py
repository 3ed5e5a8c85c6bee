from __future__ import annotations

from pathlib import Path

import pytest
from pando_skills.activation import (
    ActiveSkills,
    active_section,
    match_skills,
    matching_trigger,
    normalise,
    prompt_section,
    significant_words,
    trigger_matches,
)
from pando_skills.model import Skill, estimate_tokens


def skill(name: str, when: str = "", body: str = "body", description: str = "", **kw) -> Skill:
    root = Path("/skills") / name
    return Skill(
        name=name,
        description=description or f"{name} skill",
        body=body,
        path=root / "SKILL.md",
        root=root,
        when_to_use=when,
        **kw,
    )


def test_normalise() -> None:
    assert normalise("  Slow-SQL, in PostgreSQL!  ") == "slow sql in postgresql"
    assert normalise("ÄÖ über") == "ber"


@pytest.mark.parametrize(
    ("trigger", "prompt", "expected"),
    [
        ("slow sql", "Please help optimize a slow SQL query in Postgres", True),  # whole trigger substring
        ("postgres tuning", "Please help optimize a slow SQL query in Postgres", False),  # 'tuning' missing
        ("postgres tuning", "Tuning my postgres box", True),  # word set, any order
        ("sql", "migrate the postgresql schema", True),  # substring rule: no word boundaries
        ("tuning for the database", "database tuning please", True),  # stop words ignored
        ("use the db", "database work", False),  # stop words + 2-char word: fallback has no words
        ("go", "google it", True),  # whole-trigger substring even for short triggers
        ("a b", "xyz", False),  # no significant words, not a substring
        ("when to use", "anything", False),  # only stop words / short words
        ("React-Native", "my react native app", True),  # punctuation normalised on both sides
        ("", "anything", False),
    ],
)
def test_trigger_table(trigger: str, prompt: str, expected: bool) -> None:
    assert trigger_matches(trigger, prompt) is expected


def test_significant_words() -> None:
    assert significant_words("Use this for SQL with the Postgres DB") == ["sql", "postgres"]


def test_match_skills_rules() -> None:
    sql = skill("sql", when="postgres tuning, slow sql")
    empty = skill("empty")
    manual = skill("manual", when="slow sql", disable_model_invocation=True)
    other = skill("other", when="kubernetes")
    prompt = "Please help optimize a slow SQL query in Postgres"
    assert match_skills(prompt, [empty, manual, other, sql]) == [sql]
    assert matching_trigger(sql, prompt) == "slow sql"
    assert matching_trigger(manual, prompt) is None


def test_match_names_option() -> None:
    manual = skill("deploy-prod", when="", disable_model_invocation=True)
    hidden = skill("secret-tool", user_invocable=False)
    short = skill("sql")
    prompt = "run the deploy-prod skill, then secret-tool; postgresql"
    assert match_skills(prompt, [manual, hidden, short]) == []
    assert match_skills(prompt, [manual, hidden, short], match_names=True) == [manual]


def test_budget_eviction_spec_case() -> None:
    a, b, c = (skill(n, body="x" * 16) for n in "abc")
    assert estimate_tokens(a.body) == 4
    active = ActiveSkills(budget_tokens=10)
    assert active.activate(a) and active.activate(b) and active.activate(c)
    assert active.names == ["b", "c"]
    assert "a" not in active
    assert active.used_tokens == 8


def test_recently_used_survives_eviction() -> None:
    a, b, c = (skill(n, body="x" * 16) for n in "abc")
    active = ActiveSkills(budget_tokens=10)
    active.activate(a)
    active.activate(b)
    active.activate(a)  # touch a: b is now least recently used
    active.activate(c)
    assert active.names == ["a", "c"]


def test_protected_skills_are_never_evicted() -> None:
    a, b, c = (skill(n, body="x" * 16) for n in "abc")
    active = ActiveSkills(budget_tokens=10)
    active.activate(a)
    active.activate(b)
    assert active.activate(c, protect=["a", "b"]) is False
    assert active.names == ["a", "b"]  # nothing evicted for a skill that could not fit
    assert active.activate(c, protect=["a"]) is True
    assert active.names == ["a", "c"]


def test_update_protects_the_turns_matches_and_reports_new() -> None:
    a, b, c = (skill(n, body="x" * 16) for n in "abc")
    active = ActiveSkills(budget_tokens=10)
    assert active.update([a]) == [a]
    assert active.update([b, c]) == [b, c]  # a evicted, b kept (matched this turn)
    assert active.names == ["b", "c"]
    assert active.update([b]) == []
    big = skill("big", body="x" * 100)
    assert active.update([big]) == []  # larger than 80 % of the budget alone
    assert active.names == ["c", "b"]  # b was touched by the previous turn


def test_max_active_and_empty_bodies() -> None:
    active = ActiveSkills(budget_tokens=10_000, max_active=2)
    skills = [skill(n, body="text") for n in "abc"]
    for s in skills:
        active.activate(s)
    assert active.names == ["b", "c"]
    assert active.activate(skill("e", body="   ")) is False
    assert active.deactivate("b") and not active.deactivate("b")
    active.refresh([skill("c", body="new body")])
    assert [s.body for s in active] == ["new body"]
    active.refresh([])
    assert len(active) == 0
    with pytest.raises(ValueError):
        ActiveSkills(0)


def test_prompt_section_text() -> None:
    skills = [
        skill("sql", when="postgres tuning, slow sql", description="Tune SQL\n  safely"),
        skill("manual", description="Deploy", disable_model_invocation=True),
    ]
    text = prompt_section(skills)
    assert text == (
        "## Available Skills\n\n"
        "- **sql**: Tune SQL safely (use when: postgres tuning, slow sql)\n"
        "- **manual**: Deploy\n\n"
        'When the user names one of these skills, or the task matches a skill\'s "use when" triggers, '
        "read and follow that skill's instructions."
    )
    assert "skill_read" in prompt_section(skills, tools=True)
    assert prompt_section([]) == ""


def test_active_section_text() -> None:
    sql = skill("sql", body="1. EXPLAIN ANALYZE first\n")
    active = ActiveSkills(1000)
    assert active_section(active) == ""
    active.activate(sql)
    text = active_section(active)
    assert text.startswith("## Active Skill: sql\n\n")
    assert "Skill directory: /skills/sql" in text
    assert text.endswith("1. EXPLAIN ANALYZE first")
    assert active_section([sql, skill("b", body="B")]).count("## Active Skill:") == 2
