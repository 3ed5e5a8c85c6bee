"""Full agent runs against the scripted model server: the skills list and the active skill in the system
prompt, and the model calling skill_read / skill_resource. Plus the real `pando skills` CLI in a subprocess."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from pando_core.testing.model_server import Reply

BODY_MARKER = "PG-TUNING-BODY-7f3a"
SECRET = "TOP-SECRET-OUTSIDE-THE-SKILL"
SKILL_MD = f"""---
name: pg-tuning
description: Tune PostgreSQL queries safely
when-to-use: slow query, postgres tuning
version: 1.0.0
---
# PostgreSQL tuning

{BODY_MARKER}: always run EXPLAIN ANALYZE before changing a query.
See references/checklist.md for the checklist.
"""
LIST_LINE = "- **pg-tuning**: Tune PostgreSQL queries safely (use when: slow query, postgres tuning)"
MATCHING_PROMPT = "My PostgreSQL query is slow, what should I do?"  # word rule: "slow" + "query"
OTHER_PROMPT = "Rename the variable foo to bar in main.py"


def make_skill(workdir: Path) -> Path:
    skill_dir = workdir / ".pando" / "skills" / "pg-tuning"
    (skill_dir / "references").mkdir(parents=True)
    (skill_dir / "SKILL.md").write_text(SKILL_MD, encoding="utf-8")
    (skill_dir / "references" / "checklist.md").write_text("1. EXPLAIN ANALYZE\n2. check indexes\n")
    (workdir / ".pando" / "secret.txt").write_text(SECRET)
    return skill_dir


def system_of(request: dict) -> str:
    first = request["messages"][0]
    assert first["role"] == "system"
    content = first["content"]
    return content if isinstance(content, str) else "\n".join(part.get("text", "") for part in content)


def tool_messages(request: dict) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


def test_prompt_activates_skill_and_model_reads_it(model_server, make_app, pando_workdir) -> None:
    make_skill(pando_workdir)  # before make_app: discovery runs when the App is built
    app = make_app(plugins=["skills"], model_server=model_server)
    model_server.script(
        Reply.tool("skill_read", {"name": "pg-tuning"}),
        Reply.tool("skill_resource", {"name": "pg-tuning", "path": "../secret.txt"}),
        Reply.tool("skill_resource", {"name": "pg-tuning", "path": "references/checklist.md"}),
        Reply.text("Run EXPLAIN ANALYZE first."),
    )
    session = app.sessions.create(title="t")
    result = asyncio.run(app.coder_agent.run(session["id"], MATCHING_PROMPT))
    assert result.status == "success", result.error
    assert result.response == "Run EXPLAIN ANALYZE first."

    requests = model_server.requests
    assert len(requests) == 4
    system = system_of(requests[0])
    # the list of every skill: name, description, triggers, and the advice naming the tools
    assert "## Available Skills" in system and LIST_LINE in system
    assert "skill_read" in system and "skill_resource" in system
    # the prompt matched a trigger: the body is in the active section
    assert "## Active Skill: pg-tuning" in system and BODY_MARKER in system
    tool_names = {tool["function"]["name"] for tool in requests[0]["tools"]}
    assert {"skill_read", "skill_resource"} <= tool_names

    # skill_read: the body and the resource list come back in the next request
    read = tool_messages(requests[1])
    assert len(read) == 1
    assert read[0].startswith("# Skill: pg-tuning") and BODY_MARKER in read[0]
    assert "- references/checklist.md" in read[0]
    # skill_resource with ../ is refused, the file outside the skill is not leaked
    refused = tool_messages(requests[2])[-1]
    assert "escapes the skill directory" in refused and SECRET not in refused
    # a proper resource is read
    assert tool_messages(requests[3])[-1].startswith("1. EXPLAIN ANALYZE")
    assert [call["name"] for call in result.tool_calls] == ["skill_read", "skill_resource", "skill_resource"]
    assert [bool(call["is_error"]) for call in result.tool_calls] == [False, True, False]


def test_activation_follows_each_turn_and_session(model_server, make_app, pando_workdir) -> None:
    make_skill(pando_workdir)
    app = make_app(plugins=["skills"], model_server=model_server)
    model_server.script(Reply.text("one"), Reply.text("two"), Reply.text("three"), Reply.text("four"))
    first = app.sessions.create(title="t")["id"]
    second = app.sessions.create(title="t")["id"]

    assert asyncio.run(app.coder_agent.run(first, OTHER_PROMPT)).status == "success"
    system = system_of(model_server.requests[0])
    assert LIST_LINE in system  # listed every turn
    assert "Active Skill" not in system and BODY_MARKER not in system  # not activated

    assert asyncio.run(app.coder_agent.run(first, "any postgres tuning tips?")).status == "success"
    system = system_of(model_server.requests[1])
    assert "## Active Skill: pg-tuning" in system and BODY_MARKER in system

    # still active on the next turn of the same session (LRU keeps it until the budget evicts it)
    assert asyncio.run(app.coder_agent.run(first, OTHER_PROMPT)).status == "success"
    assert BODY_MARKER in system_of(model_server.requests[2])

    # another session has its own active set
    assert asyncio.run(app.coder_agent.run(second, OTHER_PROMPT)).status == "success"
    system = system_of(model_server.requests[3])
    assert LIST_LINE in system and BODY_MARKER not in system


def one_turn_request(make_app, model_server, workdir: Path, config: str) -> dict:
    """The model request of one matching turn in an App with the example skill and `config`."""
    make_skill(workdir)
    app = make_app(plugins=["skills"], model_server=model_server, config=config)
    model_server.script(Reply.text("ok"))
    session = app.sessions.create(title="t")
    assert asyncio.run(app.coder_agent.run(session["id"], MATCHING_PROMPT)).status == "success"
    return model_server.requests[0]


def test_tools_off_and_plugin_disabled(model_server, make_app, pando_workdir) -> None:
    request = one_turn_request(make_app, model_server, pando_workdir, "\n[skills]\ntools = false\n")
    tool_names = {tool["function"]["name"] for tool in request["tools"]}
    assert not {"skill_read", "skill_resource"} & tool_names
    system = system_of(request)
    assert LIST_LINE in system and BODY_MARKER in system and "skill_read" not in system


def test_enabled_false_adds_nothing(model_server, make_app, pando_workdir) -> None:
    request = one_turn_request(make_app, model_server, pando_workdir, "\n[skills]\nenabled = false\n")
    assert "Available Skills" not in system_of(request) and BODY_MARKER not in system_of(request)
    assert "skill_read" not in {tool["function"]["name"] for tool in request["tools"]}


def test_cli_subprocess(pando_workdir, run_pando) -> None:
    make_skill(pando_workdir)
    listed = run_pando("--plugins", "skills", "skills", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert [skill["name"] for skill in data["skills"]] == ["pg-tuning"]
    skill = data["skills"][0]
    assert skill["description"] == "Tune PostgreSQL queries safely"
    assert skill["triggers"] == ["slow query", "postgres tuning"] and skill["location"] == "project"
    assert data["warnings"] == []

    without = run_pando("--plugins", "none", "skills", "list")
    assert without.returncode == 2
    assert "No such command" in without.stderr and "skills" in without.stderr


def test_disabled_plugin_attaches_nothing(make_app, pando_workdir) -> None:
    make_skill(pando_workdir)
    app = make_app(plugins=["skills"], config="[skills]\nenabled = false\n")
    assert "skills" not in app.subsystems and getattr(app, "skills", None) is None


def test_yaml_is_imported_only_to_parse_a_skill(tmp_path: Path) -> None:
    """Building the subsystem without skills costs no PyYAML import."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from pando_skills.manager import SkillManager\n"
        f"assert SkillManager({str(tmp_path)!r}, {str(tmp_path)!r}).reload() == []\n"
        "assert 'yaml' not in sys.modules\n"
        "from pando_skills.parser import parse_skill_text\n"
        "parse_skill_text('---\\nname: x\\n---\\nbody', 'x/SKILL.md')\n"
        "assert 'yaml' in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
