"""The [cron] configuration, its Go spelling, and one distinct, clear error per mistake --
read from real config files, as pando reads them."""

from __future__ import annotations

import pytest
from conftest import write_jobs
from pando_cron.config import CronConfigError, read_current

JOB = {"name": "daily-review", "schedule": "0 9 * * 1-5", "prompt": "review the log"}


def test_a_job_with_its_defaults(pando_workdir):
    write_jobs(pando_workdir, JOB)
    config = read_current(pando_workdir)
    assert config.enabled is True
    (job,) = config.jobs
    assert (job.name, job.schedule, job.enabled, job.catch_up, job.timezone) == (
        "daily-review",
        "0 9 * * 1-5",
        True,
        "none",
        "",
    )
    assert job.resolved_work_dir == str(pando_workdir.resolve())
    assert job.spawn_tags() == ["cronjob", "cronjob:daily-review"]


def test_every_key_and_tags_deduplicated(pando_workdir):
    (pando_workdir / "sub").mkdir()
    write_jobs(
        pando_workdir,
        {**JOB, "enabled": False, "model": "m", "work_dir": "sub", "tags": ["daily", "cronjob"], "timeout": "10m",
         "timezone": "Europe/Madrid", "catch_up": "once"},
        enabled=False,
    )  # fmt: skip
    config = read_current(pando_workdir)
    (job,) = config.jobs
    assert config.enabled is False and job.enabled is False
    assert job.resolved_work_dir == str((pando_workdir / "sub").resolve())
    assert job.spawn_tags() == ["cronjob", "cronjob:daily-review", "daily"]
    assert (job.model, job.timeout, job.timezone, job.catch_up) == ("m", "10m", "Europe/Madrid", "once")


def test_the_go_spelling_is_read(pando_workdir):
    (pando_workdir / ".pando.toml").write_text(
        "[CronJobs]\nEnabled = true\n[[CronJobs.Jobs]]\nName = 'daily-review'\nSchedule = '0 9 * * 1-5'\n"
        'Prompt = "Review today\'s git log"\nEnabled = true\n'
        "Engine = 'pando'\nModel = ''\nWorkDir = ''\n"
        "Tags = ['daily']\nTimeout = '10m'\n"
    )
    (job,) = read_current(pando_workdir).jobs
    assert (job.name, job.prompt, job.engine, job.tags, job.timeout) == (
        "daily-review",
        "Review today's git log",
        "pando",
        ["daily"],
        "10m",
    )


def test_go_and_python_spellings_together_are_one_list(pando_workdir):
    (pando_workdir / ".pando.toml").write_text(
        "[[CronJobs.Jobs]]\nName = 'a'\nSchedule = '@daily'\nPrompt = 'x'\n"
        "[cron]\nEnabled = false\n[[cron.Jobs]]\nname = 'b'\nschedule = '@hourly'\nprompt = 'y'\n"
    )
    config = read_current(pando_workdir)
    assert [j.name for j in config.jobs] == ["a", "b"] and config.enabled is False


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ({"schedule": "* * * * *", "prompt": "x"}, "cron job #1 has no name"),
        ({"name": "  ", "schedule": "* * * * *", "prompt": "x"}, "cron job #1 has no name"),
        ({"name": "a b", "schedule": "* * * * *", "prompt": "x"}, "a name may use letters, digits"),
        ({"name": "j", "schedule": "* * * * *", "prompt": "   "}, "cron job 'j': the prompt is empty"),
        ({"name": "j", "prompt": "x"}, "cron job 'j': no schedule"),
        (
            {"name": "j", "schedule": "* 25 * * *", "prompt": "x"},
            "cron job 'j': bad hour field '25': use 0-23",
        ),
        ({"name": "j", "schedule": "@reboot", "prompt": "x"}, "cron job 'j': @reboot is not supported"),
        (
            {"name": "j", "schedule": "* * * * *", "prompt": "x", "work_dir": "nope"},
            "cron job 'j': work_dir 'nope' is not a directory",
        ),
        (
            {"name": "j", "schedule": "* * * * *", "prompt": "x", "catch_up": "all"},
            "catch_up must be none or once",
        ),
        (
            {"name": "j", "schedule": "* * * * *", "prompt": "x", "timeout": "soon"},
            "timeout 'soon' is not a duration",
        ),
        (
            {"name": "j", "schedule": "* * * * *", "prompt": "x", "timezone": "Nowhere/Town"},
            "unknown timezone 'Nowhere/Town'",
        ),
        (
            {"name": "j", "schedule": "* * * * *", "prompt": "x", "enabled": "yes"},
            "enabled must be true or false",
        ),
        (
            {"name": "j", "schedule": "* * * * *", "prompt": "x", "tags": ["a", ""]},
            "tags must be a list of non-empty strings",
        ),
        ({"name": "j", "schedule": "* * * * *", "prompt": "x", "scheduel": "x"}, "unknown key scheduel"),
    ],
)
def test_each_mistake_has_its_own_error(pando_workdir, job, message):
    write_jobs(pando_workdir, job)
    with pytest.raises(CronConfigError) as caught:
        read_current(pando_workdir)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_duplicate_name(pando_workdir):
    write_jobs(pando_workdir, JOB, {**JOB, "schedule": "@daily"})
    with pytest.raises(
        CronConfigError, match="cron job 'daily-review' is defined twice: names must be unique"
    ):
        read_current(pando_workdir)


def test_lookups_ignore_case_and_name_the_known_jobs(pando_workdir):
    from pando_core.errors import NotFoundError

    write_jobs(pando_workdir, JOB)
    config = read_current(pando_workdir)
    assert config.job("Daily-Review").name == "daily-review"
    with pytest.raises(NotFoundError, match=r"no cron job 'x' \(jobs: daily-review\)"):
        config.job("x")
