"""The judge's answer parsed leniently, and the transcript it is shown."""

from __future__ import annotations

import json

from pando_evaluator.judge import TOOL_RESULT_CHARS, parse_verdict, transcript, user_texts


def test_json_inside_prose_is_found(ev):
    verdict = parse_verdict(ev.judge_answer(rule="Prefer small diffs.", confidence=0.8, task_type="refactor"))
    assert verdict is not None
    assert verdict.rule == "Prefer small diffs."
    assert verdict.confidence == 0.8
    assert verdict.task_type == "refactor"
    assert verdict.key_points == ["answered directly"]


def test_invalid_answers_give_no_verdict():
    assert parse_verdict("I think it went well.") is None
    assert parse_verdict("{not json at all}") is None
    assert parse_verdict("[1, 2]") is None
    assert parse_verdict("") is None


def test_unknown_task_type_and_odd_confidence_are_tamed():
    verdict = parse_verdict('{"new_skill": "x", "task_type": "poetry", "confidence": "high"}')
    assert verdict.task_type == "general" and verdict.confidence == 0.0
    assert parse_verdict('{"confidence": 7}').confidence == 1.0


def _message(role, *parts):
    return {"role": role, "parts": json.dumps([{"type": t, "data": d} for t, d in parts])}


def test_transcript_marks_tool_calls_and_cuts_results():
    messages = [
        _message("user", ("text", {"text": "list the files"})),
        _message("assistant", ("text", {"text": "Looking."}), ("tool_call", {"id": "c1", "name": "ls", "input": "{}"})),
        _message("tool", ("tool_result", {"tool_call_id": "c1", "name": "ls", "content": "x" * 2000})),
        _message("assistant", ("reasoning", {"thinking": "secret"}), ("text", {"text": "Done."})),
    ]
    text = transcript(messages)
    lines = text.splitlines()
    assert lines[0] == "USER: list the files"
    assert "[tool_call: ls]" in lines
    result_line = next(line for line in lines if line.startswith("[tool_result: ls]"))
    assert len(result_line) == len("[tool_result: ls] ") + TOOL_RESULT_CHARS + 1
    assert "secret" not in text and lines[-1] == "ASSISTANT: Done."
    assert user_texts(messages) == ["list the files"]


def test_a_long_transcript_keeps_the_first_request_and_the_latest_turns():
    messages = [_message("user", ("text", {"text": "the task"}))]
    messages += [_message("assistant", ("text", {"text": f"step {i} " + "y" * 100})) for i in range(500)]
    text = transcript(messages, limit=5000)
    assert len(text) <= 5000
    assert text.startswith("USER: the task")
    assert "earlier lines left out" in text
    assert text.rstrip().splitlines()[-1].startswith("ASSISTANT: step 499")
