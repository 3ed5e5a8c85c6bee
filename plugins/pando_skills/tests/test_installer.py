from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from pando_skills.discovery import discover_skills
from pando_skills.errors import InstallError
from pando_skills.installer import (
    _run_git,
    install,
    install_many,
    parse_source,
    read_lock,
    scaffold,
    skills_root,
    tree_checksum,
    uninstall,
    verify,
)
from pando_skills.parser import parse_skill

SQL = "name: sql\ndescription: Tune SQL\nwhen-to-use: slow sql"


def lock_of(root: Path) -> dict:
    return json.loads((root / "skills-lock.json").read_text())


def test_install_local_directory(dirs, tmp_path: Path, make_skill) -> None:
    workdir, home = dirs
    src = tmp_path / "src" / "sql"
    make_skill(src, front=SQL, body="Run EXPLAIN.\n")
    (src / "references").mkdir()
    (src / "references" / "notes.md").write_text("notes")
    (src / ".git").mkdir()
    (src / ".git" / "config").write_text("x")
    item = install(str(src), "project", workdir, home)
    root = workdir / ".agents" / "skills"
    assert item.name == "sql" and item.path == root / "sql" and item.scope == "project"
    assert (root / "sql" / "references" / "notes.md").read_text() == "notes"
    assert not (root / "sql" / ".git").exists()
    assert item.source_type == "local" and item.commit is None and item.source == str(src)
    entry = lock_of(root)["skills"]["sql"]
    assert entry["checksum"] == tree_checksum(root / "sql") == item.checksum
    assert re.fullmatch(r"[0-9a-f]{64}", entry["checksum"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry["installed_at"])
    assert entry["source"] == str(src) and entry["scope"] == "project" and entry["commit"] is None
    assert lock_of(root)["version"] == 1
    assert [(s.name, s.root) for s in discover_skills(workdir, home).skills] == [("sql", root / "sql")]
    assert verify("sql", "project", workdir, home) is True
    (root / "sql" / "references" / "notes.md").write_text("edited")
    assert verify("sql", "project", workdir, home) is False


def test_relative_source_and_skill_md_path(dirs, make_skill) -> None:
    workdir, home = dirs
    make_skill(workdir / "mine" / "helper", front="description: h")
    assert (
        install("mine/helper/SKILL.md", "global", workdir, home).path == home / ".pando" / "skills" / "helper"
    )


def test_force_behaviour(dirs, tmp_path: Path, make_skill) -> None:
    workdir, home = dirs
    src = tmp_path / "sql"
    make_skill(src, front=SQL, body="v1\n")
    first = install(str(src), "project", workdir, home)
    with pytest.raises(
        InstallError, match=r"skill 'sql' is already installed at .* \(use --force to replace it\)"
    ):
        install(str(src), "project", workdir, home)
    make_skill(src, front=SQL, body="v2\n")
    second = install(str(src), "project", workdir, home, force=True)
    assert second.replaced and not first.replaced
    assert parse_skill(second.path / "SKILL.md").body == "v2"
    assert lock_of(skills_root("project", workdir, home))["skills"]["sql"]["checksum"] == second.checksum
    assert second.checksum != first.checksum
    leftovers = [p.name for p in skills_root("project", workdir, home).iterdir()]
    assert sorted(leftovers) == ["skills-lock.json", "sql"]


def test_folder_of_skills(dirs, tmp_path: Path, make_skill) -> None:
    workdir, home = dirs
    pack = tmp_path / "pack"
    make_skill(pack / "a", front="name: alpha")
    make_skill(pack / "b", front="name: beta")
    with pytest.raises(InstallError, match=r"contains 2 skills \(a, b\); choose one with --skill"):
        install(str(pack), "project", workdir, home)
    assert install(str(pack), "project", workdir, home, skill="beta").name == "beta"
    assert install(str(pack), "project", workdir, home, skill="a").name == "alpha"
    with pytest.raises(InstallError, match="no skill named 'zzz'"):
        install(str(pack), "project", workdir, home, skill="zzz")
    names = [i.name for i in install_many(str(pack), "global", workdir, home)]
    assert names == ["alpha", "beta"]
    assert sorted(read_lock(home / ".pando" / "skills")["skills"]) == ["alpha", "beta"]


def test_install_from_local_git_repository(dirs, tmp_path: Path, repo_factory) -> None:
    workdir, home = dirs
    repo = tmp_path / "skills-repo"
    commit = repo_factory(
        repo,
        {
            "skills/sql/SKILL.md": f"---\n{SQL}\n---\nbody\n",
            "skills/sql/scripts/x.py": "print(1)\n",
            "skills/lint/SKILL.md": "---\ndescription: Lint\n---\nlint\n",
            "README.md": "readme",
        },
    )
    item = install(f"file://{repo}#skills/sql", "project", workdir, home)
    assert item.source_type == "git" and item.commit == commit and item.subdir == "skills/sql"
    assert item.url == f"file://{repo}"
    assert (item.path / "scripts" / "x.py").exists() and not (item.path / ".git").exists()
    entry = lock_of(item.path.parent)["skills"]["sql"]
    assert entry["commit"] == commit and entry["checksum"] == tree_checksum(item.path)
    # `//subdir` form and a plain path to the repository
    assert install(f"file://{repo}//skills/lint", "global", workdir, home).name == "lint"
    plain = install(f"{repo}#skills/lint", "project", workdir, home)
    assert plain.commit == commit and plain.source_type == "git"
    # multi-skill repository: pick by name
    assert install(str(repo), "global", workdir, home, skill="sql").name == "sql"


def test_repository_root_skill_is_named_after_the_repository(dirs, tmp_path: Path, repo_factory) -> None:
    workdir, home = dirs
    repo = tmp_path / "root-skill.git-src"
    repo_factory(repo, {"SKILL.md": "---\ndescription: root\n---\nbody\n"})
    item = install(f"file://{repo}", "project", workdir, home)
    assert item.name == "root-skill.git-src"


def test_git_failures(dirs, tmp_path: Path) -> None:
    workdir, home = dirs
    with pytest.raises(InstallError, match="git clone failed: .*"):
        install(f"file://{tmp_path}/missing-repo", "project", workdir, home)
    start = time.monotonic()
    with pytest.raises(InstallError, match=r"timed out after 0.3s"):
        _run_git(["-c", "alias.slow=!sleep 30", "slow"], timeout=0.3)
    assert time.monotonic() - start < 10


def test_symlinks_leaving_the_source_are_not_copied(dirs, tmp_path: Path, make_skill) -> None:
    workdir, home = dirs
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    src = tmp_path / "s"
    make_skill(src, front="name: s")
    (src / "inner.txt").write_text("inner")
    (src / "leak").symlink_to(secret)
    (src / "alias").symlink_to(src / "inner.txt")
    item = install(str(src), "project", workdir, home)
    assert not (item.path / "leak").exists()
    assert (item.path / "alias").read_text() == "inner" and not (item.path / "alias").is_symlink()


def test_shadowed_project_install_gets_a_note(dirs, tmp_path: Path, make_skill) -> None:
    workdir, home = dirs
    make_skill(tmp_path / "sql", front=SQL)
    install(str(tmp_path / "sql"), "global", workdir, home)
    item = install(str(tmp_path / "sql"), "project", workdir, home)
    assert item.notes and "takes precedence" in item.notes[0]


def test_uninstall(dirs, tmp_path: Path, make_skill) -> None:
    workdir, home = dirs
    make_skill(tmp_path / "sql", front=SQL)
    make_skill(tmp_path / "other", front="name: other")
    install(str(tmp_path / "sql"), "project", workdir, home)
    install(str(tmp_path / "other"), "project", workdir, home)
    root = skills_root("project", workdir, home)
    assert uninstall("sql", "project", workdir, home) == root / "sql"
    assert not (root / "sql").exists()
    assert list(lock_of(root)["skills"]) == ["other"]
    with pytest.raises(InstallError, match="skill 'sql' is not installed in the project skills directory"):
        uninstall("sql", "project", workdir, home)
    uninstall("sql", "project", workdir, home, missing_ok=True)
    with pytest.raises(InstallError, match="'..'"):
        uninstall("..", "project", workdir, home)
    with pytest.raises(InstallError, match="path separator"):
        uninstall("../x", "project", workdir, home)


def test_corrupt_lock_is_reported(dirs, tmp_path: Path, make_skill) -> None:
    workdir, home = dirs
    root = skills_root("project", workdir, home)
    root.mkdir(parents=True)
    (root / "skills-lock.json").write_text("{broken")
    make_skill(tmp_path / "sql", front=SQL)
    with pytest.raises(InstallError, match="skills-lock.json is not valid JSON .*fix or delete it"):
        install(str(tmp_path / "sql"), "project", workdir, home)


def test_scope_and_source_validation(dirs) -> None:
    workdir, home = dirs
    with pytest.raises(InstallError, match="scope must be 'project' or 'global'"):
        install("x", "everywhere", workdir, home)
    with pytest.raises(InstallError, match="does not exist"):
        install("./nowhere", "project", workdir, home)
    with pytest.raises(InstallError, match="no skills catalog is configured"):
        install("some-catalog-id", "project", workdir, home)
    with pytest.raises(InstallError, match="escapes the source"):
        parse_source("https://example.com/repo.git#../up", workdir)
    assert parse_source("git@github.com:o/r.git//skills/x", workdir).subdir == "skills/x"
    assert parse_source("https://github.com/o/r", workdir).kind == "git"
    assert parse_source("owner/repo/skill", workdir).kind == "catalog"


def test_scaffold(tmp_path: Path) -> None:
    path = scaffold("sql-tuning", tmp_path / "skills")
    skill = parse_skill(path)
    assert skill.name == "sql-tuning"
    assert skill.triggers == ["sql tuning"]
    assert skill.description.startswith("Sql Tuning")
    with pytest.raises(InstallError, match="already exists"):
        scaffold("sql-tuning", tmp_path / "skills")
    with pytest.raises(InstallError, match="path separator"):
        scaffold("../evil", tmp_path / "skills")


def test_github_page_urls_are_understood(dirs) -> None:
    workdir, _ = dirs
    spec = parse_source("https://github.com/acme/skills/tree/dev/skills/sql", workdir)
    assert (spec.kind, spec.location, spec.subdir, spec.ref) == (
        "git",
        "https://github.com/acme/skills.git",
        "skills/sql",
        "dev",
    )
    spec = parse_source("https://github.com/acme/skills/blob/main/skills/sql/SKILL.md", workdir)
    assert (spec.subdir, spec.ref) == ("skills/sql", "main")


def test_duplicate_names_in_a_source_are_refused(dirs, tmp_path: Path, make_skill) -> None:
    workdir, home = dirs
    make_skill(tmp_path / "pack" / "a", front="name: same")
    make_skill(tmp_path / "pack" / "b", front="name: same")
    with pytest.raises(InstallError, match="two skills of the source are named 'same'"):
        install_many(str(tmp_path / "pack"), "project", workdir, home)
    assert not skills_root("project", workdir, home).exists()
