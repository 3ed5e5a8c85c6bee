from __future__ import annotations

from pathlib import Path

from pando_skills.discovery import discover_skills, discovery_roots


def test_roots_in_spec_order(dirs) -> None:
    workdir, home = dirs
    roots = discovery_roots(workdir, home, ["./agents/skills", "/abs/skills", "~/x"])
    assert roots[:6] == [
        home / ".pando" / "skills",
        workdir / ".agents" / "skills",
        workdir / ".pando" / "skills",  # where earlier versions created project skills: still read
        home / ".claude" / "skills",
        workdir / ".claude" / "skills",
        workdir / "agents" / "skills",
    ]
    assert roots[6] == Path("/abs/skills")
    assert roots[7] == Path.home() / "x"


def test_precedence_across_roots_and_sorting(dirs, make_skill) -> None:
    workdir, home = dirs
    make_skill(home / ".pando" / "skills" / "sql", front="description: home pando")
    make_skill(workdir / ".claude" / "skills" / "sql", front="description: project claude")
    make_skill(workdir / ".pando" / "skills" / "zeta", front="description: z")
    make_skill(home / ".claude" / "skills" / "alpha", front="description: a")
    make_skill(workdir / "extra" / "a" / "b" / "c", front="name: nested\ndescription: deep")
    result = discover_skills(workdir, home, ["extra"])
    assert [s.name for s in result.skills] == ["alpha", "nested", "sql", "zeta"]
    sql = next(s for s in result.skills if s.name == "sql")
    assert sql.description == "home pando"
    assert sql.source_root == home / ".pando" / "skills"
    assert len(result.warnings) == 1
    assert "skill 'sql'" in result.warnings[0]
    assert str(workdir / ".claude" / "skills" / "sql" / "SKILL.md") in result.warnings[0]


def test_project_pando_beats_home_claude(dirs, make_skill) -> None:
    workdir, home = dirs
    make_skill(home / ".claude" / "skills" / "x", front="description: home claude")
    make_skill(workdir / ".pando" / "skills" / "x", front="description: project pando")
    assert discover_skills(workdir, home).skills[0].description == "project pando"


def test_malformed_skipped_with_warning_and_resources_not_searched(dirs, make_skill) -> None:
    workdir, home = dirs
    root = workdir / ".pando" / "skills"
    bad = make_skill(root / "broken", front="name: [x")
    good = make_skill(root / "good", front="description: ok")
    # resources of a skill are not skills themselves (a template SKILL.md in assets/)
    make_skill(good.parent / "assets" / "template", front="name: template")
    (good.parent / "scripts").mkdir()
    (root / ".git").mkdir()
    make_skill(root / ".git" / "hidden", front="name: hidden")
    result = discover_skills(workdir, home)
    assert [s.name for s in result.skills] == ["good"]
    assert len(result.warnings) == 1
    assert str(bad) in result.warnings[0] and "invalid YAML" in result.warnings[0]


def test_missing_roots_and_file_root(dirs) -> None:
    workdir, home = dirs
    (workdir / "notadir").write_text("x")
    result = discover_skills(workdir, home, ["notadir", "missing"])
    assert result.skills == []
    assert result.warnings == [f"{workdir / 'notadir'}: skills path is not a directory"]


def test_root_that_is_itself_a_skill_and_symlink_loops(dirs, make_skill) -> None:
    workdir, home = dirs
    make_skill(workdir / "single", front="description: one")
    loop_root = workdir / "loops"
    (loop_root / "a").mkdir(parents=True)
    (loop_root / "a" / "back").symlink_to(loop_root, target_is_directory=True)
    make_skill(loop_root / "a" / "s", front="name: looped")
    result = discover_skills(workdir, home, ["single", "loops"])
    assert [s.name for s in result.skills] == ["looped", "single"]
    assert result.warnings == []


def test_same_file_through_two_roots_is_not_a_conflict(dirs, make_skill) -> None:
    workdir, home = dirs
    make_skill(workdir / ".pando" / "skills" / "x")
    (workdir / "link").symlink_to(workdir / ".pando" / "skills", target_is_directory=True)
    result = discover_skills(workdir, home, ["link"])
    assert [s.name for s in result.skills] == ["demo"]
    assert result.warnings == []


def test_project_skills_live_in_agents_and_the_old_pando_folder_is_still_read(dirs, make_skill) -> None:
    """Project skills are created in `.agents/skills` (committed with the project, unlike the
    usually git-ignored `.pando/`); skills an earlier version created in `.pando/skills` keep working."""
    workdir, home = dirs
    make_skill(workdir / ".agents" / "skills" / "x", front="description: agents")
    make_skill(workdir / ".pando" / "skills" / "x", front="description: old pando")
    make_skill(workdir / ".pando" / "skills" / "y", front="description: only in the old folder")
    make_skill(workdir / ".claude" / "skills" / "z", front="description: claude project")
    found = {s.name: s for s in discover_skills(workdir, home).skills}
    assert found["x"].description == "agents" and found["x"].source_root == workdir / ".agents" / "skills"
    assert found["y"].source_root == workdir / ".pando" / "skills"
    assert found["z"].source_root == workdir / ".claude" / "skills"
