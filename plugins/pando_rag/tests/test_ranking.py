"""Exact ranking with the deterministic embedder; RRF arithmetic; the keyword leg's query building."""

import pytest
from pando_rag.catalog import match_expression
from pando_rag.search import rrf


def test_rrf_sums_reciprocal_ranks_with_k_60():
    fused = rrf([["a", "b", "c"], ["c", "a"]])
    assert [i for i, _ in fused] == ["a", "c", "b"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[1][1] == pytest.approx(1 / 63 + 1 / 61)


def test_match_expression_quotes_words_and_drops_syntax():
    assert match_expression('pool OR "x" col:NEAR(a b)') == '"pool" OR "or" OR "x" OR "col" OR "near" OR "a" OR "b"'
    assert match_expression("!!! ---") is None
    assert match_expression("w " * 1000).count('"') == 2  # one distinct word


def test_hybrid_beats_each_leg_on_a_constructed_case(make_engine, hashing_embedder):
    engine = make_engine(embedder=hashing_embedder)
    engine.kb.add("a.md", "alpha beta gamma")
    engine.kb.add("b.md", "delta epsilon zeta")
    engine.kb.add("c.md", "alpha delta theta")
    hits = engine.kb.search("alpha delta", limit=3)
    assert hits[0]["file_path"] == "c.md"  # both words: first in both legs
    assert {h["file_path"] for h in hits} == {"a.md", "b.md", "c.md"}
    assert hits[0]["similarity"] == pytest.approx(2 / (2**0.5 * 3**0.5), rel=1e-3)
    assert hits[0]["score"] == pytest.approx(2 / 61, abs=1e-6)


def test_keyword_only_hits_get_their_cosine(make_engine, hashing_embedder):
    engine = make_engine(embedder=hashing_embedder)
    engine.kb.add("x.md", "unique marker words")
    hit = engine.kb.search("marker", limit=1, legs="keyword")[0]
    assert hit["similarity"] == pytest.approx(1 / 3**0.5, rel=1e-3)
