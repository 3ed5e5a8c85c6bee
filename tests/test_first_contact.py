"""What a newcomer and a careful user hit first (issue 18): a missing key, a mistyped provider
kind, an unknown provider prefix, an unknown config key, a base_url that is not a URL, a server
that never answers."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config


def one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def test_no_key_for_openai_names_the_variable_and_pando_init(run_pando):
    result = run_pando("--model", "openai/gpt-4o-mini", "run", "hi", env={"OPENAI_API_KEY": ""})
    line = one_line(result.stderr)
    assert "OPENAI_API_KEY is not set" in line and "pando init" in line and "model_server" in line
    assert result.returncode == 2


def test_a_mistyped_provider_kind_is_a_configuration_error(run_pando, pando_workdir):
    (pando_workdir / ".pando.toml").write_text(
        '[agent]\nmodel = "work/m"\n[providers.work]\ntype = "openia"\nbase_url = "http://127.0.0.1:9/v1"\n', encoding="utf-8"
    )
    result = run_pando("run", "hi")
    line = one_line(result.stderr)
    assert "[providers.work] type = 'openia' is not a provider kind" in line and "openai" in line
    assert result.returncode == 2


def test_an_unknown_provider_prefix_is_an_error_listing_the_known_ones(run_pando, pando_workdir, model_server):
    write_model_config(pando_workdir, model_server.base_url)
    result = run_pando("--model", "nosuch/foo", "run", "hi")
    line = one_line(result.stderr)
    assert "no provider named 'nosuch'" in line and "scripted" in line
    assert result.returncode == 2
    assert model_server.requests == []


def test_an_unknown_config_key_is_warned_about_once_with_the_closest_key(run_pando, pando_workdir, model_server):
    write_model_config(pando_workdir, model_server.base_url)
    config = pando_workdir / ".pando.toml"
    config.write_text(config.read_text(encoding="utf-8").replace('[agent]\n', '[agent]\nmodle = "x"\n', 1), encoding="utf-8")
    model_server.script(Reply.text("ok"))
    result = run_pando("run", "-f", "json", "hi")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "unknown key" in line]
    assert warnings == [f"pando: warning: {config}: unknown key agent.modle (ignored); did you mean agent.model?"]


def test_a_base_url_that_is_not_a_url_is_a_configuration_error(run_pando, pando_workdir):
    (pando_workdir / ".pando.toml").write_text(
        '[agent]\nmodel = "work/m"\n[providers.work]\ntype = "openai"\nbase_url = "not a url"\n', encoding="utf-8"
    )
    result = run_pando("run", "hi")
    line = one_line(result.stderr)
    assert "base_url 'not a url' is not an http(s) URL" in line
    assert result.returncode == 2


@pytest.fixture
def silent_server():
    """Accepts connections and never answers (bounded: closed at the end of the test)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                accepted.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    stop.set()
    thread.join(2)
    for conn in accepted:
        conn.close()
    listener.close()


def test_a_server_that_never_answers_times_out_with_the_documented_timeout(run_pando, pando_workdir, silent_server):
    (pando_workdir / ".pando.toml").write_text(
        '[agent]\nmodel = "work/m"\n[providers.work]\ntype = "openai"\napi_key = "k"\n'
        f'base_url = "{silent_server}"\ntimeout = 1.0\nmax_retries = 0\n',
        encoding="utf-8",
    )
    result = run_pando("run", "-f", "json", "hi", timeout=60)
    out = json.loads(result.stdout)
    assert out["status"] == "error" and result.returncode == 1
    assert "tim" in out.get("error", result.stderr).lower()


def test_json_output_gives_tool_call_input_as_an_object(run_pando, pando_workdir, model_server):
    write_model_config(pando_workdir, model_server.base_url)
    model_server.script(Reply.tool("ls", {"path": "."}), Reply.text("listed"))
    result = run_pando("run", "-f", "json", "list")
    assert json.loads(result.stdout)["tool_calls"][0]["input"] == {"path": "."}
    model_server.script(Reply.tool("ls", {"path": "."}), Reply.text("listed"))
    streamed = run_pando("run", "-f", "stream-json", "list")
    calls = [json.loads(line) for line in streamed.stdout.splitlines() if '"tool_call"' in line]
    assert calls[0]["type"] == "tool_call" and calls[0]["input"] == {"path": "."}


def test_text_mode_off_a_terminal_shows_tool_lines_on_stderr_and_the_answer_alone_on_stdout(run_pando, pando_workdir, model_server):
    write_model_config(pando_workdir, model_server.base_url)
    model_server.script(Reply.tool("ls", {"path": "."}), Reply.tool("view", {"file_path": "missing.txt"}), Reply.text("the answer"))
    result = run_pando("run", "look")
    assert result.stdout == "the answer\n"
    lines = result.stderr.splitlines()
    assert '• ls {"path": "."}' in lines and "  ✓ ls" in lines
    assert any(line.startswith("  ✗ view failed: ") for line in lines)
    quiet = run_pando("run", "-q", "look again")
    assert "•" not in quiet.stderr
