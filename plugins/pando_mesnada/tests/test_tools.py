"""The agent's mesnada_* tools in a real agent turn against the scripted model server: the model
spawns a sub-agent, waits for it and reads its output; the same tools are offered to `pando
mcp-server` (`pando tools --mcp-server`); task events on the primary's event broker."""

from __future__ import annotations

import asyncio
import json

from pando_mesnada.tools import TOOL_CLASSES

from pando_core.app import AppOptions
from pando_core.testing.model_server import Reply

NAMES = ["mesnada_spawn_agent", "mesnada_get_task", "mesnada_list_tasks", "mesnada_wait_task",
         "mesnada_cancel_task", "mesnada_get_task_output"]  # fmt: skip


def test_the_agent_spawns_waits_and_reads_a_sub_agent(model_server, make_app, fake_engines):
    app = make_app(plugins=["mesnada"], model_server=model_server, options=AppOptions(startup_mode="run", yolo=True))
    events = []
    app.events.subscribe("mesnada.task.", lambda event: events.append((event.topic, event.payload["task"]["id"])))
    assert {t.name for t in app.coder_agent.tools()} >= set(NAMES)
    model_server.script(
        Reply.tool("mesnada_spawn_agent", {"prompt": "say:sub-agent answer 7", "engine": "claude", "tags": ["t"]}),
        Reply.text("spawned"),
    )
    session = app.sessions.create(title="t")
    asyncio.run(app.coder_agent.run(session["id"], "start a helper"))
    spawned = json.loads(model_server.requests[1]["messages"][-1]["content"])
    task_id = spawned["task_id"]
    assert spawned["status"] in ("running", "completed") and spawned["created_at"]
    model_server.script(
        Reply.tool("mesnada_wait_task", {"task_id": task_id, "timeout": "60s"}),
        Reply.tool("mesnada_get_task_output", {"task_id": task_id, "tail": 5}),
        Reply.tool("mesnada_list_tasks", {"tags": ["t"]}),
        Reply.text("done"),
    )
    asyncio.run(app.coder_agent.run(session["id"], "wait for it"))
    results = [m["messages"][-1]["content"] for m in model_server.requests[3:6]]
    waited = json.loads(results[0])
    assert waited["task"]["status"] == "completed" and waited["output_tail"] == "sub-agent answer 7"
    assert results[1] == f"[{task_id} completed]\nsub-agent answer 7"
    assert [t["id"] for t in json.loads(results[2])] == [task_id]
    assert ("mesnada.task.created", task_id) in events and ("mesnada.task.started", task_id) in events
    assert ("mesnada.task.finished", task_id) in events


def test_errors_come_back_to_the_model_as_error_results(model_server, make_app, fake_engines):
    app = make_app(plugins=["mesnada"], model_server=model_server, options=AppOptions(startup_mode="run", yolo=True))
    model_server.script(Reply.tool("mesnada_get_task", {"task_id": "task-00000000"}), Reply.text("ok"))
    session = app.sessions.create(title="t")
    asyncio.run(app.coder_agent.run(session["id"], "look"))
    assert model_server.requests[1]["messages"][-1]["content"] == "mesnada: no task task-00000000"


def test_read_only_flags_and_the_mcp_server_listing(run_pando, fake_engines):
    flags = {cls.name: cls.read_only for cls in TOOL_CLASSES}
    assert flags == {"mesnada_spawn_agent": False, "mesnada_get_task": True, "mesnada_list_tasks": True,
                     "mesnada_wait_task": True, "mesnada_cancel_task": False, "mesnada_get_task_output": True}  # fmt: skip
    listed = json.loads(run_pando("--plugins", "mesnada", "tools", "--mcp-server", "--json").stdout)
    assert [t["name"] for t in listed] == NAMES
