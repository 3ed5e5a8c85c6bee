


def test_kb_roundtrip_with_wordllama(make_engine, wordllama_embedder, tmp_path):
    engine = make_engine(embedder=wordllama_embedder)
    engine.kb.add("pool.md", "The database connection pool keeps sockets open. Reuse them for speed.")
    engine.kb.add("cats.md", "Cats sleep most of the day and purr when content.")
    hits = engine.kb.search("reusing database connections", limit=2)
    assert [h["file_path"] for h in hits][0] == "pool.md"
    assert hits[0]["similarity"] > hits[-1]["similarity"]


def test_code_index(make_engine, tmp_path, hashing_embedder):
    src = tmp_path / "proj"
    src.mkdir()
    (src / "a.py").write_text('class Pool:\n    """A pool."""\n    def acquire(self, timeout: float) -> int:\n        """Take one."""\n        return 1\n')
    engine = make_engine(embedder=hashing_embedder)
    job = engine.code.index_project(str(src), "proj")
    import time
    deadline = time.time() + 20
    while engine.code.status(job["job_id"])["status"] == "running" and time.time() < deadline:
        time.sleep(0.05)
    status = engine.code.status(job["job_id"])
    assert status["status"] == "completed", status
    found = engine.code.find_symbol("proj", "Pool/acquire", include_body=True)
    assert found[0]["signature"] == "def acquire(self, timeout: float) -> int"
    assert found[0]["doc_string"] == "Take one."
