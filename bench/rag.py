"""pando-rag benchmark: import throughput, hybrid query latency, retrieval quality (one run, ratios).

    python bench/rag.py [--json] [--rounds 3] [--queries 300]

- import: chunks/s of ``kb.sync_directory`` over a real markdown corpus (the Node.js API docs that
  Debian's nodejs package installs), against the bare embedder + chroma ``add`` of the same chunks;
- latency: hybrid ``kb.search`` p50/p99 with at least 10,000 chunks stored, against the vector leg
  alone (one chroma query) in the same store;
- quality: recall@5 of hybrid, vector-only and keyword-only on bench/rag_eval/queries.json.
Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

CORPUS = Path("/usr/share/doc/nodejs/api")
QUERIES = Path(__file__).with_name("rag_eval") / "queries.json"
TARGET_CHUNKS = 10_000


def _engine(data_dir: Path, kb_path: Path, embedder, **values):  # noqa: ANN001, ANN202
    from pando_rag.config import RagConfig
    from pando_rag.engine import RagEngine

    config = RagConfig.from_dict({"kb_path": str(kb_path), **values}, workdir=data_dir)
    return RagEngine(config, data_dir / "rag", embedder=embedder)


def _copy_corpus(target: Path, copies: int = 1) -> None:
    for n in range(copies):
        folder = target / f"copy{n}"
        folder.mkdir(parents=True)
        for path in sorted(CORPUS.glob("*.md")):
            shutil.copy(path, folder / path.name)


def bench_import(work: Path, embedder, rounds: int) -> dict:  # noqa: ANN001
    import chromadb
    from chromadb.config import Settings
    from pando_rag.chunking import chunk_text

    corpus = work / "corpus"
    _copy_corpus(corpus)
    texts = [chunk for path in sorted(corpus.rglob("*.md")) for chunk in chunk_text(path.read_text(encoding="utf-8"), 800, 100)]
    ours, bare = [], []
    def run_ours(r: int) -> None:
        engine = _engine(work / f"import{r}", work / "kb", embedder)
        started = time.perf_counter()
        stats = engine.kb.sync_directory(corpus)
        ours.append(len(texts) / (time.perf_counter() - started))
        engine.close()
        assert stats["added"] > 0 and not stats["skipped"], stats

    def run_bare(r: int) -> None:
        client = chromadb.PersistentClient(path=str(work / f"bare{r}"), settings=Settings(anonymized_telemetry=False))
        collection = client.get_or_create_collection("bare_chunks", embedding_function=None, configuration={"hnsw": {"space": "cosine"}})
        started = time.perf_counter()
        for i in range(0, len(texts), 512):
            batch = texts[i : i + 512]
            collection.add(ids=[f"c{i + j}" for j in range(len(batch))], embeddings=embedder.embed_documents(batch).tolist(), documents=batch)
        bare.append(len(texts) / (time.perf_counter() - started))

    for r in range(rounds):  # alternate which goes first, so warm caches favour neither
        first, second = (run_ours, run_bare) if r % 2 == 0 else (run_bare, run_ours)
        first(r)
        second(r)
    ours_median, bare_median = statistics.median(ours), statistics.median(bare)
    return {"chunks": len(texts), "import_chunks_per_s": round(ours_median), "bare_chunks_per_s": round(bare_median), "ratio": round(ours_median / bare_median, 3)}


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def bench_latency(work: Path, embedder, queries: list[str], count: int) -> dict:  # noqa: ANN001
    corpus = work / "big"
    copies = 1
    engine = _engine(work / "latency", work / "kb", embedder, chunk_size=400, chunk_overlap=50)
    _copy_corpus(corpus, copies)
    engine.kb.sync_directory(corpus)
    while engine.counts()["kb"]["rows"] < TARGET_CHUNKS:
        copies += 1
        _copy_corpus(work / f"more{copies}", 1)
        engine.kb.sync_directory(work / f"more{copies}")
    chunks = engine.counts()["kb"]["rows"]
    for q in queries[:10]:  # warm up
        engine.kb.search(q, 5)
    hybrid, vector = [], []
    for i in range(count):
        q = queries[i % len(queries)]
        started = time.perf_counter()
        engine.kb.search(q, 5)
        hybrid.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        engine.vectors.query("kb", embedder.embed_query(q).tolist(), 5)
        vector.append((time.perf_counter() - started) * 1000)
    engine.close()
    p50, base = statistics.median(hybrid), statistics.median(vector)
    return {
        "chunks": chunks,
        "hybrid_p50_ms": round(p50, 2),
        "hybrid_p99_ms": round(_percentile(hybrid, 99), 2),
        "vector_only_p50_ms": round(base, 2),
        "ratio_p50": round(p50 / base, 2),
    }


def bench_recall(work: Path, embedder, evaluation: list[dict]) -> dict:  # noqa: ANN001
    engine = _engine(work / "recall", work / "kb", embedder)
    engine.kb.sync_directory(CORPUS)
    out = {}
    for legs in ("hybrid", "vector", "keyword"):
        found = 0
        for item in evaluation:
            files = {hit["file_path"] for hit in engine.kb.search(item["q"], 5, legs=legs)}
            found += item["file"] in files
        out[f"recall@5_{legs}"] = round(found / len(evaluation), 3)
    engine.close()
    out["queries"] = len(evaluation)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--rounds", type=int, default=3, help="import rounds (medians)")
    parser.add_argument("--queries", type=int, default=300, help="timed hybrid queries")
    args = parser.parse_args()
    if not CORPUS.is_dir():
        print(f"error: the corpus {CORPUS} is missing (apt-get install nodejs)", file=sys.stderr)
        return 1
    from pando_rag.embedders import WordLlamaEmbedder

    embedder = WordLlamaEmbedder()
    evaluation = json.loads(QUERIES.read_text())
    with tempfile.TemporaryDirectory(prefix="pando-rag-bench-") as tmp:
        work = Path(tmp)
        results = {
            "embedder": embedder.describe(),
            "import": bench_import(work / "i", embedder, args.rounds),
            "latency": bench_latency(work / "l", embedder, [e["q"] for e in evaluation], args.queries),
            "quality": bench_recall(work / "q", embedder, evaluation),
        }
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    imp, lat, qual = results["import"], results["latency"], results["quality"]
    print(f"import    {imp['chunks']} chunks: {imp['import_chunks_per_s']} chunks/s vs bare embed+add {imp['bare_chunks_per_s']} chunks/s, ratio {imp['ratio']} (target >= 0.8)")
    print(f"latency   {lat['chunks']} chunks: hybrid p50 {lat['hybrid_p50_ms']} ms, p99 {lat['hybrid_p99_ms']} ms; vector-only p50 {lat['vector_only_p50_ms']} ms (ratio {lat['ratio_p50']}; target p50 <= 25 ms)")
    print(f"quality   {qual['queries']} queries: recall@5 hybrid {qual['recall@5_hybrid']}, vector {qual['recall@5_vector']}, keyword {qual['recall@5_keyword']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
