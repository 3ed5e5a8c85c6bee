"""Built-in tool set, schemas, result paging and path confinement (see test_tool_*.py for each tool)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pando_core.agent.tools.base import Tool, ToolContext, ToolError, ToolResult, tool_schema
from pando_core.agent.tools.bash import BashTool
from pando_core.agent.tools.builtin import builtin_tools
from pando_core.agent.tools.edit import EditTool
from pando_core.agent.tools.glob import GlobTool
from pando_core.agent.tools.grep import GrepTool
from pando_core.agent.tools.ls import LsTool
from pando_core.agent.tools.paging import ResultPager, ResultPageTool, wrap_large_result
from pando_core.agent.tools.patch import PatchTool
from pando_core.agent.tools.view import ViewTool
from pando_core.agent.tools.write import WriteTool

ORDER = ["bash", "edit", "fetch", "glob", "grep", "ls", "view", "write", "patch", "result_page"]


def call(tool, ctx: ToolContext, **args):
    return asyncio.run(tool.run(args, ctx))


# --------------------------------------------------------------------------- the tool set


def test_builtin_tools_order_and_schemas():
    tools = builtin_tools()
    assert [t.name for t in tools] == ORDER
    for tool in tools:
        assert isinstance(tool, Tool)
        schema = tool_schema(tool)
        params = schema["parameters"]
        assert params["type"] == "object"
        assert set(params["required"]) <= set(params["properties"])
        assert len(tool.description) > 80, tool.name
        for prop in params["properties"].values():
            assert "type" in prop and "description" in prop


def test_builtin_tools_config():
    tools = builtin_tools(
        {
            "banned_commands": ["ls", "curl"],
            "allowed_commands": ["curl"],
            "bash_max_timeout_ms": 5000,
            "fetch_enabled": False,
            "use_ripgrep": False,
        }
    )
    assert "fetch" not in [t.name for t in tools]
    bash = next(t for t in tools if isinstance(t, BashTool))
    assert bash.banned == ("ls",)
    assert bash.max_timeout_ms == 5000
    grep = next(t for t in tools if isinstance(t, GrepTool))
    assert grep.use_ripgrep is False


def test_documented_tools_config_keys_take_effect(tmp_path):
    """The flat [tools] keys the README documents reach the tools, without unknown-key warnings."""
    from pando_core.agent.tools.fetch import FetchTool
    from pando_core.config import load_config

    (tmp_path / ".pando.toml").write_text(
        "[tools]\n"
        'banned_commands = ["ls"]\n'
        "bash_timeout_ms = 1234\n"
        "bash_max_timeout_ms = 4321\n"
        'shell_path = "/bin/sh"\n'
        "fetch_max_size_mb = 1\n"
        "use_ripgrep = false\n"
    )
    config = load_config(tmp_path, env={"HOME": str(tmp_path)})
    assert config.warnings == []
    tools = builtin_tools(config.section("tools"))
    bash = next(t for t in tools if isinstance(t, BashTool))
    assert bash.banned == ("ls",)
    assert bash.default_timeout_ms == 1234 and bash.max_timeout_ms == 4321
    assert bash.shell_path == "/bin/sh"
    fetch = next(t for t in tools if isinstance(t, FetchTool))
    assert fetch.max_bytes == 1024 * 1024
    grep = next(t for t in tools if isinstance(t, GrepTool))
    assert grep.use_ripgrep is False

    plain = builtin_tools({"banned_commands": ["ls"], "bash_timeout_ms": 1234})
    bash = next(t for t in plain if isinstance(t, BashTool))
    assert bash.banned == ("ls",) and bash.default_timeout_ms == 1234
    # the defaults of the declared section give the same tools as no config at all
    empty = tmp_path / "empty"
    empty.mkdir()
    defaults = builtin_tools(load_config(empty, env={"HOME": str(empty)}).section("tools"))
    bare = builtin_tools()
    assert [t.name for t in defaults] == [t.name for t in bare] == ORDER
    bash_default = next(t for t in defaults if isinstance(t, BashTool))
    bash_bare = next(t for t in bare if isinstance(t, BashTool))
    assert bash_default.banned == bash_bare.banned
    assert (bash_default.default_timeout_ms, bash_default.max_timeout_ms) == (
        bash_bare.default_timeout_ms,
        bash_bare.max_timeout_ms,
    )


def test_missing_required_argument_is_a_tool_error(tmp_path):
    ctx = ToolContext(workdir=tmp_path)
    for tool, args in [
        (BashTool(), {}),
        (ViewTool(), {}),
        (WriteTool(), {"file_path": "x"}),
        (EditTool(), {"old_string": "a", "new_string": "b"}),
        (PatchTool(), {}),
        (GlobTool(), {}),
        (GrepTool(use_ripgrep=False), {}),
    ]:
        with pytest.raises(ToolError, match="required"):
            asyncio.run(tool.run(args, ctx))


def test_numeric_arguments_may_be_strings(tmp_path):
    (tmp_path / "f.txt").write_text("a\nb\nc\n")
    result = call(ViewTool(), ToolContext(workdir=tmp_path), file_path="f.txt", offset="1", limit="1")
    assert "     2|b" in result.content and "     3|c" not in result.content


# --------------------------------------------------------------------------- paging


def test_paging_round_trip():
    pager = ResultPager(threshold=100)
    ctx = ToolContext(workdir=Path("."), session_id="sess")
    content = "".join(f"{n:04d}\n" for n in range(50))  # 250 chars
    wrapped = wrap_large_result(ToolResult(content, metadata={"k": 1}), ctx, pager)
    assert wrapped.content.startswith(content[:100])
    assert "Output is 250 chars; showing 1-100" in wrapped.content
    result_id = wrapped.metadata["result_id"]
    assert f"Call result_page with id={result_id} page=2 for more" in wrapped.content
    assert wrapped.metadata["k"] == 1 and wrapped.metadata["pages"] == 3

    tool = ResultPageTool(pager)
    page2 = call(tool, ctx, id=result_id, page=2)
    assert page2.content.startswith(content[100:200])
    assert "page=3" in page2.content
    page3 = call(tool, ctx, id=result_id, page=3)
    assert page3.content.startswith(content[200:])
    assert "last page" in page3.content
    assert call(tool, ctx, id=result_id).content.startswith(content[100:200])  # default page 2
    # the page itself is not paged again
    assert wrap_large_result(page2, ctx, pager) is page2
    with pytest.raises(ToolError, match="out of range"):
        call(tool, ctx, id=result_id, page=4)
    with pytest.raises(ToolError, match="No stored result"):
        call(tool, ctx, id="r00000000", page=2)
    with pytest.raises(ToolError, match="No stored result"):
        call(tool, ToolContext(workdir=Path("."), session_id="other"), id=result_id, page=2)


def test_paging_leaves_small_error_and_exempt_results_alone():
    pager = ResultPager(threshold=10)
    ctx = ToolContext(workdir=Path("."), session_id="s")
    small = ToolResult("short")
    assert wrap_large_result(small, ctx, pager) is small
    error = ToolResult("x" * 100, is_error=True)
    assert wrap_large_result(error, ctx, pager) is error
    edit = ToolResult("y" * 100)
    assert wrap_large_result(edit, ctx, pager, tool_name="edit") is edit


def test_pager_is_bounded_and_found_through_the_app():
    pager = ResultPager(threshold=10, max_entries=2)
    ids = [pager.store("s", f"content {n}" * 5).id for n in range(3)]
    assert pager.get("s", ids[0]) is None and pager.get("s", ids[2]) is not None
    assert pager.stats("s")["entries"] == 2

    class App:
        def __init__(self) -> None:
            self.pager = ResultPager(threshold=10)

    app = App()
    ctx = ToolContext(workdir=Path("."), session_id="s", extra={"app": app})
    wrapped = wrap_large_result(ToolResult("z" * 25), ctx)
    # a result_page tool built without a pager reads from the app's pager
    page = call(ResultPageTool(), ctx, id=wrapped.metadata["result_id"], page=3)
    assert page.content.startswith("zzzzz\n")


# --------------------------------------------------------------------------- confinement


@pytest.mark.parametrize("target", ["../outside.txt", "/etc/passwd", "sub/../../x"])
def test_paths_outside_the_workdir_are_refused(tmp_path, target):
    workdir = tmp_path / "work"
    (workdir / "sub").mkdir(parents=True)
    ctx = ToolContext(workdir=workdir)
    attempts = [
        (ViewTool(), {"file_path": target}),
        (WriteTool(), {"file_path": target, "content": "x"}),
        (EditTool(), {"file_path": target, "old_string": "", "new_string": "x"}),
        (LsTool(), {"path": target}),
        (GlobTool(), {"pattern": "*", "path": target}),
        (GrepTool(use_ripgrep=False), {"pattern": "x", "path": target}),
        (PatchTool(), {"patch_text": f"*** Begin Patch\n*** Add File: {target}\n+x\n*** End Patch"}),
    ]
    for tool, args in attempts:
        with pytest.raises(ToolError, match="outside the working directory"):
            asyncio.run(tool.run(args, ctx))
    assert not (tmp_path / "outside.txt").exists()
    assert not (tmp_path / "x").exists()


def test_outside_paths_allowed_when_context_permits(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("visible\n")
    workdir = tmp_path / "work"
    workdir.mkdir()
    ctx = ToolContext(workdir=workdir, allow_outside_workdir=True)
    assert "visible" in call(ViewTool(), ctx, file_path=str(outside)).content
