"""The interactive first screen with no model configured (issue 18 #3): the how-to is shown as the
readable lines it is written in, not collapsed into one, and `pando init` is offered. Driven through
a real pseudo-terminal."""

from __future__ import annotations

import re
import sys

import pexpect
import pytest

from pando_core.agent.models import NO_MODEL_HELP

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.mark.slow
def test_no_model_first_screen_shows_the_how_to_as_lines_and_offers_init(pando_workdir, pando_env):
    env = dict(pando_env, TERM="xterm", COLUMNS="120", LINES="40", PROMPT_TOOLKIT_NO_CPR="1", PYTHONIOENCODING="utf-8")
    child = pexpect.spawn(
        sys.executable, ["-m", "pando_core", "--plugins", "none"], cwd=str(pando_workdir), env=env,
        encoding="utf-8", timeout=20, dimensions=(40, 120),
    )
    try:
        child.expect("pando \\(primary\\) › ")
        screen = [ANSI.sub("", line).rstrip() for line in child.before.replace("\r", "").split("\n")]
        child.send("\x04")
        child.expect(pexpect.EOF)
    finally:
        if child.isalive():
            child.terminate(force=True)
    banner = next(line for line in screen if line.startswith("pando "))
    assert banner.endswith("model (none)"), banner
    how_to = NO_MODEL_HELP.rstrip().splitlines()
    start = screen.index("No model is configured.")
    # every line of the how-to on a line of its own, in order, brackets kept ([agent])
    assert screen[start + 1 : start + len(how_to)] == how_to[1:]
    assert "  [agent]" in screen
    offer = screen[start + len(how_to)]
    assert "pando init" in offer and "/model" in offer
