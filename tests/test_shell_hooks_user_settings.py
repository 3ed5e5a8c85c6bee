"""Hooks from the user's own Claude Code settings (~/.claude/settings.json), HOME set to a tmp dir."""

from __future__ import annotations

import json

from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config

from .test_shell_hooks import project, run_pando, script, user_text  # noqa: F401 - project is a fixture


def test_user_level_claude_settings_hooks_run_before_the_project_ones(project, model_server, tmp_path):  # noqa: F811
    workdir, env = project
    home = tmp_path / "user-home"
    (home / ".claude").mkdir(parents=True)
    env["HOME"] = str(home)
    user_hook = script(workdir, "user.sh", "cat >/dev/null\necho 'from the user settings'\n")
    project_hook = script(workdir, "proj.sh", "cat >/dev/null\necho 'from the project settings'\n")
    (home / ".claude" / "settings.json").write_text(json.dumps({"hooks": {"UserPromptSubmit": [{"hooks": [{"command": user_hook}]}]}}))
    (workdir / ".claude").mkdir()
    (workdir / ".claude" / "settings.json").write_text(json.dumps({"hooks": {"UserPromptSubmit": [{"hooks": [{"command": project_hook}]}]}}))
    write_model_config(workdir, model_server.base_url)
    model_server.script(Reply.text("ok"))

    result = run_pando(workdir, env, "run", "-f", "json", "go")

    assert result.returncode == 0, result.stderr
    text = user_text(model_server.requests[0])
    assert text.index("from the user settings") < text.index("from the project settings")
