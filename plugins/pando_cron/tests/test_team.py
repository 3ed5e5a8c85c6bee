"""Cron in team mode, with real pando processes: two "machines" (two working directories with the
same job, no shared ``.pando/``) on one PostgreSQL database. Only the instance holding the team
lease schedules, so each minute fires once for the team; the other machine hears the fire's
events by NOTIFY and says where the scheduler runs; when the holder is SIGKILLed the other
machine's primary takes the lease and fires the next minute, once. The clock is driven through
pando_cron.clock in both processes."""

from __future__ import annotations

import pytest
from conftest import ENGINE_ENV, poll, write_jobs
from test_instances import EVERY, M0, MINUTE, fires, passes, set_clock, settle

pytest.importorskip("psycopg")

pytestmark = pytest.mark.timeout(180)

PLUGINS = ["cron", "mesnada"]


def test_each_minute_fires_once_for_the_team_on_the_lease_holder(pando_instance, postgres_url, tmp_path):
    env = dict(ENGINE_ENV, PANDO_DATABASE__URL=postgres_url)
    workdirs = [tmp_path / "machine-a", tmp_path / "machine-b"]
    for workdir in workdirs:
        workdir.mkdir()
    holder = pando_instance(PLUGINS, env, workdirs[0])
    holder.wait_for("result = app.runs_services", True, timeout=10)
    other = pando_instance(PLUGINS, env, workdirs[1])
    both = [holder, other]
    set_clock(both, M0 + 10)  # ten seconds into minute M0, before the job exists
    for workdir in workdirs:
        write_jobs(workdir, EVERY)
    holder.eval("result = app.call_primary('cron.reload')")
    poll(lambda: holder.eval("result = [j.name for j in app.services.get('cron').jobs()]") == ["every"],
         what="the holder's scheduler")
    assert other.info["role"] == "primary" and other.eval("result = app.services.get('cron') is None")
    status = other.eval("result = app.call_primary('cron.status')")
    assert status["running"] is False
    assert status["elsewhere"].startswith(
        f"the cron scheduler runs on the team's service owner (instance {holder.info['instance_id']} (pid {holder.pid})"
    )
    other.eval("app.heard = []\napp.events.subscribe('cron.fired', lambda e: app.heard.append(e.payload['fire']['id']))")
    holder.eval("app.heard = []\napp.events.subscribe('cron.fired', lambda e: app.heard.append(e.payload['fire']['id']))")

    before = passes(holder)
    set_clock(both, M0 + MINUTE + 0.05)
    settle(holder, before)
    fired = poll(lambda: [f for f in fires(other) if f["status"] == "fired"], what="the fire")
    assert [(f["scheduled_at"], f["instance"]) for f in fired] == [(int((M0 + MINUTE) * 1000), holder.info["instance_id"])]
    # the holder published the event when it fired; the other machine, from the NOTIFY, once each
    poll(lambda: other.eval("result = app.heard") == [fired[0]["id"]], what="the event on the other machine")
    assert holder.eval("result = app.heard") == [fired[0]["id"]]
    poll(lambda: other.eval(f"result = app.store.mesnada.get(id={fired[0]['task_id']!r})['status']") == "completed",
         what="the fired task's end")

    holder.kill()
    other.wait_for("result = app.runs_services", True, timeout=5, interval=0.02)
    poll(lambda: other.eval("s = app.services.get('cron')\nresult = s is not None and len(s.jobs()) == 1"),
         what="the scheduler on the other machine")
    settle(other)
    assert len(fires(other)) == 1  # the minute already fired is not fired again
    before = passes(other)
    set_clock([other], M0 + 2 * MINUTE + 0.05)
    settle(other, before)
    done = poll(lambda: [f for f in fires(other) if f["status"] == "fired"][1:], what="the new holder's fire")
    assert [(f["scheduled_at"], f["instance"]) for f in done] == [(int((M0 + 2 * MINUTE) * 1000), other.info["instance_id"])]
    assert len(fires(other)) == 2
