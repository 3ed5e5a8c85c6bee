"""Changing the embedder: new collections (no mixed dimensions), flagged, filled by reindex."""


def test_reindex_after_an_embedder_change(make_engine, hashing_embedder, wordllama_embedder, tmp_path):
    data = tmp_path / "rag"
    first = make_engine(embedder=hashing_embedder, data_dir=data)
    first.kb.add("pool.md", "Connection pools reuse database sockets.")
    first.events.save("note", "remember the pool size")
    assert first.needs_reindex() is False
    first.close()

    second = make_engine(embedder=wordllama_embedder, data_dir=data)
    counts = second.counts()
    assert counts["kb"]["collection"] != first.vectors.name("kb")
    assert (counts["kb"]["rows"], counts["kb"]["vectors"]) == (1, 0)
    assert second.needs_reindex() is True
    assert second.kb.search("database sockets")[0]["file_path"] == "pool.md"  # the keyword leg still answers
    assert second.reindex() == {"kb": 1, "events": 1, "code": 0}
    assert second.needs_reindex() is False
    counts = second.counts()
    assert counts["kb"]["vectors"] == 1 and counts["events"]["vectors"] == 1
    assert second.kb.search("reusing DB connections", legs="vector")[0]["file_path"] == "pool.md"


def test_reconcile_removes_vectors_without_a_catalog_row(make_engine, hashing_embedder):
    engine = make_engine(embedder=hashing_embedder)
    engine.kb.add("a.md", "kept words")
    # what a kill between chroma's write and the catalog's commit leaves behind
    engine.vectors.upsert("kb", ["ghost.md#0"], [hashing_embedder.embed_query("ghost").tolist()], ["ghost"], [{"file_path": "ghost.md", "chunk_index": 0}])
    assert engine.counts()["kb"]["vectors"] == 2
    assert engine.reconcile() == {"kb": 1}
    assert engine.counts()["kb"]["vectors"] == 1 and engine.reconcile() == {}
