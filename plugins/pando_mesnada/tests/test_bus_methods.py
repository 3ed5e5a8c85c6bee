"""The ``mesnada.*`` handlers as the primary serves them (the interface pando-cron relies on):
spawn / list / get shapes, JSON-only results, error kinds."""

from __future__ import annotations

import json

import pytest
from mesnada_testing import drive, ended
from pando_mesnada.ops import bus_methods

from pando_core.errors import NotFoundError, ValidationError


def test_spawn_list_get_contract(make_orchestrator, fake_engines):
    orchestrator = make_orchestrator()
    methods = bus_methods(lambda: orchestrator)
    assert {"mesnada.spawn", "mesnada.list", "mesnada.get", "mesnada.wait", "mesnada.cancel", "mesnada.stats"} <= set(methods)
    task = methods["mesnada.spawn"]({"prompt": "say:from cron", "engine": "claude", "tags": ["cron", "daily"], "timeout": 30})
    assert {"id", "status", "tags", "created_at"} <= set(task) and task["tags"] == ["cron", "daily"]
    assert task["timeout_seconds"] == 30
    json.dumps(task)  # a JSON value, as the bus requires
    waited = methods["mesnada.wait"]({"id": task["id"], "timeout": "20s"})
    if waited["timeout"]:
        drive(orchestrator, ended(orchestrator, task["id"]))
    assert methods["mesnada.get"]({"id": task["id"]})["status"] in ("running", "completed")
    drive(orchestrator, ended(orchestrator, task["id"]))
    assert [t["id"] for t in methods["mesnada.list"]({"tags": ["cron"], "status": ["completed"], "limit": 5})] == [task["id"]]
    assert methods["mesnada.list"]({"tags": ["cron", "weekly"]}) == []
    assert methods["mesnada.output"]({"id": task["id"], "lines": 1})["output"] == "from cron"
    with pytest.raises(NotFoundError):
        methods["mesnada.get"]({"id": "task-ffffffff"})
    with pytest.raises(ValidationError, match="give the task's id"):
        methods["mesnada.get"]({})
    with pytest.raises(ValidationError, match="object of parameters"):
        methods["mesnada.list"](["not", "an", "object"])
    foreground = methods["mesnada.spawn"]({"prompt": "say:fg", "engine": "claude", "background": False, "wait_timeout": 5})
    assert foreground["status"] in ("running", "completed")
