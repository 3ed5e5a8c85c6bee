"""The running scheduler follows the config file: an edit while pando runs reschedules, an
invalid edit keeps the last valid jobs and is reported; a catch_up = once job fires once after
downtime."""

from __future__ import annotations

from conftest import ENGINE_ENV, poll, write_jobs
from test_instances import M0, MINUTE, PLUGINS, fires, set_clock, settle

A = {"name": "a", "schedule": "* * * * *", "prompt": "exit 0", "timezone": "UTC"}


def jobs(instance):
    return instance.eval("result = [j.name for j in app.services.get('cron').jobs()]")


def test_an_edited_config_file_is_reloaded(pando_instance, pando_workdir):
    write_jobs(pando_workdir, A)
    primary = pando_instance(PLUGINS, dict(ENGINE_ENV))
    assert poll(lambda: jobs(primary) == ["a"], what="the first load")
    write_jobs(pando_workdir, A, {**A, "name": "b"})
    poll(lambda: jobs(primary) == ["a", "b"], timeout=15, what="the reload of the edited file")
    write_jobs(pando_workdir, {**A, "schedule": "* * * *"})
    health = poll(
        lambda: (h := primary.eval("result = app.services.get('cron').health()")).get("config_error") and h,
        timeout=15,
        what="the config error",
    )
    assert (
        health["config_error"]
        == "cron job 'a': schedule '* * * *' has 4 fields; cron needs five: minute hour day-of-month month day-of-week"
    )
    assert jobs(primary) == ["a", "b"]  # the last valid jobs keep running
    assert primary.eval("result = app.call_primary('cron.status')")["config_error"] == health["config_error"]


def test_catch_up_once_fires_one_missed_time_and_none_fires_nothing(pando_instance, pando_workdir):
    hourly = {**A, "schedule": "48 * * * *"}  # M0 + 1 minute is 17:48 UTC
    write_jobs(pando_workdir, {**hourly, "catch_up": "once"}, {**hourly, "name": "b"})
    primary = pando_instance(PLUGINS, dict(ENGINE_ENV))
    set_clock([primary], M0 + MINUTE + 0.05)
    poll(
        lambda: len([f for f in fires(primary, "a") + fires(primary, "b") if f["status"] == "fired"]) == 2,
        what="the first fires",
    )
    # no pando running from 17:49 to 19:10: 18:48 was missed
    primary.stop()
    primary = pando_instance(PLUGINS, dict(ENGINE_ENV))
    set_clock([primary], M0 + MINUTE + 2 * 3600 - 38 * MINUTE)
    poll(
        lambda: [f for f in fires(primary, "a") if f["catch_up"] and f["status"] != "claimed"],
        what="the catch-up",
    )
    settle(primary)
    caught = [f for f in fires(primary, "a") if f["catch_up"]]
    assert len(caught) == 1 and caught[0]["status"] == "fired"
    assert caught[0]["scheduled_at"] == int((M0 + MINUTE + 3600) * 1000)
    assert len(fires(primary, "b")) == 1  # catch_up = none: the missed times are not run
