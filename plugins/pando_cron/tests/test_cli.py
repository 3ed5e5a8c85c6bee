"""`pando cron ...` as a user runs it: real CLI processes, with no pando running, beside a running
primary (the command is then a secondary), and without mesnada."""

from __future__ import annotations

import json

from conftest import ENGINE_ENV, poll, write_jobs

LONG = "summarise the git log of today in DAILY_REPORT.md, then exit 0"
JOBS = (
    {"name": "every", "schedule": "* * * * *", "prompt": "exit 0"},
    {"name": "daily-review", "schedule": "0 9 * * 1-5", "prompt": LONG, "timezone": "UTC", "tags": ["daily"]},
)


def test_list_next_and_history_with_no_pando_running(run_pando, pando_workdir, cron_env):
    write_jobs(pando_workdir, *JOBS)
    listed = run_pando("cron", "list", "--json", env=ENGINE_ENV)
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert data["enabled"] is True and data["mesnada"] is True
    assert [(j["name"], j["schedule"], j["enabled"], j["last_run"]) for j in data["jobs"]] == [
        ("daily-review", "0 9 * * 1-5", True, None),
        ("every", "* * * * *", True, None),
    ]
    assert data["jobs"][1]["next_run"] % 60 == 0
    text = run_pando("cron", "list", env=ENGINE_ENV).stdout.splitlines()
    assert text[0].split() == ["NAME", "SCHEDULE", "ENABLED", "NEXT", "RUN", "LAST", "RUN", "TASK", "PROMPT"]
    assert text[1].endswith(LONG[:39] + "…") and "UTC" in text[1]
    upcoming = run_pando("cron", "next", "daily-review", "--count", "3", "--json").stdout
    times = json.loads(upcoming)
    assert len(times) == 3 and all(t["iso"].endswith("T09:00:00+00:00") for t in times)
    assert run_pando("cron", "history").stdout.strip() == "no cron job has fired yet"


def test_run_with_no_pando_running_prints_the_task_id(run_pando, pando_workdir, cron_env):
    write_jobs(pando_workdir, *JOBS)
    ran = run_pando("cron", "run", "Daily-Review")  # lookups ignore case, as in the Go original
    assert ran.returncode == 0, ran.stderr
    task_id = ran.stdout.strip()
    assert task_id.startswith("task-")
    shown = json.loads(run_pando("mesnada", "show", task_id, "--json").stdout)
    assert shown["tags"] == ["cronjob", "cronjob:daily-review", "daily"] and shown["prompt"] == LONG
    (fire,) = json.loads(run_pando("cron", "history", "daily-review", "--json").stdout)
    assert (fire["kind"], fire["status"], fire["task_id"]) == ("manual", "fired", task_id)
    listed = json.loads(run_pando("cron", "list", "--json").stdout)["jobs"]
    assert [(j["name"], j["last_task"]) for j in listed] == [("daily-review", task_id), ("every", None)]


def test_run_from_a_secondary_fires_on_the_primary(run_pando, pando_instance, pando_workdir, cron_env):
    write_jobs(pando_workdir, *JOBS)
    primary = pando_instance(["cron", "mesnada"], dict(ENGINE_ENV))
    ran = run_pando("cron", "run", "every", "--json")
    assert ran.returncode == 0, ran.stderr
    fire = json.loads(ran.stdout)
    assert fire["status"] == "fired" and fire["instance"] == primary.info["instance_id"]
    task = primary.eval(f"result = app.call_primary('mesnada.get', {{'id': {fire['task_id']!r}}})")
    assert task["tags"][:2] == ["cronjob", "cronjob:every"]
    seen = []

    def task_ended():
        seen.append(primary.eval(f"result = app.store.mesnada.get(id={fire['task_id']!r})"))
        return seen[-1]["status"] == "completed"

    try:
        poll(task_ended, what="the task's end")
    except AssertionError as timeout:
        raise AssertionError(f"{timeout}; the task: {seen[-1]}") from None


def test_errors_are_one_line(run_pando, pando_workdir, cron_env):
    write_jobs(pando_workdir, *JOBS)
    unknown = run_pando("cron", "run", "nope")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "pando: error: no cron job 'nope' (jobs: daily-review, every)"
    no_mesnada = run_pando("--plugins", "cron", "cron", "run", "every")
    assert no_mesnada.returncode == 2
    assert (
        no_mesnada.stderr.strip()
        == "pando: error: cron jobs need the mesnada plugin (pip install pando-mesnada, and do not disable it)"
    )
    listed = run_pando("--plugins", "cron", "cron", "list")
    assert listed.returncode == 0 and "cron jobs need the mesnada plugin" in listed.stderr
    write_jobs(pando_workdir, {"name": "bad", "schedule": "* * * * 9", "prompt": "x"})
    bad = run_pando("cron", "list")
    assert bad.returncode == 2
    assert (
        bad.stderr.strip()
        == "pando: error: cron job 'bad': bad day-of-week field '9': use 0-7 (0 and 7 are Sunday) or sun-sat (numbers, ranges a-b, steps */n or a-b/n, lists a,b)"
    )
    assert "Traceback" not in bad.stderr
