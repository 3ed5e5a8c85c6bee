"""The knowledge base on real files, real chromadb and the real offline embedder."""

import os

import pytest

from pando_core.errors import NotFoundError, ValidationError


@pytest.fixture
def kb_engine(make_engine, wordllama_embedder, tmp_path):
    return make_engine(embedder=wordllama_embedder, kb_path=str(tmp_path / "kb"), kb_max_file_mb=1)


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_import_counts_mtime_skip_update_and_delete_missing(kb_engine, tmp_path):
    docs = tmp_path / "docs"
    _write(docs / "pool.md", "# Pools\n\nThe connection pool keeps database sockets open for reuse.")
    _write(docs / "sub" / "cats.MD", "Cats sleep most of the day.")
    _write(docs / "notes.txt", "not markdown")
    _write(docs / "empty.md", "   ")
    first = kb_engine.kb.sync_directory(docs)
    assert (first["scanned"], first["added"], first["unchanged"]) == (3, 2, 1)
    assert kb_engine.kb.sync_directory(docs)["unchanged"] == 3
    pool = docs / "pool.md"
    pool.write_text("# Pools\n\nPools now also limit idle connections.", encoding="utf-8")
    os.utime(pool, (pool.stat().st_atime, pool.stat().st_mtime + 5))
    (docs / "sub" / "cats.MD").unlink()
    again = kb_engine.kb.sync_directory(docs, delete_missing=True)
    assert (again["updated"], again["deleted"], again["unchanged"]) == (1, 1, 1)
    assert [d["file_path"] for d in kb_engine.kb.list()] == ["pool.md"]
    assert "idle connections" in kb_engine.kb.get("pool.md")["content"]
    assert kb_engine.counts()["kb"]["rows"] == kb_engine.counts()["kb"]["vectors"]


def test_bad_files_are_skipped_with_a_reason_and_nothing_half_written(kb_engine, tmp_path):
    docs = tmp_path / "docs"
    _write(docs / "good.md", "A good document about retries and backoff.")
    (docs / "binary.md").write_bytes(b"\x89PNG\x00\x00binary")
    (docs / "latin1.md").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    big = docs / "big.md"
    with big.open("w") as handle:  # 50 MB of markdown, over the 1 MB limit of this test's config
        line = "A sentence of a huge markdown file. " * 100 + "\n"
        for _ in range(50 * 1024 * 1024 // len(line) + 1):
            handle.write(line)
    outside = tmp_path / "secret.md"
    outside.write_text("outside the folder", encoding="utf-8")
    (docs / "escape.md").symlink_to(outside)
    stats = kb_engine.kb.sync_directory(docs)
    reasons = dict(line.split(": ", 1) for line in stats["skipped"])
    assert reasons["binary.md"] == "binary content"
    assert reasons["latin1.md"].startswith("not UTF-8")
    assert "over the [rag] kb_max_file_mb limit" in reasons["big.md"]
    assert reasons["escape.md"] == "a symlink that leaves the folder"
    assert stats["added"] == 1
    assert [d["file_path"] for d in kb_engine.kb.list()] == ["good.md"]
    assert kb_engine.kb.search("retries backoff")[0]["file_path"] == "good.md"


def test_mirror_writes_inside_the_folder_and_refuses_escapes(kb_engine, tmp_path):
    result = kb_engine.kb.add("notes/idea.md", "An idea worth keeping.", mirror=True)
    assert result["status"] == "added"
    assert (tmp_path / "kb" / "notes" / "idea.md").read_text() == "An idea worth keeping."
    for bad in ("../escape.md", "/etc/passwd", "a/../../b.md", ""):
        with pytest.raises(ValidationError):
            kb_engine.kb.add(bad, "x", mirror=True)
    assert not (tmp_path / "escape.md").exists()
    # a name without .md is stored under the name its mirrored file will be imported as
    assert kb_engine.kb.add("plain", "plain text", mirror=True)["file_path"] == "plain.md"
    assert kb_engine.kb.sync_directory(tmp_path / "kb")["unchanged"] == 2
    assert kb_engine.kb.delete("notes/idea.md", mirror=True)["deleted"] is True
    assert not (tmp_path / "kb" / "notes" / "idea.md").exists()
    assert kb_engine.kb.delete("notes/idea.md")["deleted"] is False
    with pytest.raises(NotFoundError):
        kb_engine.kb.get("notes/idea.md")


def test_query_of_100k_characters_is_refused_in_one_line(kb_engine):
    kb_engine.kb.add("a.md", "something")
    with pytest.raises(ValidationError, match="100,000 characters long"):
        kb_engine.kb.search("x" * 100_000)
    assert kb_engine.kb.search("something")[0]["file_path"] == "a.md"


def test_the_real_embedder_ranks_by_meaning(kb_engine):
    kb_engine.kb.add("pool.md", "Database connection pooling: reuse open connections instead of reconnecting.")
    kb_engine.kb.add("cook.md", "Slow-cooked tomato sauce with garlic and basil.")
    hits = kb_engine.kb.search("how do I reuse DB connections", limit=2)
    assert hits[0]["file_path"] == "pool.md"
    assert hits[0]["similarity"] > 0.3 > hits[1]["similarity"]
