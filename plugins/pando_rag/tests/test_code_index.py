"""The code index with the real tree-sitter grammars of five languages."""

import time

import pytest
from pando_rag.code_index import project_id_for

from pando_core.errors import NotFoundError, ValidationError

SOURCES = {
    "pkg/pool.py": '''class Pool:
    """A pool of connections."""

    def acquire(self, timeout: float = 1.0) -> "Conn":
        """Take a connection, waiting up to timeout."""
        return Conn()


def helper(x):
    return x
''',
    "web/app.js": '''/** Render the page. */
function render(el) { return el; }
class Widget {
  draw(ctx) { return ctx; }
}
const onClick = (event) => event;
''',
    "web/types.ts": '''interface Shape { area(): number }
type Id = string;
export class Circle implements Shape {
  area(): number { return 3; }
}
enum Color { Red, Green }
''',
    "srv/main.go": '''package main

// Server serves.
type Server struct { port int }

// Start starts the server.
func (s *Server) Start() error { return nil }

func main() {}
''',
    "core/lib.rs": '''/// A stack.
pub struct Stack { items: Vec<i32> }

impl Stack {
    /// Push one.
    pub fn push(&mut self, v: i32) { self.items.push(v); }
}

pub trait Named { fn name(&self) -> String; }
''',
}


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "proj"
    for rel, text in SOURCES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "node_modules" / "x").mkdir(parents=True)
    (root / "node_modules" / "x" / "skip.js").write_text("function skipped() {}")
    return root


def _finish(engine, job):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = engine.code.status(job["job_id"])
        if status["status"] not in ("queued", "running"):
            return status
        time.sleep(0.05)
    raise AssertionError("the job did not finish")


def test_symbols_of_five_languages(make_engine, hashing_embedder, project):
    engine = make_engine(embedder=hashing_embedder)
    status = _finish(engine, engine.code.index_project(str(project), "My Proj.v2"))
    assert status["status"] == "completed" and status["total"] == 5 and status["failed"] == 0
    pid = "My_Proj_v2"
    found = {row["name_path"]: row for row in engine.catalog.rows("SELECT * FROM code_symbols WHERE project_id = ?", (pid,))}
    assert engine.code.find_symbol(pid, "acquire")[0]["name_path"] == "Pool/acquire"
    assert engine.code.find_symbol(pid, "/Pool/acquire", depth=1)[0]["file_path"] == "pkg/pool.py"
    assert [c["name"] for c in engine.code.find_symbol(pid, "/Pool", depth=1)[0]["children"]] == ["acquire"]
    assert found["Pool/acquire"]["symbol_type"] == "method"
    assert found["Pool/acquire"]["signature"] == 'def acquire(self, timeout: float = 1.0) -> "Conn"'
    assert found["Pool/acquire"]["doc_string"] == "Take a connection, waiting up to timeout."
    assert (found["Pool/acquire"]["start_line"], found["Pool/acquire"]["end_line"]) == (4, 6)
    assert found["helper"]["symbol_type"] == "function"
    assert found["render"]["doc_string"] == "Render the page."
    assert found["Widget/draw"]["symbol_type"] == "method"
    assert found["onClick"]["symbol_type"] == "function"
    assert found["Shape"]["symbol_type"] == "interface" and found["Id"]["symbol_type"] == "type_alias"
    assert found["Circle/area"]["symbol_type"] == "method" and found["Color"]["symbol_type"] == "enum"
    assert found["Server"]["symbol_type"] == "struct" and found["Server/Start"]["doc_string"] == "Start starts the server."
    assert found["Stack/push"]["symbol_type"] == "method" and found["Stack/push"]["doc_string"] == "Push one."
    assert found["Named"]["symbol_type"] == "trait"
    assert "skipped" not in found


def test_reindex_skips_unchanged_files_by_hash(make_engine, hashing_embedder, project):
    engine = make_engine(embedder=hashing_embedder)
    _finish(engine, engine.code.index_project(str(project), "p"))
    (project / "pkg" / "pool.py").write_text("def only():\n    return 1\n")
    again = _finish(engine, engine.code.index_project(str(project), "p"))
    assert (again["indexed"], again["skipped"]) == (1, 4)
    assert engine.code.find_symbol("p", "Pool") == []
    assert [s["name"] for s in engine.code.symbols_overview("p", "pkg/pool.py")] == ["only"]
    assert engine.counts()["code"]["rows"] == engine.counts()["code"]["vectors"]


def test_search_pattern_overview_stats_delete(make_engine, hashing_embedder, project):
    engine = make_engine(embedder=hashing_embedder)
    _finish(engine, engine.code.index_project(str(project), "p"))
    # the impl block holds the method's source too
    assert [(s["name_path"], s["symbol_type"]) for s in engine.code.search_pattern("p", "self.items.push")] == [("Stack", "impl"), ("Stack/push", "method")]
    assert engine.code.search_pattern("p", "SELF.ITEMS", case_sensitive=True) == []
    assert [s["name_path"] for s in engine.code.search_pattern("p", r"return\s+3", is_regex=True)] == ["Circle", "Circle/area"]
    with pytest.raises(ValidationError):
        engine.code.search_pattern("p", "(", is_regex=True)
    assert [s["name"] for s in engine.code.symbols_overview("p", "web/types.ts")] == ["Shape", "Id", "Circle", "Color"]
    hits = engine.code.hybrid_search("p", "push stack items", limit=3)
    assert hits[0]["name_path"] in ("Stack/push", "Stack")
    stats = engine.code.project_stats("p")
    assert stats["files"] == 5 and stats["symbol_types"]["method"] >= 4
    assert engine.code.delete_project("p")["deleted"] is True
    assert engine.counts()["code"] == {**engine.counts()["code"], "rows": 0, "vectors": 0}
    with pytest.raises(NotFoundError):
        engine.code.project_stats("p")


def test_project_ids():
    assert project_id_for("/home/me/My Project.v2") == "home_me_My_Project_v2"
    with pytest.raises(ValidationError):
        project_id_for("///")
