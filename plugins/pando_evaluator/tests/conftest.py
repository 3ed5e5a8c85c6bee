from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from pando_core.testing.model_server import Reply

JUDGE_MARK = "Session transcript:"  # how the scripted server tells the judge's requests apart


def judge_answer(rule: str = "Run the tests after every edit.", confidence: float = 0.9, task_type: str = "code", prose: bool = True) -> str:
    verdict = {
        "reasoning": "The assistant did what was asked.",
        "key_points": ["answered directly"],
        "new_skill": rule,
        "task_type": task_type,
        "confidence": confidence,
    }
    body = json.dumps(verdict)
    return f"Here is my assessment of the session.\n{body}\nI hope this helps." if prose else body


def config_toml(**values) -> str:
    lines = ["[evaluator]"]
    for key, value in values.items():
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def evaluator_app(make_app, model_server) -> Callable:
    """evaluator_app(**evaluator_settings) -> an App with the evaluator, coder and judge on the scripted server."""

    def make(**settings):
        settings.setdefault("settle_seconds", 0)  # evaluate as soon as a session ends
        settings.setdefault("model", "scripted/test-model")  # the judge: the same scripted server
        return make_app(plugins=["evaluator"], model_server=model_server, config="\n" + config_toml(**settings))

    return make


def run_session(app, *prompts: str, title: str = "t") -> str:
    """A real session: each prompt is a turn of the coder agent against the scripted model server."""
    session = app.sessions.create(title=title)
    for prompt in prompts:
        asyncio.run(app.coder_agent.run(session["id"], prompt))
    return session["id"]


def set_judge(model_server, answer: str | Reply) -> None:
    model_server.clear()
    model_server.add_rule(contains=JUDGE_MARK, response=answer if isinstance(answer, Reply) else Reply.text(answer))
    model_server.set_default("echo")


def judge_requests(model_server) -> list[dict]:
    def last_user(body):
        for message in reversed(body.get("messages") or []):
            if message.get("role") == "user":
                content = message.get("content")
                return content if isinstance(content, str) else json.dumps(content)
        return ""

    return [body for body in model_server.requests if JUDGE_MARK in last_user(body)]


class Helpers:
    """The helpers above, for test modules (conftest is not importable under --import-mode=importlib)."""

    JUDGE_MARK = JUDGE_MARK
    judge_answer = staticmethod(judge_answer)
    config_toml = staticmethod(config_toml)
    run_session = staticmethod(run_session)
    set_judge = staticmethod(set_judge)
    judge_requests = staticmethod(judge_requests)


@pytest.fixture
def ev() -> type[Helpers]:
    return Helpers
