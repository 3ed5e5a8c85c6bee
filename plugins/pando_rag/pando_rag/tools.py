"""The agent tools: the spec's 8 knowledge-base/event/hybrid tools and its 10 ``code_*`` tools.

Each tool sends its arguments to the primary as ``rag.<tool name>`` (so it works the same on a
secondary) and returns the JSON answer as text; an error is an error-flagged one-line result.
Searches and listings are ``read_only`` (never asked about); tools that add, delete or index are
asked about by the core before they run.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pando_core.agent.tools.base import ToolResult

_STR = {"type": "string"}
_INT = {"type": "integer", "minimum": 1}
_BOOL = {"type": "boolean"}
_STRS = {"type": "array", "items": {"type": "string"}}
_OBJ = {"type": "object"}
TOOL_TIMEOUT = 600.0


def _schema(required: list[str], **properties: Any) -> dict:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


# name: (read_only, description, parameters)
TOOL_SPECS: dict[str, tuple[bool, str, dict]] = {
    "kb_add_document": (False, "Add or update a markdown document in the knowledge base (also written to the knowledge-base folder).",
                        _schema(["file_path", "content"], file_path={**_STR, "description": "path relative to the knowledge-base folder"}, content=_STR, metadata=_OBJ)),
    "kb_import_path": (False, "Import a folder of markdown files into the knowledge base (unchanged files are skipped).",
                       _schema(["path"], path=_STR, delete_missing={**_BOOL, "description": "remove documents whose file is gone (default true)"})),
    "kb_search_documents": (True, "Search the knowledge base (semantic + keyword).", _schema(["query"], query=_STR, limit=_INT)),
    "kb_get_document": (True, "Read one knowledge-base document.", _schema(["file_path"], file_path=_STR)),
    "kb_delete_document": (False, "Delete a knowledge-base document (and its file in the folder).", _schema(["file_path"], file_path=_STR)),
    "save_event": (False, "Remember an event: a subject and a text, stamped with the time.", _schema(["subject", "content"], subject=_STR, content=_STR, metadata=_OBJ)),
    "search_events": (True, "Search remembered events and past sessions; no query lists the newest.",
                      _schema([], query=_STR, subject=_STR, last_hours={"type": "number"}, last_days={"type": "number"},
                              from_date={**_STR, "description": "ISO date or date-time"}, to_date={**_STR, "description": "ISO date or date-time"}, limit=_INT)),
    "hybrid_search_remembrances": (True, "Search the knowledge base, past sessions and indexed code at once.",
                                   _schema(["query"], query=_STR, limit=_INT, project_ids=_STRS, include_kb=_BOOL, include_sessions=_BOOL, include_code=_BOOL)),
    "code_index_project": (False, "Index a source tree's symbols (tree-sitter); returns a job id at once.",
                           _schema(["project_path"], project_path=_STR, project_name=_STR, languages=_STRS)),
    "code_index_status": (True, "Progress of a code-index job.", _schema(["job_id"], job_id=_STR)),
    "code_hybrid_search": (True, "Search a project's symbols by meaning and keywords.",
                           _schema(["project_id", "query"], project_id=_STR, query=_STR, limit=_INT, languages=_STRS, symbol_types=_STRS)),
    "code_find_symbol": (True, "Find symbols by name path (`Class/method`; a leading / means exact).",
                         _schema(["project_id", "name_path_pattern"], project_id=_STR, name_path_pattern=_STR, relative_path=_STR, symbol_types=_STRS,
                                 languages=_STRS, include_body=_BOOL, depth={"type": "integer", "minimum": 0}, substring_matching=_BOOL, limit=_INT)),
    "code_get_symbols_overview": (True, "The top-level symbols of one file of a project.", _schema(["project_id", "relative_path"], project_id=_STR, relative_path=_STR, max_results=_INT)),
    "code_get_project_stats": (True, "Files, symbols and languages of an indexed project.", _schema(["project_id"], project_id=_STR)),
    "code_delete_project": (False, "Delete a project from the code index.", _schema(["project_id"], project_id=_STR)),
    "code_reindex_file": (False, "Index one file of a project again.", _schema(["project_id", "file_path"], project_id=_STR, file_path=_STR)),
    "code_list_projects": (True, "The indexed code projects.", _schema([])),
    "code_search_pattern": (True, "Find symbols whose source contains a text or regular expression.",
                            _schema(["project_id", "pattern"], project_id=_STR, pattern=_STR, case_sensitive=_BOOL, is_regex=_BOOL, languages=_STRS, symbol_types=_STRS, limit=_INT)),
}


class RagTool:
    def __init__(self, app: Any, name: str) -> None:
        self.app = app
        self.name = name
        self.read_only, self.description, self.parameters = TOOL_SPECS[name]

    async def run(self, args: dict, ctx: Any) -> ToolResult:
        from pando_core.errors import PandoError, one_line

        params = dict(args or {})
        if self.name == "kb_import_path":
            params.setdefault("delete_missing", True)
            path = params.get("path")
            if isinstance(path, str) and path and not path.startswith("/"):
                params["path"] = str(self.app.workdir / path)
        try:
            result = await asyncio.to_thread(self.app.call_primary, f"rag.{self.name}", params, timeout=TOOL_TIMEOUT)
        except PandoError as exc:
            return ToolResult(f"{self.name}: {one_line(exc, 400)}", is_error=True)
        return ToolResult(json.dumps(result, ensure_ascii=False, indent=1))


def all_tools(app: Any) -> list[RagTool]:
    return [RagTool(app, name) for name in TOOL_SPECS]
