"""view, write and edit on real files in tmp_path."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from pando_core.agent.tools.base import PermissionDenied, ToolContext, ToolError
from pando_core.agent.tools.edit import EditTool
from pando_core.agent.tools.view import ViewTool
from pando_core.agent.tools.write import WriteTool
from tests.support.doubles import Asker, History


def make_ctx(tmp_path: Path, asker: Asker | None = None, history: History | None = None) -> ToolContext:
    return ToolContext(workdir=tmp_path, session_id="s1", permissions=asker, history=history)


def call(tool, ctx: ToolContext, **args):
    return asyncio.run(tool.run(args, ctx))


def bump_mtime(path: Path, seconds: float = 10) -> None:
    info = path.stat()
    os.utime(path, (info.st_atime, info.st_mtime + seconds))


# --------------------------------------------------------------------------- view


def test_view_numbers_lines_with_offset_and_limit(tmp_path):
    (tmp_path / "a.txt").write_text("".join(f"line {n}\n" for n in range(1, 11)))
    ctx = make_ctx(tmp_path)
    full = call(ViewTool(), ctx, file_path="a.txt")
    assert full.content.startswith("<file>\n     1|line 1\n     2|line 2")
    assert "    10|line 10\n</file>" in full.content
    part = call(ViewTool(), ctx, file_path="a.txt", offset=3, limit=2)
    assert "     4|line 4\n     5|line 5\n</file>" in part.content
    assert "line 3" not in part.content and "line 6" not in part.content
    assert "Use offset=5" in part.content
    assert part.metadata["total_lines"] == 10
    ranged = call(ViewTool(), ctx, file_path="a.txt", offset=8, end_line=10)
    assert "     9|line 9\n    10|line 10" in ranged.content
    with pytest.raises(ToolError, match="beyond the end"):
        call(ViewTool(), ctx, file_path="a.txt", offset=50)


def test_view_cuts_long_lines_and_handles_empty_files(tmp_path):
    (tmp_path / "long.txt").write_text("x" * 5000 + "\nshort\n")
    result = call(ViewTool(), make_ctx(tmp_path), file_path="long.txt")
    first = result.content.split("\n")[1]
    assert first.endswith("...") and len(first) == 7 + 2000 + 3
    (tmp_path / "empty.txt").write_text("")
    empty = call(ViewTool(), make_ctx(tmp_path), file_path="empty.txt")
    assert "is empty" in empty.content and empty.metadata["total_lines"] == 0


def test_view_refuses_binary_images_and_directories(tmp_path):
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02binary\x00data")
    (tmp_path / "pic.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    (tmp_path / "dir").mkdir()
    ctx = make_ctx(tmp_path)
    with pytest.raises(ToolError, match="binary"):
        call(ViewTool(), ctx, file_path="blob.bin")
    with pytest.raises(ToolError, match="image"):
        call(ViewTool(), ctx, file_path="pic.png")
    with pytest.raises(ToolError, match="directory"):
        call(ViewTool(), ctx, file_path="dir")


def test_view_suggests_similar_names(tmp_path):
    (tmp_path / "main.py").write_text("print(1)\n")
    with pytest.raises(ToolError) as info:
        call(ViewTool(), make_ctx(tmp_path), file_path="mian.py")
    assert "File not found" in str(info.value)
    assert "main.py" in str(info.value)


# --------------------------------------------------------------------------- write


def test_write_creates_file_and_parents_with_permission_and_history(tmp_path):
    asker, history = Asker(), History()
    ctx = make_ctx(tmp_path, asker, history)
    result = call(WriteTool(), ctx, file_path="deep/dir/new.txt", content="hello\nworld\n")
    target = tmp_path / "deep/dir/new.txt"
    assert target.read_text() == "hello\nworld\n"
    assert not result.is_error
    assert result.metadata["additions"] == 2 and result.metadata["removals"] == 0
    assert "+hello" in result.metadata["diff"]
    assert [r.action for r in asker.requests] == ["write"]
    assert "+hello" in asker.requests[0].description
    assert history.changes == [("s1", str(target.resolve()), None, "hello\nworld\n")]


def test_write_requires_read_and_refuses_stale_or_identical(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old\n")
    history = History()
    ctx = make_ctx(tmp_path, history=history)
    with pytest.raises(ToolError, match="must read"):
        call(WriteTool(), ctx, file_path="f.txt", content="new\n")
    call(ViewTool(), ctx, file_path="f.txt")
    with pytest.raises(ToolError, match="already contains"):
        call(WriteTool(), ctx, file_path="f.txt", content="old\n")
    bump_mtime(target)
    with pytest.raises(ToolError, match="modified since"):
        call(WriteTool(), ctx, file_path="f.txt", content="new\n")
    assert target.read_text() == "old\n"
    call(ViewTool(), ctx, file_path="f.txt")
    result = call(WriteTool(), ctx, file_path="f.txt", content="new\n")
    assert target.read_text() == "new\n"
    assert result.metadata["additions"] == 1 and result.metadata["removals"] == 1
    assert history.changes[-1][2:] == ("old\n", "new\n")
    # the write counts as a read: a second write needs no new view
    call(WriteTool(), ctx, file_path="f.txt", content="newer\n")
    assert target.read_text() == "newer\n"


def test_write_permission_denied_leaves_file_untouched(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("keep\n")
    ctx = make_ctx(tmp_path, Asker(False))
    call(ViewTool(), ctx, file_path="f.txt")
    with pytest.raises(PermissionDenied):
        call(WriteTool(), ctx, file_path="f.txt", content="changed\n")
    assert target.read_text() == "keep\n"
    with pytest.raises(PermissionDenied):
        call(WriteTool(), ctx, file_path="other.txt", content="x")
    assert not (tmp_path / "other.txt").exists()


# --------------------------------------------------------------------------- edit


def viewed(tmp_path: Path, name: str, content: str, **kw) -> ToolContext:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode())
    ctx = make_ctx(tmp_path, **kw)
    call(ViewTool(), ctx, file_path=name)
    return ctx


def test_edit_requires_read_and_unchanged_file(tmp_path):
    target = tmp_path / "code.py"
    target.write_text("a = 1\n")
    ctx = make_ctx(tmp_path)
    with pytest.raises(ToolError, match="must read"):
        call(EditTool(), ctx, file_path="code.py", old_string="a = 1", new_string="a = 2")
    call(ViewTool(), ctx, file_path="code.py")
    bump_mtime(target)
    with pytest.raises(ToolError, match="modified since"):
        call(EditTool(), ctx, file_path="code.py", old_string="a = 1", new_string="a = 2")
    assert target.read_text() == "a = 1\n"


def test_edit_replaces_unique_match_with_permission_and_history(tmp_path):
    asker, history = Asker(), History()
    ctx = viewed(tmp_path, "code.py", "def f():\n    return 1\n\nprint(f())\n", asker=asker, history=history)
    result = call(EditTool(), ctx, file_path="code.py", old_string="return 1", new_string="return 2")
    assert (tmp_path / "code.py").read_text() == "def f():\n    return 2\n\nprint(f())\n"
    assert result.metadata["additions"] == 1 and result.metadata["removals"] == 1
    assert "-    return 1" in result.metadata["diff"]
    assert "     2|    return 2" in result.content
    assert [r.action for r in asker.requests] == ["write"]
    assert history.changes[0][2] == "def f():\n    return 1\n\nprint(f())\n"


def test_edit_ambiguous_and_missing_matches(tmp_path):
    text = "x = 1\ny = 2\nx = 1\n"
    ctx = viewed(tmp_path, "m.py", text)
    with pytest.raises(ToolError) as info:
        call(EditTool(), ctx, file_path="m.py", old_string="x = 1", new_string="x = 3")
    message = str(info.value)
    assert "Found 2 matches" in message and "more" in message and "replace_all" in message
    with pytest.raises(ToolError, match="not found"):
        call(EditTool(), ctx, file_path="m.py", old_string="z = 9", new_string="z = 10")
    with pytest.raises(ToolError, match="identical"):
        call(EditTool(), ctx, file_path="m.py", old_string="y = 2", new_string="y = 2")
    assert (tmp_path / "m.py").read_text() == text
    result = call(EditTool(), ctx, file_path="m.py", old_string="x = 1", new_string="x = 3", replace_all=True)
    assert (tmp_path / "m.py").read_text() == "x = 3\ny = 2\nx = 3\n"
    assert result.metadata["replacements"] == 2


def test_edit_matches_smart_quotes_and_dashes(tmp_path):
    text = 'before()\nprint("it\'s - ok")\nafter()\n'
    ctx = viewed(tmp_path, "q.py", text)
    result = call(
        EditTool(),
        ctx,
        file_path="q.py",
        old_string="print(\u201cit\u2019s \u2013 ok\u201d)",
        new_string='print("fixed")',
    )
    assert (tmp_path / "q.py").read_text() == 'before()\nprint("fixed")\nafter()\n'
    assert result.metadata["strategy"] != "exact"


def test_edit_ignores_trailing_whitespace(tmp_path):
    ctx = viewed(tmp_path, "t.py", "keep = 0\nfoo = 1   \nbar = 2\t\nend = 3\n")
    call(EditTool(), ctx, file_path="t.py", old_string="foo = 1\nbar = 2", new_string="foo = 10\nbar = 20")
    assert (tmp_path / "t.py").read_text() == "keep = 0\nfoo = 10\nbar = 20\nend = 3\n"


def test_edit_adjusts_indentation(tmp_path):
    text = "class A:\n    def f(self):\n        if x:\n            go()\n    # end\n"
    ctx = viewed(tmp_path, "i.py", text)
    call(
        EditTool(),
        ctx,
        file_path="i.py",
        old_string="if x:\n    go()\n",
        new_string="if x:\n    go()\n    stop()\n",
    )
    assert (tmp_path / "i.py").read_text() == (
        "class A:\n    def f(self):\n        if x:\n            go()\n            stop()\n    # end\n"
    )


def test_edit_collapsed_whitespace(tmp_path):
    ctx = viewed(tmp_path, "w.py", "a = 0\nx  =   compute( a,\tb )\nz = 1\n")
    call(EditTool(), ctx, file_path="w.py", old_string="x = compute( a, b )", new_string="x = compute(a, b)")
    assert (tmp_path / "w.py").read_text() == "a = 0\nx = compute(a, b)\nz = 1\n"


def test_edit_fuzzy_match_must_still_be_unique(tmp_path):
    text = "a = 'v'  \nb = 1\na = 'v'\t\n"
    ctx = viewed(tmp_path, "u.py", text)
    with pytest.raises(ToolError, match="Found 2 matches"):
        call(EditTool(), ctx, file_path="u.py", old_string="a = \u2018v\u2019", new_string="a = 'w'")
    assert (tmp_path / "u.py").read_text() == text


def test_edit_creates_new_file_and_refuses_existing(tmp_path):
    history = History()
    ctx = make_ctx(tmp_path, history=history)
    call(EditTool(), ctx, file_path="pkg/new.py", old_string="", new_string="x = 1\n")
    assert (tmp_path / "pkg/new.py").read_text() == "x = 1\n"
    assert history.changes[0][2] is None
    with pytest.raises(ToolError, match="already exists"):
        call(EditTool(), ctx, file_path="pkg/new.py", old_string="", new_string="y = 2\n")
    # created by the agent, so it can be edited straight away
    call(EditTool(), ctx, file_path="pkg/new.py", old_string="x = 1", new_string="x = 2")
    assert (tmp_path / "pkg/new.py").read_text() == "x = 2\n"


def test_edit_deletes_text_and_keeps_crlf(tmp_path):
    ctx = viewed(tmp_path, "w.txt", "one\r\ntwo\r\nthree\r\n")
    call(EditTool(), ctx, file_path="w.txt", old_string="two\n", new_string="")
    assert (tmp_path / "w.txt").read_bytes() == b"one\r\nthree\r\n"


def test_edit_permission_denied(tmp_path):
    ctx = viewed(tmp_path, "d.py", "a = 1\n", asker=Asker(False))
    with pytest.raises(PermissionDenied):
        call(EditTool(), ctx, file_path="d.py", old_string="a = 1", new_string="a = 2")
    assert (tmp_path / "d.py").read_text() == "a = 1\n"


class YieldingAsker(Asker):
    """Lets the other edits run while a permission is pending, as a real prompt does."""

    async def request(self, session_id, request):
        await asyncio.sleep(0)
        return await super().request(session_id, request)


def test_concurrent_edits_to_one_file_are_serialised(tmp_path):
    # without a pending permission nothing would yield, so the edits would run one after the other
    # even without the per-path lock
    ctx = viewed(tmp_path, "c.py", "".join(f"v{n} = {n}\n" for n in range(20)), asker=YieldingAsker())

    async def both():
        tool = EditTool()
        return await asyncio.gather(
            *(
                tool.run(
                    {"file_path": "c.py", "old_string": f"v{n} = {n}", "new_string": f"v{n} = -{n}"}, ctx
                )
                for n in range(0, 20, 2)
            )
        )

    asyncio.run(both())
    # every even line edited exactly once, every odd line untouched, nothing lost or duplicated
    expected = "".join(f"v{n} = -{n}\n" if n % 2 == 0 else f"v{n} = {n}\n" for n in range(20))
    assert (tmp_path / "c.py").read_text() == expected
