"""The knowledge-base watcher on a real folder with real watchfiles (inotify)."""

import os
import threading
import time

from pando_rag.watcher import watch_folder

from pando_core.errors import NotFoundError


def _until(check, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except NotFoundError:
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_watcher_adds_updates_and_deletes(make_engine, hashing_embedder, tmp_path):
    root = tmp_path / "kb"
    root.mkdir()
    engine = make_engine(embedder=hashing_embedder, kb_path=str(root))
    stop = threading.Event()
    ticks, synced = [], []
    thread = threading.Thread(target=watch_folder, args=(engine.kb, root, stop, lambda: ticks.append(1), lambda p, o: synced.append((os.path.basename(p), o))))
    thread.start()
    try:
        _until(lambda: ticks, "the first tick")  # the watcher is running
        (root / "sub").mkdir()
        note = root / "sub" / "note.md"
        note.write_text("first words", encoding="utf-8")
        (root / "ignored.txt").write_text("not markdown", encoding="utf-8")
        _until(lambda: engine.kb.get("sub/note.md")["content"] == "first words", f"the new file {synced}")
        note.write_text("second words", encoding="utf-8")
        os.utime(note, (time.time() + 5, time.time() + 5))
        _until(lambda: engine.kb.get("sub/note.md")["content"] == "second words", "the change")
        note.unlink()
        _until(lambda: engine.kb.count() == 0, "the deletion")
        outside = tmp_path / "outside.md"
        outside.write_text("secret", encoding="utf-8")
        (root / "link.md").symlink_to(outside)
        _until(lambda: ("link.md", "skipped: a symlink that leaves the folder") in synced, "the refused symlink")
        assert engine.kb.count() == 0
        assert [name for name, _ in synced if name == "ignored.txt"] == []
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()


def test_watcher_stops_promptly(make_engine, hashing_embedder, tmp_path):
    root = tmp_path / "kb"
    root.mkdir()
    engine = make_engine(embedder=hashing_embedder, kb_path=str(root))
    stop = threading.Event()
    thread = threading.Thread(target=watch_folder, args=(engine.kb, root, stop))
    thread.start()
    started = time.monotonic()
    stop.set()
    thread.join(10)
    assert not thread.is_alive() and time.monotonic() - started < 5
