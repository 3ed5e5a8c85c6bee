"""`pando cron install/uninstall` with the real `crontab` program, on the crontab of a throwaway
user made for the test (`useradd`, then `crontab -u USER`): root's own crontab is never touched,
and the real spool format and permission checks are exercised. Needs root and the `cron`
package (.ci/run installs it); outside CI the test says why it cannot run."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess

import pytest
from conftest import write_jobs
from pando_cron import crontab

OTHER = "MAILTO=''\n# a line of the user's own\n*/5 * * * * /usr/bin/true # keep me\n"


def _need(condition: bool, why: str) -> None:
    if not condition:
        if os.environ.get("CI"):
            pytest.fail(f"{why} (CI must run this test: see .ci/run)")
        pytest.skip(why)


@pytest.fixture
def user():
    _need(shutil.which("crontab") is not None, "the crontab program is missing (apt-get install cron)")
    _need(hasattr(os, "geteuid") and os.geteuid() == 0, "making a throwaway user for its crontab needs root")
    name = f"pcron{secrets.token_hex(3)}"
    subprocess.run(
        ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True, capture_output=True
    )
    try:
        yield name
    finally:
        subprocess.run(["crontab", "-u", name, "-r"], capture_output=True)
        subprocess.run(["userdel", name], capture_output=True)


def listing(user: str) -> str:
    done = subprocess.run(["crontab", "-u", user, "-l"], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else ""


def test_install_and_uninstall_round_trip(run_pando, pando_workdir, user):
    write_jobs(pando_workdir, {"name": "daily-review", "schedule": "0 9 * * 1-5", "prompt": "review"})
    subprocess.run(["crontab", "-u", user, "-"], input=OTHER, text=True, check=True)

    dry = run_pando("cron", "install", "daily-review", "--dry-run", "--user", user)
    assert dry.returncode == 0, dry.stderr
    assert listing(user) == OTHER  # a dry run changes nothing
    lines = dry.stdout.splitlines()
    assert lines[:3] == OTHER.splitlines()
    assert lines[3] == "# pando-cronjob:daily-review"
    assert lines[4].startswith(f"0 9 * * 1-5 cd '{pando_workdir.resolve()}' && '")
    assert lines[4].endswith("' cronjob run daily-review")
    binary = lines[4].split(" && ")[1].rsplit(" cronjob run ", 1)[0].strip("'")
    assert os.access(binary, os.X_OK) and os.path.basename(binary) == "pando"  # the pando cron will run

    done = run_pando("cron", "install", "daily-review", "--user", user)
    assert done.returncode == 0, done.stderr
    assert listing(user) == dry.stdout
    # installing again replaces the entry (a new schedule), it does not add a second one
    write_jobs(pando_workdir, {"name": "daily-review", "schedule": "@daily", "prompt": "review"})
    assert run_pando("cron", "install", "daily-review", "--user", user).returncode == 0
    table = listing(user)
    assert table.count("# pando-cronjob:daily-review") == 1 and "\n@daily cd '" in table

    gone = run_pando("cron", "uninstall", "daily-review", "--user", user)
    assert gone.returncode == 0, gone.stderr
    assert listing(user) == OTHER
    again = run_pando("cron", "uninstall", "daily-review", "--user", user)
    assert again.returncode == 1
    assert (
        again.stderr.strip()
        == "pando: error: the crontab has no entry for cron job 'daily-review' (no line '# pando-cronjob:daily-review')"
    )


def test_an_entry_written_by_the_go_original_is_managed(run_pando, pando_workdir, user):
    go_entry = (
        "# pando-cronjob:nightly\n0 2 * * * cd '/srv/app' && '/usr/local/bin/pando' cronjob run nightly\n"
    )
    subprocess.run(["crontab", "-u", user, "-"], input=OTHER + go_entry, text=True, check=True)
    gone = run_pando("cron", "uninstall", "nightly", "--user", user)
    assert gone.returncode == 0, gone.stderr
    assert listing(user) == OTHER


def test_the_text_edits_keep_every_other_line():
    lines = crontab.entry("j", "* * * * *", "/w/it's", "/bin/pando")
    assert lines == ["# pando-cronjob:j", "* * * * * cd '/w/it'\\''s' && '/bin/pando' cronjob run j"]
    text = "a\n# pando-cronjob:k\nk-line\nb\n"
    added = crontab.with_entry(text, "j", lines)
    assert added == text + "\n".join(lines) + "\n"
    assert crontab.without(added, "j") == (text, True)
    assert crontab.without(text, "j") == (text, False)
    assert crontab.without(text, "k") == ("a\nb\n", True)
