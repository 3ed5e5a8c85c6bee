"""Events and session transcripts: upserted by session id, filtered by subject and time."""

import time

import pytest
from pando_rag.memory import SessionDebouncer, transcript

from pando_core.errors import ValidationError


def _messages(*texts):
    return [{"role": "user" if i % 2 == 0 else "assistant", "parts": [{"type": "text", "data": {"text": t}}]} for i, t in enumerate(texts)]


def test_a_session_is_one_event_however_often_it_is_indexed(make_engine, wordllama_embedder):
    engine = make_engine(embedder=wordllama_embedder)
    session = {"id": "s1", "title": "Fix the pool"}
    for n in range(1, 5):
        engine.events.index_session(session, _messages(*["the connection pool leaks sockets"] * n))
    assert engine.events.count("session") == 1
    assert engine.counts()["events"]["vectors"] == 1
    [event] = engine.events.list("session")
    assert event["id"] == "session-s1" and event["metadata"]["message_count"] == 4
    assert engine.events.search("socket leak in the pool", subject="session")[0]["id"] == "session-s1"


def test_subject_and_time_filters_apply_to_both_legs(make_engine, hashing_embedder):
    engine = make_engine(embedder=hashing_embedder)
    now = int(time.time())
    engine.events.save("deploy", "release rollout went fine", event_at=now - 10 * 86400)
    engine.events.save("deploy", "rollout paused for the release", event_at=now - 3600)
    engine.events.save("incident", "release rollout broke login", event_at=now - 60)
    recent = engine.events.search("release rollout", subject="deploy", last_days=2)
    assert [e["content"] for e in recent] == ["rollout paused for the release"]
    dated = engine.events.search("release", from_date="2000-01-01", to_date=now - 5 * 86400)
    assert [e["content"] for e in dated] == ["release rollout went fine"]
    newest = engine.events.search(None, limit=2)
    assert [e["subject"] for e in newest] == ["incident", "deploy"] and newest[0]["score"] == 1.0
    with pytest.raises(ValidationError):
        engine.events.search("x", from_date="yesterday")
    with pytest.raises(ValidationError):
        engine.events.save("", "text")


def test_transcript_has_roles_tools_and_results():
    text = transcript(
        {"title": "T"},
        [
            {"role": "user", "parts": [{"type": "text", "data": {"text": "list files"}}]},
            {"role": "assistant", "parts": [{"type": "tool_call", "data": {"name": "ls", "input": {"path": "."}}}]},
            {"role": "tool", "parts": [{"type": "tool_result", "data": {"name": "ls", "content": "a.py"}}]},
        ],
    )
    assert text == 'Session title: T\n\nUSER:\nlist files\n\nASSISTANT:\nls\ninput: {"path": "."}\n\nTOOL:\nls\nresult: a.py'
    assert transcript({"title": "T"}, []) is None


def test_debouncer_waits_for_quiet():
    debouncer = SessionDebouncer(0.2)
    debouncer.touch("a")
    assert debouncer.pop_due() == []
    deadline = time.monotonic() + 5
    due = []
    while not due and time.monotonic() < deadline:
        debouncer.wakeup.wait(debouncer.next_in() or 0.05)
        due = debouncer.pop_due()
    assert due == ["a"] and debouncer.pending() == 0
    debouncer.touch("b", 0.0)
    assert debouncer.pop_due() == ["b"]
