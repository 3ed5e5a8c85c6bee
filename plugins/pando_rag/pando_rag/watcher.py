"""The knowledge-base watcher: a folder's markdown changes, re-imported as they happen.

``watch_folder`` blocks until ``stop`` is set: watchfiles reports batches of changes (debounced
250 ms); each changed ``.md`` file is re-imported with ``KnowledgeBase.sync_file`` (unchanged
mtime: nothing; gone: deleted), and ``on_tick`` runs after each batch and at least every 200 ms,
so the caller's other periodic work (quiet sessions to index) shares the thread.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from pando_core.errors import one_line

log = logging.getLogger("pando.rag")


def _wanted(change, path: str) -> bool:  # noqa: ANN001
    # markdown files, and new folders: files written into a folder before its watch was added
    # send no event of their own, so a new folder is scanned
    from watchfiles import Change

    return path.lower().endswith(".md") or (change == Change.added and os.path.isdir(path))


def watch_folder(
    kb,  # noqa: ANN001 - a KnowledgeBase
    root: Path,
    stop: threading.Event,
    on_tick: Callable[[], None] = lambda: None,
    on_synced: Callable[[str, str], None] = lambda path, outcome: None,
) -> None:
    from watchfiles import watch

    root = root.resolve()
    for changes in watch(root, stop_event=stop, debounce=250, step=50, rust_timeout=200, yield_on_timeout=True, watch_filter=_wanted):
        paths: list[Path] = []
        for _, raw in sorted(changes, key=lambda c: c[1]):
            path = Path(raw)
            paths.extend(kb.markdown_files(path) if path.is_dir() else [path])
        for path in dict.fromkeys(paths):
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                on_synced(str(path), "skipped: a symlink that leaves the folder")
                continue
            try:
                outcome = kb.sync_file(root, path)
            except Exception as exc:  # noqa: BLE001 - one file's failure does not stop the watcher
                log.warning("rag: %s: %s", path, one_line(exc))
                outcome = f"failed: {one_line(exc)}"
            if outcome != "unchanged":
                on_synced(str(path), outcome)
        on_tick()
