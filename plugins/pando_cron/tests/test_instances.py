"""Three real pando processes on one working directory, a job every minute: exactly one fire
(one Mesnada task) per minute boundary, fired by the primary only -- also when the primary is
SIGKILLed just after a fire (the new primary does not fire that minute again, and fires the next).
The clock is driven through pando_cron.clock in every process; one test waits a real boundary."""

from __future__ import annotations

import json
import time

from conftest import ENGINE_ENV, poll, write_jobs

PLUGINS = ["cron", "mesnada"]
MINUTE = 60.0
M0 = 1_900_000_020.0  # a minute boundary (2030-03-17 17:47 UTC), far from the real clock
EVERY = {"name": "every", "schedule": "* * * * *", "prompt": "exit 0", "timezone": "UTC"}


def set_clock(instances, when: float) -> None:
    for instance in instances:
        if instance.alive:
            instance.eval(
                "from pando_cron import clock\n"
                "if not isinstance(clock.current(), clock.ManualClock):\n"
                f"    clock.install(clock.ManualClock({when!r}))\n"
                f"clock.current().set({when!r})\n"
                "result = clock.current().now()"
            )


def fires(instance, job="every") -> list[dict]:
    return instance.eval(f"result = app.store.cron.history(job={job!r}, limit=100)")[::-1]


def cron_tasks(instance, job="every") -> list[dict]:
    return instance.eval(f"result = app.call_primary('mesnada.list', {{'tags': ['cronjob:{job}']}})")


def primary_of(instances):
    return poll(
        lambda: next((i for i in instances if i.alive and i.role == "primary"), None), what="a primary"
    )


def passes(instance) -> int:
    return instance.eval("s = app.services.get('cron')\nresult = s.passes if s else -1")


def settle(instance, after: int | None = None) -> None:
    """Wait until the primary's scheduler has made two more passes than *after*: it has acted on
    what it was told (its pass and the one after it both saw the new time)."""
    base = passes(instance) if after is None else after
    poll(lambda: passes(instance) >= base + 2, what="the scheduler's passes")


def test_three_instances_fire_each_minute_once_and_a_failover_does_not_fire_it_again(
    pando_instance, pando_workdir
):
    env = dict(ENGINE_ENV)
    instances = [pando_instance(PLUGINS, env) for _ in range(3)]
    assert [i.info["role"] for i in instances] == ["primary", "secondary", "secondary"]
    set_clock(instances, M0 + 10)  # ten seconds into minute M0, before the job exists
    write_jobs(pando_workdir, EVERY)
    first = instances[0]
    first.eval("result = app.call_primary('cron.reload')")
    poll(
        lambda: first.eval("result = [j.name for j in app.services.get('cron').jobs()]") == ["every"],
        what="the reload",
    )
    settle(first)
    assert fires(first) == []  # a job added during a minute waits for its next one

    # two boundaries on the first primary: one fire, one task each
    for minute in (M0 + MINUTE, M0 + 2 * MINUTE):
        before = passes(first)
        set_clock(instances, minute + 0.05)
        settle(first, before)
        done = poll(lambda: [f for f in fires(first) if f["status"] != "claimed"], what="the fire")
        assert [f["scheduled_at"] for f in done][-1] == int(minute * 1000)
        # the job's task must have ended before the next minute, or that fire is (rightly) skipped
        poll(lambda: all(t["status"] in ("completed", "failed") for t in cron_tasks(first)), what="the task's end")
    got = fires(instances[1])  # a secondary reads the same rows
    assert [(f["scheduled_at"], f["status"], f["instance"]) for f in got] == [
        (int((M0 + MINUTE) * 1000), "fired", first.info["instance_id"]),
        (int((M0 + 2 * MINUTE) * 1000), "fired", first.info["instance_id"]),
    ]
    tasks = cron_tasks(instances[2])
    assert sorted(t["id"] for t in tasks) == sorted(f["task_id"] for f in got)
    assert all(t["tags"][:2] == ["cronjob", "cronjob:every"] for t in tasks)
    assert [i.eval("result = app.services.get('cron') is None") for i in instances[1:]] == [True, True]

    # SIGKILL the primary just after it fired minute M0+2: the new primary must not fire it again
    first.kill()
    survivors = instances[1:]
    second = primary_of(survivors)
    poll(
        lambda: second.eval("result = app.services.get('cron') is not None"),
        what="the scheduler on the new primary",
    )
    settle(second)
    assert len(fires(second)) == 2 and len(cron_tasks(second)) == 2
    poll(lambda: all(t["status"] in ("completed", "failed") for t in cron_tasks(second)), what="the tasks' end")
    # ... and fires the next minute itself, once
    before = passes(second)
    set_clock(survivors, M0 + 3 * MINUTE + 0.05)
    settle(second, before)
    done = poll(
        lambda: [f for f in fires(second) if f["status"] == "fired"][2:], what="the fire of the new primary"
    )
    assert [(f["scheduled_at"], f["instance"]) for f in done] == [
        (int((M0 + 3 * MINUTE) * 1000), second.info["instance_id"])
    ]
    poll(lambda: len(cron_tasks(second)) == 3, what="three tasks")
    other = next(i for i in survivors if i is not second)
    assert other.role == "secondary" and other.eval("result = app.services.get('cron') is None")


def test_a_busy_job_is_skipped_and_recorded(pando_instance, pando_workdir):
    instances = [pando_instance(PLUGINS, dict(ENGINE_ENV)) for _ in range(2)]
    primary, secondary = instances
    set_clock(instances, M0 + 10)
    write_jobs(pando_workdir, {**EVERY, "name": "slow", "prompt": "sleep 30"})
    primary.eval("result = app.call_primary('cron.reload')")
    poll(lambda: primary.eval("result = len(app.services.get('cron').jobs())") == 1, what="the reload")
    secondary.eval(
        "app.heard = []\napp.events.subscribe('cron.', lambda e: app.heard.append([e.topic, e.payload['job']]))"
    )
    set_clock(instances, M0 + MINUTE + 0.05)
    first = poll(lambda: [f for f in fires(primary, "slow") if f["status"] == "fired"], what="the first fire")
    set_clock(instances, M0 + 2 * MINUTE + 0.05)
    skipped = poll(lambda: [f for f in fires(primary, "slow") if f["status"] == "skipped"], what="the skip")
    assert skipped[0]["task_id"] == first[0]["task_id"]
    assert skipped[0]["reason"] == f"its previous task {first[0]['task_id']} is still running"
    assert len(cron_tasks(primary, "slow")) == 1
    heard = poll(
        lambda: (
            secondary.eval("result = app.heard") if len(secondary.eval("result = app.heard")) >= 2 else None
        ),
        what="events",
    )
    assert heard[:2] == [["cron.fired", "slow"], ["cron.skipped", "slow"]]
    primary.eval(f"result = app.call_primary('mesnada.cancel', {{'id': {first[0]['task_id']!r}}})")


def test_a_real_minute_boundary_fires_once_across_three_instances(pando_instance, pando_workdir):
    """The real clock: wait for the next minute boundary (at most about a minute)."""
    write_jobs(pando_workdir, EVERY)
    instances = [pando_instance(PLUGINS, dict(ENGINE_ENV)) for _ in range(3)]
    primary = instances[0]
    boundary = (time.time() // MINUTE + 1) * MINUTE
    fired = poll(
        lambda: [
            f for f in fires(primary) if f["status"] == "fired" and f["scheduled_at"] >= boundary * 1000
        ],
        timeout=boundary - time.time() + 30,
        interval=0.2,
        what="the fire at the real boundary",
    )
    assert fired[0]["scheduled_at"] == int(boundary * 1000)
    delay = fired[0]["claimed_at"] / 1000 - boundary
    assert 0 <= delay < 5, f"fired {delay:.3f}s after the boundary"
    # let the other two instances see that minute too, then: one fire, one task for it
    settle(primary)
    assert [f["scheduled_at"] for f in fires(instances[2]) if f["scheduled_at"] == int(boundary * 1000)] == [
        int(boundary * 1000)
    ]
    tasks = [t for t in cron_tasks(instances[1]) if t["created_at"] >= boundary * 1000]
    assert [t["id"] for t in tasks] == [fired[0]["task_id"]]
    json.dumps(tasks)  # the tasks are JSON values as served over the bus
