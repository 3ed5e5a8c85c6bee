"""@path completion and dropped image paths in the real interactive session, through a pty (pexpect)."""

from __future__ import annotations

import sys

import pexpect
import pytest

from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config
from tests.test_images import image_urls, tiny_png
from tests.test_mentions import user_content

PROMPT = "pando \\(primary\\) › "
TIMEOUT = 30


@pytest.fixture
def term(pando_env, pando_workdir, model_server):
    write_model_config(pando_workdir, model_server.base_url, extra='\n[providers.scripted.models.test-model]\nimages = true\n')
    env = dict(pando_env, TERM="xterm", COLUMNS="100", LINES="40", PROMPT_TOOLKIT_NO_CPR="1", PYTHONIOENCODING="utf-8")
    child = pexpect.spawn(
        sys.executable, ["-m", "pando_core", "--plugins", "none"],
        cwd=str(pando_workdir), env=env, encoding="utf-8", timeout=TIMEOUT, dimensions=(40, 100),
    )
    child.expect(PROMPT)
    yield child
    if child.isalive():
        child.terminate(force=True)


def quit_with_ctrl_d(child) -> int:
    child.send("\x04")
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


@pytest.mark.slow
def test_tab_completes_an_at_path_and_the_file_is_sent(term, model_server, pando_workdir):
    (pando_workdir / "src").mkdir()
    (pando_workdir / "src" / "module_alpha.py").write_text("ALPHA_MARKER = 42\n")
    (pando_workdir / "README.txt").write_text("readme\n")
    model_server.add_rule(contains="explain", response=Reply.text("explained it"))
    term.send("explain @s")
    term.send("\t")  # the only entry starting with "s" is the directory: "@src/"
    term.expect("rc/")  # the screen gets only what changed: "rc/" after the typed "@s"
    term.send("mod")
    term.send("\t")
    term.expect("ule_alpha.py")
    term.send("\r")
    term.expect("📎 src/module_alpha.py  18 bytes")
    term.expect("explained it")
    term.expect(PROMPT)
    sent = user_content(model_server.requests[0])
    assert sent.startswith("explain @src/module_alpha.py")
    assert '<file path="src/module_alpha.py">\nALPHA_MARKER = 42\n</file>' in sent
    assert quit_with_ctrl_d(term) == 0


@pytest.mark.slow
def test_a_dropped_image_path_is_attached(term, model_server, tmp_path):
    shot = tmp_path / "Screen Shot.png"
    shot.write_bytes(tiny_png())
    model_server.add_rule(contains="what is", response=Reply.text("a red square"))
    term.send(f"what is '{shot}'\r")
    term.expect("image .*Screen Shot.png")
    term.expect("a red square")
    term.expect(PROMPT)
    (url,) = image_urls(model_server.requests[0])
    assert url.startswith("data:image/png;base64,iVBORw0KGgo")
    assert quit_with_ctrl_d(term) == 0
