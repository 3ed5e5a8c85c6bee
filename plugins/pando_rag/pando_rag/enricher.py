"""The context enricher: remembrances that match the user's text, appended to the prompt.

Each hit must have a cosine similarity of at least ``[rag] min_score`` with the prompt — the fused
RRF score is only an order (at most 2/61), so comparing it with a threshold would let nothing
through.  Sections with no passing hit are left out; with none at all nothing is appended.
"""

from __future__ import annotations

import time

from .engine import MAX_QUERY_CHARS


def build_context(engine, prompt: str) -> str | None:  # noqa: ANN001
    config = engine.config
    query = prompt.strip()[:MAX_QUERY_CHARS]
    if not query:
        return None
    threshold = config.min_score
    sections = []

    if config.enrich_kb_results > 0:
        hits = [h for h in engine.kb.search(query, config.enrich_kb_results) if h["similarity"] >= threshold]
        if hits:
            body = "\n\n".join(f"### [{i}] {h['file_path']} (similarity: {h['similarity']:.2f})\n{h['content']}" for i, h in enumerate(hits, 1))
            sections.append("## Knowledge Base\n\n" + body)

    if config.enrich_events_results > 0:
        since = int(time.time() - config.enrich_events_last_days * 86400) if config.enrich_events_last_days > 0 else None
        hits = engine.events.search(query, subject=config.enrich_events_subject or None, from_date=since, limit=config.enrich_events_results)
        hits = [h for h in hits if h["similarity"] >= threshold]
        if hits:
            body = "\n\n".join(
                f"### [{i}] [{h['event_at']}] {h['subject']} (similarity: {h['similarity']:.2f})\n{h['content'][:600]}" for i, h in enumerate(hits, 1)
            )
            sections.append("## Past Session Events\n\n" + body)

    if config.enrich_code_project and config.enrich_code_results > 0:
        try:
            hits = engine.code.hybrid_search(config.enrich_code_project, query, config.enrich_code_results)
        except Exception:  # noqa: BLE001 - a missing project must not break the user's turn
            hits = []
        hits = [h for h in hits if h["similarity"] >= threshold]
        if hits:
            parts = []
            for i, h in enumerate(hits, 1):
                doc = f"{h['doc_string']}\n" if h["doc_string"] else ""
                parts.append(
                    f"### [{i}] {h['symbol_type']} `{h['name_path']}` — {h['file_path']}:{h['start_line']} (similarity: {h['similarity']:.2f})\n"
                    f"{doc}```{h['language']}\n{h['source_code'][:400]}\n```"
                )
            sections.append("## Code Index\n\n" + "\n\n".join(parts))

    if not sections:
        return None
    return '<context source="remembrances">\n' + "\n\n".join(sections) + "\n</context>"

