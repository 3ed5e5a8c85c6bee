"""pando-lua on the multi-instance contract: the same scripts run in every instance, and a script
hears of its own instance's sessions only (``pando_session_ended`` reaches the primary for the
sessions of every instance; the plugin keeps to its own by the hook's ``origin``)."""

from __future__ import annotations

import textwrap

import pytest

pytestmark = pytest.mark.slow

SCRIPT = """
function hook_session_end(ctx)
  pando_log("info", "ended " .. ctx.session_id)
end

function hook_session_start(ctx)
  pando_log("info", "started " .. ctx.session_id)
end
"""

PROBE_SESSION_ENDS = textwrap.dedent(
    """
    from pando_core import hookimpl

    class Probe:
        def __init__(self):
            self.ended = []

        @hookimpl
        def pando_session_ended(self, app, session, origin):
            self.ended.append(session["id"])

    app.test_probe = Probe()
    app.plugins.register(app.test_probe, "probe")
    result = True
    """
)

RECORD_LUA_LOGS = textwrap.dedent(
    """
    import logging
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger = logging.getLogger("pando.lua")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    app.test_lua_records = records
    result = True
    """
)


def test_each_instance_runs_the_scripts_for_its_own_sessions(pando_pair, pando_workdir):
    (pando_workdir / "x.lua").write_text(SCRIPT, encoding="utf-8")
    (pando_workdir / ".pando.toml").write_text('[lua]\nscripts = ["x.lua"]\n', encoding="utf-8")
    primary, secondary = pando_pair(plugins=["lua"])
    for instance in (primary, secondary):
        assert instance.eval(RECORD_LUA_LOGS) is True
    assert primary.eval(PROBE_SESSION_ENDS) is True
    session_id = secondary.eval("result = app.sessions.create(title='on the secondary')['id']")
    secondary.eval(f"result = app.sessions.end({session_id!r})")
    # the primary hears of the end (the evaluator's path) but its Lua script does not run for it
    primary.wait_for(f"result = {session_id!r} in app.test_probe.ended", True, timeout=10)
    logs = secondary.wait_for(
        "result = [m for m in app.test_lua_records if 'ended' in m]", [f"lua[x.lua]: ended {session_id}"]
    )
    assert logs
    assert f"lua[x.lua]: started {session_id}" in secondary.eval("result = app.test_lua_records")
    assert primary.eval("result = app.test_lua_records") == []
