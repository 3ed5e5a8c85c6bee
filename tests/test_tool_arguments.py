"""Malformed tool-call arguments: repaired by json-repair, type-checked, refused when unreadable."""

import pytest

from pando_core.agent.tools.arguments import ArgumentsError, repair_arguments

SCHEMA = {"type": "object", "properties": {"flag": {"type": "boolean"}, "n": {"type": "integer"}, "q": {"type": "string"}}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [('{"q": "x"}', {"q": "x"}), ('{"q": "x",}', {"q": "x"}), ("{'q': 'x'}", {"q": "x"}),
     ('```json\n{"n": 2}\n```', {"n": 2}), ('{"q": "cut sho', {"q": "cut sho"}), ("", {}), (None, {}),
     ({"already": "a dict"}, {"already": "a dict"})],
)
def test_repairs(text, expected):
    assert repair_arguments(text, SCHEMA) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("nonsense", "expected a JSON object"), ("[1, 2", "expected a JSON object"),
    ('{"flag": tru', "flag should be boolean, got 'tru'"),
])
def test_refusals_name_the_problem(text, message):
    with pytest.raises(ArgumentsError) as info:
        repair_arguments(text, SCHEMA)
    assert message in str(info.value)


def test_valid_json_is_not_type_checked_against_the_schema():
    # a well-formed call goes to the server as sent: the server's own validation answers it
    assert repair_arguments('{"n": "two"}', SCHEMA) == {"n": "two"}


def test_the_agent_loop_repairs_a_tool_call_s_malformed_json(make_app, model_server):
    import asyncio

    from pando_core.testing.model_server import Reply

    app = make_app(model_server=model_server)
    (app.workdir / "notes.txt").write_text("hello\n", encoding="utf-8")
    model_server.script(
        Reply.from_dict({"tool_calls": [{"name": "view", "arguments": "{'file_path': 'notes.txt',}"}]}), Reply.text("seen")
    )
    session = app.sessions.create(title="t")
    result = asyncio.run(app.coder_agent.run(session["id"], "read it"))
    assert result.status == "success" and not result.tool_calls[0]["is_error"]
    assert "hello" in model_server.requests[1]["messages"][-1]["content"]
