from __future__ import annotations

from pando_skills.config import SkillsConfig
from pando_skills.manager import SkillManager


def test_turn_activation_and_prompt(dirs, make_skill) -> None:
    workdir, home = dirs
    make_skill(
        workdir / ".pando" / "skills" / "sql",
        front="description: Tune SQL\nwhen-to-use: postgres tuning, slow sql",
        body="EXPLAIN first",
    )
    make_skill(workdir / ".pando" / "skills" / "bad", front="name: [")
    manager = SkillManager(workdir, home, SkillsConfig(tools=True))
    assert len(manager.reload()) == 1
    context = manager.new_context()
    assert manager.activate(context, "hello") == []
    assert "Active Skill" not in manager.system_prompt(context)
    assert "- **sql**: Tune SQL (use when: postgres tuning, slow sql)" in manager.system_prompt(context)
    assert [s.name for s in manager.activate(context, "Help with a slow SQL query")] == ["sql"]
    text = manager.system_prompt(context)
    assert "## Active Skill: sql" in text and text.endswith("EXPLAIN first")
    assert [t.name for t in manager.tools()] == ["skill_read", "skill_resource"]
    assert SkillManager(workdir, home, SkillsConfig(tools=False)).tools() == []
    # a skill that disappears on reload leaves the active set
    (workdir / ".pando" / "skills" / "sql" / "SKILL.md").unlink()
    manager.reload()
    manager.activate(context, "anything")
    assert len(context) == 0 and manager.system_prompt(context) == ""
