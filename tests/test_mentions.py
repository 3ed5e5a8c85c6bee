"""@file mentions: the real CLI against the scripted model server, whose received request is checked."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from pando_core.agent.mentions import complete_mention, find_mentions, mention_parts
from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config


def run_cli(workdir, env, *args, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "pando_core", "--plugins", "none", *args],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout,
    )


def user_content(request_body) -> str:
    """The last user message's text as the OpenAI request carried it."""
    content = [m for m in request_body["messages"] if m["role"] == "user"][-1]["content"]
    if isinstance(content, str):
        return content
    return "\n".join(c.get("text", "") for c in content if c.get("type") == "text")


def stored_parts(workdir, session_id):
    db = sqlite3.connect(f"file:{workdir}/.pando/pando.db?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT parts FROM messages WHERE session_id=? AND role='user' ORDER BY seq", (session_id,))
        return [json.loads(parts) for (parts,) in rows]
    finally:
        db.close()


@pytest.fixture
def project(pando_workdir):
    (pando_workdir / "src").mkdir()
    (pando_workdir / "src" / "app.py").write_text("def main():\n    return 'alpha-7731'\n")
    (pando_workdir / "src" / "util.py").write_text("HELPER = 1\n")
    (pando_workdir / "notes dir").mkdir()
    (pando_workdir / "notes dir" / "meeting notes.md").write_text("decided: ship on friday\n")
    (pando_workdir / ".gitignore").write_text("secret.env\nbuild/\n")
    (pando_workdir / "secret.env").write_text("TOKEN=do-not-send-me\n")
    (pando_workdir / "build").mkdir()
    (pando_workdir / "build" / "out.txt").write_text("generated\n")
    (pando_workdir / "blob.bin").write_bytes(b"\x00\x01\x02binary\x00" * 50)
    return pando_workdir


def test_run_attaches_mentioned_files_and_listings_and_leaves_the_rest_as_text(project, pando_env, model_server):
    write_model_config(project, model_server.base_url)
    model_server.script(Reply.text("seen"))
    prompt = (
        'explain @src/app.py and @"notes dir/meeting notes.md", list @src/, '
        "mail bob@example.com, ask @nobody, skip @secret.env and @build/out.txt and @blob.bin."
    )
    result = run_cli(project, pando_env, "run", "-f", "json", prompt)
    assert result.returncode == 0, result.stderr
    sent = user_content(model_server.requests[0])
    assert sent.startswith(prompt)  # the prompt itself is unchanged
    assert '<file path="src/app.py">' in sent and "return 'alpha-7731'" in sent
    assert '<file path="notes dir/meeting notes.md">' in sent and "ship on friday" in sent
    assert '<directory path="src/">' in sent and "app.py\nutil.py" in sent
    # ignored and binary files are named as left out, never sent; unknown names and e-mails stay text
    assert "do-not-send-me" not in sent and '<file path="secret.env" attached="no">ignored' in sent
    assert "generated" not in sent and '<file path="build/out.txt" attached="no">ignored' in sent
    assert '<file path="blob.bin" attached="no">binary file' in sent
    assert "example.com" not in sent.split(prompt, 1)[1] and 'path="nobody"' not in sent
    # the attachments are stored with the user's message
    session_id = json.loads(result.stdout)["session_id"]
    (parts,) = stored_parts(project, session_id)
    assert [p["type"] for p in parts] == ["text"] + ["file"] * 6
    assert {p["data"]["kind"] for p in parts[1:]} == {"file", "directory", "skipped"}
    markdown = run_cli(project, pando_env, "sessions", "export", session_id).stdout
    assert "_(@src/app.py attached)_" in markdown and "_(@secret.env not attached: ignored" in markdown


def test_the_anthropic_format_carries_mentions_as_text_blocks(project, pando_env, model_server):
    (project / ".pando.toml").write_text(
        '[agent]\nmodel = "claude/claude-sonnet-4-5"\n\n'
        f'[providers.claude]\ntype = "anthropic"\nbase_url = "{model_server.root_url}"\napi_key = "test"\n'
    )
    model_server.script(Reply.text("seen"), Reply.text("seen"))
    result = run_cli(project, pando_env, "run", "what does @src/app.py return?")
    assert result.returncode == 0, result.stderr
    size = (project / "src" / "app.py").stat().st_size
    assert f"📎 src/app.py  {size} bytes\n" in result.stderr and result.stdout == "seen\n"
    quiet = run_cli(project, pando_env, "run", "-q", "again @src/app.py")
    assert quiet.returncode == 0 and "📎" not in quiet.stderr
    body = model_server.requests[0]
    blocks = body["messages"][-1]["content"]
    assert blocks[0] == {"type": "text", "text": "what does @src/app.py return?"}
    assert blocks[1]["type"] == "text" and "alpha-7731" in blocks[1]["text"]


def test_a_large_file_is_cut_at_the_limit_on_a_line_end(project, make_app):
    (project / "big.txt").write_text("".join(f"line {n:05d}\n" for n in range(2000)))  # 22,000 bytes
    (part,) = mention_parts("see @big.txt", project, max_bytes=1000)
    data = part["data"]
    assert data["truncated"] is True and data["bytes"] == 22000
    assert len(data["text"].encode()) <= 1000 and data["text"].endswith("\n")
    assert data["text"].splitlines()[-1].startswith("line ")


def test_mention_syntax():
    assert list(find_mentions('@a.py, (@b/c.txt) x@y.org "@q" @"s p.md" end @d/')) == ["a.py", "b/c.txt)", "s p.md", "d/"]  # punctuation is dropped when the path is looked up
    assert list(find_mentions("no mentions: user@host, a@@b")) == []


def test_paths_outside_the_workdir_and_symlinks_out_of_it_stay_text(project, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("private\n")
    (project / "link.txt").symlink_to(outside)
    assert mention_parts(f"@{outside} @../outside.txt @link.txt", project) == []


def test_completion_of_mentions(project):
    names = [shown for _, shown in complete_mention(project, "src/a")]
    assert names == ["app.py"]
    assert complete_mention(project, "no")[0] == ('@"notes dir/"', "notes dir/")
    everything = [shown for _, shown in complete_mention(project, "")]
    assert "src/" in everything and "secret.env" not in everything and "build/" not in everything
    assert ".gitignore" not in everything and ".gitignore" in [s for _, s in complete_mention(project, ".")]
    assert complete_mention(project, "../") == []


def test_goal_objective_mentions_are_attached(project, pando_env, model_server):
    write_model_config(project, model_server.base_url)
    model_server.script(Reply.text("It returns alpha-7731.\n\nGOAL_STATUS: completed\nPROGRESS: read src/app.py"))
    result = run_cli(project, pando_env, "goal", "-f", "json", "say what @src/app.py returns")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["status"] == "completed"
    sent = user_content(model_server.requests[0])
    assert '<file path="src/app.py">' in sent and "alpha-7731" in sent


def test_stream_json_reports_what_was_attached(project, pando_env, model_server):
    write_model_config(project, model_server.base_url)
    model_server.script(Reply.text("ok"))
    result = run_cli(project, pando_env, "run", "-f", "stream-json", "read @src/app.py and @blob.bin")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    (attached,) = [e for e in events if e["type"] == "attached"]
    size = (project / "src" / "app.py").stat().st_size
    assert attached["files"] == [
        {"type": "file", "path": "src/app.py", "kind": "file", "bytes": size, "truncated": False},
        {"type": "file", "path": "blob.bin", "kind": "skipped", "reason": f"binary file, {(project / 'blob.bin').stat().st_size} bytes"},
    ]


def test_compaction_transcript_keeps_the_attached_files(project):
    from pando_core.agent.compaction import transcript

    parts = [{"type": "text", "data": {"text": "see @src/app.py"}}, *mention_parts("see @src/app.py", project)]
    parts.append({"type": "image", "data": {"path": "shot.png", "mime_type": "image/png", "data": "AAAA"}})
    text = transcript([{"role": "user", "parts": parts}])
    assert '<file path="src/app.py">' in text and "alpha-7731" in text and "[image shot.png]" in text
    assert "AAAA" not in text


class _Enricher:
    from pando_core import hookimpl

    @hookimpl
    def pando_enrich_context(self, app, session_id, prompt):
        return "ENRICHED by a plugin"


def test_mentions_with_a_context_plugin_and_images_given_by_the_caller(project, make_app, model_server):
    import asyncio

    from pando_core.agent.attachments import image_part
    from tests.test_images import tiny_png

    (project / "pic.gif").write_bytes(b"GIF89a" + b"\x00" * 20)
    (project / "shot.png").write_bytes(tiny_png())
    app = make_app(
        extra_plugins={"enricher": _Enricher()},
        model_server=model_server,
        config='\n[providers.scripted.models.test-model]\nimages = true\n',
    )
    model_server.script(Reply.text("ok"))
    session = app.sessions.create(title="t")
    given = [image_part(project / "shot.png", shown="shot.png")]
    result = asyncio.run(app.coder_agent.run(session["id"], "look at @src/app.py and @pic.gif", attachments=given))
    assert result.status == "success", result.error
    content = model_server.requests[0]["messages"][-1]["content"]
    texts = "\n".join(c["text"] for c in content if c["type"] == "text")
    assert "ENRICHED by a plugin" in texts and "alpha-7731" in texts
    urls = [c["image_url"]["url"] for c in content if c["type"] == "image_url"]
    assert [u.split(";", 1)[0] for u in urls] == ["data:image/gif", "data:image/png"]  # mentioned, then given


def test_the_completer_replaces_the_typed_mention(project):
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    from pando_core.frontends.mention_completion import mention_completer

    completer = mention_completer(project)

    def complete(text):
        return [(c.text, c.start_position) for c in completer.get_completions(Document(text), CompleteEvent())]

    assert complete("read @src/a") == [("@src/app.py", -len("@src/a"))]
    assert complete('read @"notes') == [('@"notes dir/"', -len('@"notes'))]
    assert complete('read @"notes dir/"') == [('@"notes dir/meeting notes.md"', -len('@"notes dir/"'))]
    assert complete("mail bob@src") == [] and complete("@src/app.py and more") == []
