"""The patch tool: both formats, validation and all-or-nothing application."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from pando_core.agent.tools.base import PermissionDenied, ToolContext, ToolError
from pando_core.agent.tools.patch import PatchTool
from pando_core.agent.tools.view import ViewTool
from tests.support.doubles import Asker, History


def setup_files(tmp_path: Path, files: dict[str, str], asker=None, history=None, view=True) -> ToolContext:
    ctx = ToolContext(workdir=tmp_path, session_id="s", permissions=asker, history=history)
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        if view:
            asyncio.run(ViewTool().run({"file_path": name}, ctx))
    return ctx


def apply(ctx: ToolContext, text: str):
    return asyncio.run(PatchTool().run({"patch_text": text}, ctx))


APP = "import os\n\n\ndef main():\n    print('hello')\n    return 0\n\n\ndef other():\n    return 1\n"


def test_begin_patch_update_add_delete(tmp_path):
    asker, history = Asker(), History()
    ctx = setup_files(tmp_path, {"app.py": APP, "old.txt": "bye\n"}, asker, history)
    patch = """*** Begin Patch
*** Update File: app.py
@@ def main():
-    print('hello')
+    print('hello, world')
     return 0
@@ def other():
-    return 1
+    return 2
*** Add File: docs/new.md
+# Title
+
+text
*** Delete File: old.txt
*** End Patch"""
    result = apply(ctx, patch)
    assert not result.is_error
    assert (tmp_path / "app.py").read_text() == APP.replace("'hello'", "'hello, world'").replace(
        "return 1", "return 2"
    )
    assert (tmp_path / "docs/new.md").read_text() == "# Title\n\ntext\n"
    assert not (tmp_path / "old.txt").exists()
    assert [r.action for r in asker.requests] == ["update", "create", "delete"]
    assert all(r.tool_name == "patch" for r in asker.requests)
    assert result.metadata["additions"] == 5 and result.metadata["removals"] == 3
    assert (
        "M app.py" in result.content and "A docs/new.md" in result.content and "D old.txt" in result.content
    )
    root = tmp_path.resolve()
    assert [
        (session_id, Path(path).relative_to(root).as_posix(), before is None)
        for session_id, path, before, _after in history.changes
    ] == [
        ("s", "app.py", False),
        ("s", "docs/new.md", True),
        ("s", "old.txt", False),
    ]
    assert history.changes[2][3] == ""


def test_unified_diff_multi_file_with_create_and_delete(tmp_path):
    ctx = setup_files(tmp_path, {"src/a.py": "one\ntwo\nthree\nfour\n", "src/b.py": "x\ny\n"})
    diff = """diff --git a/src/a.py b/src/a.py
index 111..222 100644
--- a/src/a.py
+++ b/src/a.py
@@ -1,4 +1,4 @@
 one
-two
+TWO
 three
 four
diff --git a/src/c.py b/src/c.py
new file mode 100644
--- /dev/null
+++ b/src/c.py
@@ -0,0 +1,2 @@
+print('c')
+print('done')
--- a/src/b.py
+++ /dev/null
@@ -1,2 +0,0 @@
-x
-y
"""
    result = apply(ctx, diff)
    assert (tmp_path / "src/a.py").read_text() == "one\nTWO\nthree\nfour\n"
    assert (tmp_path / "src/c.py").read_text() == "print('c')\nprint('done')\n"
    assert not (tmp_path / "src/b.py").exists()
    assert result.metadata["files"] == [
        {"path": str((tmp_path / "src/a.py").resolve()), "action": "update"},
        {"path": str((tmp_path / "src/c.py").resolve()), "action": "create"},
        {"path": str((tmp_path / "src/b.py").resolve()), "action": "delete"},
    ]


def test_unified_diff_uses_line_numbers_for_repeated_context(tmp_path):
    text = "".join(f"x = {n % 2}\n" for n in range(10))
    ctx = setup_files(tmp_path, {"r.py": text})
    diff = "--- a/r.py\n+++ b/r.py\n@@ -7,2 +7,2 @@\n x = 0\n-x = 1\n+x = 99\n"
    apply(ctx, diff)
    lines = (tmp_path / "r.py").read_text().splitlines()
    assert lines[7] == "x = 99"
    assert lines.count("x = 99") == 1


def test_unified_diff_no_newline_at_end(tmp_path):
    ctx = setup_files(tmp_path, {"n.txt": "a\nb\n"})
    diff = "--- a/n.txt\n+++ b/n.txt\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n\\ No newline at end of file\n"
    apply(ctx, diff)
    assert (tmp_path / "n.txt").read_text() == "a\nc"


def test_patch_tolerates_trailing_whitespace_in_context(tmp_path):
    ctx = setup_files(tmp_path, {"w.py": "a = 1   \nb = 2\n"})
    apply(ctx, "*** Begin Patch\n*** Update File: w.py\n a = 1\n-b = 2\n+b = 3\n*** End Patch")
    assert (tmp_path / "w.py").read_text() == "a = 1   \nb = 3\n"


def test_move_to(tmp_path):
    ctx = setup_files(tmp_path, {"old_name.py": "value = 1\n"})
    apply(
        ctx,
        "*** Begin Patch\n*** Update File: old_name.py\n*** Move to: pkg/new_name.py\n"
        "-value = 1\n+value = 2\n*** End Patch",
    )
    assert not (tmp_path / "old_name.py").exists()
    assert (tmp_path / "pkg/new_name.py").read_text() == "value = 2\n"


def test_failed_hunk_leaves_every_file_untouched(tmp_path):
    files = {"a.py": "alpha\n", "b.py": "beta\n"}
    ctx = setup_files(tmp_path, files)
    patch = """*** Begin Patch
*** Update File: a.py
-alpha
+ALPHA
*** Add File: c.py
+new
*** Update File: b.py
-this line does not exist
+whatever
*** End Patch"""
    with pytest.raises(ToolError, match="hunk 1 does not apply"):
        apply(ctx, patch)
    assert (tmp_path / "a.py").read_text() == "alpha\n"
    assert (tmp_path / "b.py").read_text() == "beta\n"
    assert not (tmp_path / "c.py").exists()


def test_failure_while_renaming_rolls_everything_back(tmp_path, monkeypatch):
    ctx = setup_files(tmp_path, {"a.py": "alpha\n", "b.py": "beta\n", "gone.py": "bye\n"})
    real_replace = os.replace
    calls = {"n": 0}

    def flaky_replace(src, dst, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full (simulated)")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", flaky_replace)
    patch = """*** Begin Patch
*** Delete File: gone.py
*** Update File: a.py
-alpha
+ALPHA
*** Add File: sub/new.py
+new
*** Update File: b.py
-beta
+BETA
*** End Patch"""
    with pytest.raises(ToolError, match="no files were changed"):
        apply(ctx, patch)
    monkeypatch.setattr(os, "replace", real_replace)
    assert (tmp_path / "a.py").read_text() == "alpha\n"
    assert (tmp_path / "b.py").read_text() == "beta\n"
    assert (tmp_path / "gone.py").read_text() == "bye\n"
    assert not (tmp_path / "sub").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.py", "b.py", "gone.py"]


def test_validation_errors(tmp_path):
    ctx = setup_files(tmp_path, {"seen.py": "a\n"})
    (tmp_path / "unseen.py").write_text("b\n")
    with pytest.raises(ToolError, match="must read"):
        apply(ctx, "*** Begin Patch\n*** Update File: unseen.py\n-b\n+c\n*** End Patch")
    with pytest.raises(ToolError, match="already exists"):
        apply(ctx, "*** Begin Patch\n*** Add File: seen.py\n+x\n*** End Patch")
    with pytest.raises(ToolError, match="not found"):
        apply(ctx, "*** Begin Patch\n*** Delete File: missing.py\n*** End Patch")
    with pytest.raises(ToolError, match="Unrecognised patch format"):
        apply(ctx, "just some text")
    with pytest.raises(ToolError, match="outside the working directory"):
        apply(ctx, "*** Begin Patch\n*** Add File: ../escape.py\n+x\n*** End Patch")
    assert (tmp_path / "seen.py").read_text() == "a\n"


def test_permission_denied_for_one_file_changes_nothing(tmp_path):
    asker = Asker(answers=[True, False])
    ctx = setup_files(tmp_path, {"a.py": "a\n", "b.py": "b\n"}, asker)
    with pytest.raises(PermissionDenied):
        apply(
            ctx,
            "*** Begin Patch\n*** Update File: a.py\n-a\n+A\n*** Update File: b.py\n-b\n+B\n*** End Patch",
        )
    assert (tmp_path / "a.py").read_text() == "a\n"
    assert (tmp_path / "b.py").read_text() == "b\n"
    assert len(asker.requests) == 2
