from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from pando_skills.catalog import CatalogClient, CatalogSkill, format_installs
from pando_skills.errors import CatalogError, InstallError
from pando_skills.installer import install


def entry(ident: str, name: str, source: str, path: str = "", installs: int = 0, **extra) -> dict:
    data = {"id": ident, "skillId": name, "name": name, "source": source, "installs": installs}
    if path:
        data["path"] = path
    data.update(extra)
    return data


def test_search_parses_results(catalog_server) -> None:
    catalog_server.skills = [
        entry("acme/skills/sql", "sql", "acme/skills", installs=1500, description="Tune SQL"),
        entry("acme/skills/sqlite", "sqlite", "https://git.example/s.git", path="x/sqlite"),
        {"no": "id"},
    ]
    results = CatalogClient(catalog_server.url).search("sql")
    assert [r.id for r in results] == ["acme/skills/sql", "acme/skills/sqlite"]
    first = results[0]
    assert first == CatalogSkill(
        id="acme/skills/sql",
        name="sql",
        skill_id="sql",
        description="Tune SQL",
        source="acme/skills",
        installs=1500,
    )
    assert first.git_url == "https://github.com/acme/skills.git"
    assert results[1].git_url == "https://git.example/s.git" and results[1].path == "x/sqlite"
    assert catalog_server.requests[-1] == "/api/search?q=sql&limit=10"
    assert CatalogClient(catalog_server.url + "/").search("sql", limit=1)[0].name == "sql"
    assert catalog_server.requests[-1].endswith("limit=1")
    assert CatalogClient(catalog_server.url).search("nothing-matches") == []


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (500, b"boom", "skills catalog returned HTTP 500 for /api/search: boom"),
        (200, b"<html>not json", "skills catalog returned invalid JSON for /api/search"),
        (200, b'{"results": []}', "has no 'skills' list"),
    ],
)
def test_search_errors(catalog_server, status: int, body: bytes, message: str) -> None:
    catalog_server.search_status = status
    catalog_server.search_body = body
    with pytest.raises(CatalogError) as info:
        CatalogClient(catalog_server.url).search("x")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unreachable_catalog(closed_port_url: str) -> None:
    with pytest.raises(
        CatalogError, match=r"^skills catalog http://127\.0\.0\.1:\d+ is unreachable: "
    ) as info:
        CatalogClient(closed_port_url, timeout=2).search("x")
    assert "\n" not in str(info.value)


def test_catalog_that_never_answers_times_out() -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never replies
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(CatalogError, match="timed out after 0.3s"):
            CatalogClient(url, timeout=0.3).search("x")


def test_bad_base_url() -> None:
    with pytest.raises(CatalogError, match="must start with http"):
        CatalogClient("ftp://x")


def test_get_detail_and_search_fallback_and_content(catalog_server) -> None:
    catalog_server.skills = [
        entry("acme/skills/sql", "sql", "acme/skills", content="---\nname: sql\n---\nbody"),
        entry("other/repo/sql", "sql", "other/repo"),
    ]
    client = CatalogClient(catalog_server.url)
    assert client.get("acme/skills/sql").source == "acme/skills"
    assert catalog_server.requests[-1] == "/api/skills/acme/skills/sql"
    catalog_server.detail_enabled = False
    assert client.get("other/repo/sql").source == "other/repo"
    assert catalog_server.requests[-1].startswith("/api/search?q=sql")
    with pytest.raises(CatalogError, match="ambiguous"):
        client.get("sql")
    with pytest.raises(CatalogError, match="not found in the skills catalog"):
        client.get("nope")
    catalog_server.detail_enabled = True
    assert client.get_content("acme/skills/sql").endswith("body")


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 installs"),
        (999, "999 installs"),
        (1000, "1K installs"),
        (1500, "1.5K installs"),
        (999999, "1000K installs"),
        (1000000, "1M installs"),
        (1500000, "1.5M installs"),
    ],
)
def test_format_installs(count: int, text: str) -> None:
    assert format_installs(count) == text


def test_search_and_install_from_catalog(catalog_server, dirs, tmp_path: Path, repo_factory) -> None:
    workdir, home = dirs
    repo = tmp_path / "catalog-repo"
    commit = repo_factory(
        repo,
        {
            "skills/sql/SKILL.md": "---\nname: sql\ndescription: Tune SQL\nwhen-to-use: slow sql\n---\nEXPLAIN\n",
            "skills/lint/SKILL.md": "---\ndescription: Lint\n---\nlint\n",
            "tools/fmt/SKILL.md": "---\nname: formatter\n---\nfmt\n",
        },
    )
    catalog_server.skills = [
        entry("acme/skills/sql", "sql", f"file://{repo}", path="skills/sql", installs=42),
        entry("acme/skills/lint", "lint", f"file://{repo}"),  # no path: found by the spec's candidates
        entry("acme/skills/formatter", "formatter", str(repo)),  # found by scanning the repository
    ]
    client = CatalogClient(catalog_server.url)
    found = client.search("sql")
    assert [f.id for f in found] == ["acme/skills/sql"]
    item = install(found[0].id, "project", workdir, home, catalog=client)
    assert item.name == "sql" and item.source_type == "catalog" and item.commit == commit
    assert item.catalog_id == "acme/skills/sql" and item.subdir == "skills/sql"
    lock = json.loads((item.path.parent / "skills-lock.json").read_text())
    assert lock["skills"]["sql"]["catalog_id"] == "acme/skills/sql"
    assert lock["skills"]["sql"]["checksum"] == item.checksum
    assert (item.path / "SKILL.md").read_text().endswith("EXPLAIN\n")
    lint = install("acme/skills/lint", "project", workdir, home, catalog=client)
    assert lint.subdir == "skills/lint"
    fmt = install("acme/skills/formatter", "project", workdir, home, catalog=client)
    assert fmt.name == "formatter" and fmt.subdir == "tools/fmt"
    with pytest.raises(InstallError, match="already installed"):
        install("acme/skills/sql", "project", workdir, home, catalog=client)
    with pytest.raises(InstallError, match="not found in the skills catalog"):
        install("acme/skills/unknown", "project", workdir, home, catalog=client)


def test_install_with_unreachable_catalog(dirs, closed_port_url: str) -> None:
    workdir, home = dirs
    with pytest.raises(InstallError, match="is unreachable"):
        install(
            "acme/skills/sql", "project", workdir, home, catalog=CatalogClient(closed_port_url, timeout=2)
        )
