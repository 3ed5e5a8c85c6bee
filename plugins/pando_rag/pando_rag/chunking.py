"""Sentence-aware chunking with overlap that always moves forward.

A text no longer than ``size`` is one chunk.  Otherwise a window of ``size`` characters slides
over it; inside the window the chunk ends at the last sentence end (``.``, ``!`` or ``?`` followed
by whitespace, or a blank line — paragraphs are sentences in markdown) that lies outside a
double-quoted span, when that cut keeps more than ``overlap`` characters; else the window is cut
hard.  The next window starts ``overlap`` characters before the cut, and always after the previous
start, so a text of any shape ends in a bounded number of chunks.
"""

from __future__ import annotations

import re

_ENDS = ".!?"
_CANDIDATE = re.compile(r"[.!?]|\n(?=\n)")


def _last_sentence_end(text: str, start: int, end: int) -> int | None:
    """The index just after the last sentence end in ``text[start:end]``, or None."""
    best = None
    quotes = 0
    previous = start
    # apostrophes ("don't") would toggle a single-quote state wrongly: only double quotes count
    for match in _CANDIDATE.finditer(text, start, end):
        i = match.start()
        quotes += text.count('"', previous, i)
        previous = i
        if quotes % 2:
            continue  # inside a quotation
        if text[i] in _ENDS:
            following = text[i + 1] if i + 1 < len(text) else ""
            if following and not following.isspace():
                continue
        best = i + 1
    return best


def chunk_text(text: str, size: int = 800, overlap: int = 100) -> list[str]:
    """``text`` cut into chunks of at most ``size`` characters (blank chunks dropped)."""
    if size <= 0:
        raise ValueError("chunk size must be positive")
    if overlap >= size:
        overlap = size // 2
    if len(text) <= size:
        return [text] if text.strip() else []
    chunks: list[str] = []
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end == len(text):
            cut = end
        else:
            sentence_end = _last_sentence_end(text, start, end)
            cut = sentence_end if sentence_end is not None and sentence_end - start > overlap else end
        piece = text[start:cut].strip()
        if piece:
            chunks.append(piece)
        if cut >= len(text):
            break
        start = max(cut - overlap, start + 1)
        # begin the next chunk at a word boundary when one is near (no half words at the front)
        space = text.find(" ", start, min(cut, start + 30))
        if space != -1 and space + 1 < cut:
            start = space + 1
    return chunks
