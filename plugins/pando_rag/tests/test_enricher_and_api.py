"""The enricher's cosine threshold and the rag.* handlers over a real engine."""

import pytest
from pando_rag.api import methods
from pando_rag.enricher import build_context

from pando_core.errors import NotFoundError, ValidationError


@pytest.fixture
def engine(make_engine, wordllama_embedder, tmp_path):
    e = make_engine(embedder=wordllama_embedder, kb_path=str(tmp_path / "kb"), min_score=0.45)
    e.kb.add("pool.md", "Database connection pooling: reuse open database connections instead of reconnecting.")
    e.kb.add("cook.md", "Slow-cooked tomato sauce with garlic and basil.")
    return e


def test_only_hits_passing_min_score_are_added(engine):
    block = build_context(engine, "reuse database connections with a pool")
    assert block.startswith('<context source="remembrances">') and block.endswith("</context>")
    assert "pool.md" in block and "cook.md" not in block and "## Past Session Events" not in block
    assert build_context(engine, "quantum chromodynamics of gluons") is None


class _EngineHolder:
    """Hands the handlers an engine the way RagService.ready_engine does."""

    def __init__(self, engine):
        self.engine, self.watching, self.watch_error, self.last_sync = engine, None, None, None

    def ready_engine(self):
        return self.engine


def test_handlers_check_parameters_and_keep_error_kinds(engine):
    table = methods(lambda: _EngineHolder(engine))
    assert len([name for name in table if name.startswith("rag.code_")]) == 10
    assert table["rag.kb_search_documents"]({"query": "database pool"})[0]["file_path"] == "pool.md"
    with pytest.raises(ValidationError, match="query is required"):
        table["rag.kb_search_documents"]({})
    with pytest.raises(NotFoundError):
        table["rag.kb_get_document"]({"file_path": "missing.md"})
    with pytest.raises(ValidationError):
        table["rag.hybrid_search_remembrances"]({"query": "x", "include_kb": "yes"})
    status = table["rag.status"]({})
    assert status["collections"]["kb"]["rows"] == status["collections"]["kb"]["vectors"] == 2
    merged = table["rag.hybrid_search_remembrances"]({"query": "database pool", "limit": 3})
    assert merged[0]["source"] == "kb" and merged[0]["rank"] == 1
