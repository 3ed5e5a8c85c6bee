"""glob, grep (ripgrep and pure Python) and ls on real trees in tmp_path."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

import pytest

from pando_core.agent.tools.base import ToolContext, ToolError
from pando_core.agent.tools.glob import GlobTool, glob_to_regex
from pando_core.agent.tools.grep import GrepTool
from pando_core.agent.tools.ls import LsTool
from pando_core.ignore import IgnoreRules, is_ignored, parse_ignore_lines

HAVE_RG = shutil.which("rg") is not None


def call(tool, root: Path, **args):
    return asyncio.run(tool.run(args, ToolContext(workdir=root, session_id="s")))


def make_tree(root: Path, files: dict[str, str]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def set_mtimes(root: Path, names: list[str]) -> None:
    """Give the files strictly increasing mtimes in the given order (last = newest)."""
    base = time.time() - 1000
    for offset, name in enumerate(names):
        os.utime(root / name, (base + offset * 10, base + offset * 10))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    make_tree(
        tmp_path,
        {
            "src/app.py": "import os\n\ndef main():\n    return helper()  # TODO\n",
            "src/util/helpers.py": "def helper():\n    return 42\n",
            "src/util/types.pyi": "def helper() -> int: ...\n",
            "README.md": "# Project\nTODO: docs\n",
            "build/out.py": "generated = True  # TODO\n",
            "debug.log": "TODO in a log\n",
            "keep.log": "TODO keep me\n",
            "node_modules/pkg/index.py": "TODO = 1\n",
            ".git/config.py": "TODO = 2\n",
            ".pando/state.py": "TODO = 3\n",
            ".hidden/secret.py": "TODO = 4\n",
            ".gitignore": "build/\n*.log\n!keep.log\n",
        },
    )
    set_mtimes(
        tmp_path,
        [
            ".hidden/secret.py",
            "src/util/types.pyi",
            "README.md",
            "src/app.py",
            "src/util/helpers.py",
            "keep.log",
        ],
    )
    return tmp_path


# --------------------------------------------------------------------------- glob


def test_glob_patterns():
    assert glob_to_regex("**/*.py").fullmatch("a/b/c.py")
    assert glob_to_regex("**/*.py").fullmatch("c.py")
    assert not glob_to_regex("*.py").fullmatch("a/c.py")
    assert glob_to_regex("src/*.{ts,tsx}").fullmatch("src/x.tsx")
    assert glob_to_regex("file[0-9].txt").fullmatch("file7.txt")
    assert not glob_to_regex("file[!0-9].txt").fullmatch("file7.txt")


def test_gitignore_rules(tmp_path):
    (tmp_path / ".gitignore").write_text("# comment\n*.log\n!keep.log\n/root-only.txt\ndocs/*.tmp\ncache/\n")
    rules = IgnoreRules(tmp_path)
    rules.load_dir(tmp_path)
    assert rules.ignored("a/b/x.log", False)
    assert not rules.ignored("keep.log", False)
    assert rules.ignored("root-only.txt", False)
    assert not rules.ignored("sub/root-only.txt", False)
    assert rules.ignored("docs/a.tmp", False)
    assert rules.ignored("x/cache", True)
    assert not rules.ignored("x/cache", False)
    assert parse_ignore_lines(["", "# x"]) == []


def test_nested_ignore_files_apply_below_their_directory_and_deeper_ones_win(tmp_path):
    make_tree(
        tmp_path,
        {
            ".gitignore": "*.log\n",
            "a/.gitignore": "!keep.log\n/local.txt\n",
            "ab/.gitignore": "*.txt\n",  # "ab" shares a prefix with "a" but holds nothing of it
            "a/b/.pandoignore": "keep.log\n",
        },
    )
    rules = IgnoreRules(tmp_path)
    for directory in ("a/b", "ab"):
        rules.load_ancestors(tmp_path / directory)
    cases = {
        "x.log": True,
        "keep.log": True,  # the negation in a/ applies below a/ only
        "a/keep.log": False,
        "a/b/keep.log": True,  # a/b/ re-ignores it
        "a/local.txt": True,
        "a/b/local.txt": False,  # anchored to a/
        "local.txt": False,
        "ab/x.txt": True,
        "a/x.txt": False,
        "abc/x.txt": False,
    }
    assert {rel: rules.ignored(rel, False) for rel in cases} == cases
    # the flat rule list of the same files decides alike
    flat = [
        *parse_ignore_lines(["*.log"]),
        *parse_ignore_lines(["!keep.log", "/local.txt"], "a"),
        *parse_ignore_lines(["keep.log"], "a/b"),
        *parse_ignore_lines(["*.txt"], "ab"),
    ]
    assert {rel: is_ignored(flat, rel, False) for rel in cases} == cases


def test_gitignore_braces_are_literal_for_glob_and_grep(tmp_path):
    """Ignore files follow git: `{a,b}.txt` names that one file, it is not an alternation."""
    files = {name: "hit\n" for name in ("a.txt", "b.txt", "{a,b}.txt", "trailing.txt")}
    make_tree(tmp_path, {".gitignore": "{a,b}.txt\ntrailing.txt  \n", **files})
    found = call(GlobTool(), tmp_path, pattern="*.txt").content.splitlines()
    assert sorted(found) == ["a.txt", "b.txt"]
    # search patterns of the tools themselves still support alternatives
    assert sorted(call(GlobTool(), tmp_path, pattern="{a,b}.txt").content.splitlines()) == ["a.txt", "b.txt"]
    listed = call(GrepTool(use_ripgrep=False), tmp_path, pattern="hit", output_mode="files_with_matches")
    assert sorted(listed.content.splitlines()[1:]) == ["a.txt", "b.txt"]
    # the same rules as the snapshot service
    rules = parse_ignore_lines(["{a,b}.txt", "trailing.txt  "])
    assert is_ignored(rules, "{a,b}.txt", False) and not is_ignored(rules, "a.txt", False)
    assert is_ignored(rules, "trailing.txt", False)


def test_glob_sorted_newest_first_and_ignoring(tree):
    result = call(GlobTool(), tree, pattern="**/*.py")
    # hidden files are included by glob (only grep and ls skip them)
    assert result.content.splitlines() == ["src/util/helpers.py", "src/app.py", ".hidden/secret.py"]
    names = call(GlobTool(), tree, pattern="*.log").content.splitlines()
    assert names == ["keep.log"]
    assert call(GlobTool(), tree, pattern="src/*.py").content.splitlines() == ["src/app.py"]
    assert call(GlobTool(), tree, pattern="*.{py,pyi}", path="src/util").content.splitlines() == [
        "src/util/helpers.py",
        "src/util/types.pyi",
    ]
    assert call(GlobTool(), tree, pattern="*.nothing").content == "No files found"


def test_glob_caps_results_with_note(tmp_path):
    make_tree(tmp_path, {f"f{n:03}.txt": "" for n in range(130)})
    result = call(GlobTool(), tmp_path, pattern="*.txt")
    lines = [line for line in result.content.splitlines() if line.endswith(".txt")]
    assert len(lines) == 100
    assert "Showing results 1-100 of 130" in result.content
    assert result.metadata["truncated"] is True
    rest = call(GlobTool(), tmp_path, pattern="*.txt", offset=100)
    assert len([line for line in rest.content.splitlines() if line.endswith(".txt")]) == 30


# --------------------------------------------------------------------------- grep

ENGINES = [pytest.param(False, id="python")] + [
    pytest.param(None, id="ripgrep", marks=pytest.mark.skipif(not HAVE_RG, reason="rg not installed"))
]


@pytest.mark.parametrize("use_rg", ENGINES)
def test_grep_groups_by_file_with_line_numbers(tree, use_rg):
    result = call(GrepTool(use_ripgrep=use_rg), tree, pattern="TODO")
    assert result.metadata["engine"] == ("python" if use_rg is False else "ripgrep")
    lines = result.content.splitlines()
    assert lines[0] == "Found 3 match(es) in 3 file(s)"
    # newest first; build/, *.log (except keep.log), hidden dirs, node_modules, .git, .pando skipped
    files = [line for line in lines if line.endswith(":") and not line.startswith(" ")]
    assert files == ["keep.log:", "src/app.py:", "README.md:"]
    # debug.log matches *.log in .gitignore (its only line is "TODO in a log", so it would show as line 1)
    assert "debug.log" not in result.content and "TODO in a log" not in result.content
    assert "  4:     return helper()  # TODO" in result.content
    assert "  2: TODO: docs" in result.content


@pytest.mark.parametrize("use_rg", ENGINES)
def test_grep_include_literal_modes_and_context(tree, use_rg):
    tool = GrepTool(use_ripgrep=use_rg)
    result = call(tool, tree, pattern="def \\w+\\(", include="*.py")
    assert "src/util/helpers.py:" in result.content and "src/util/types.pyi" not in result.content
    literal = call(tool, tree, pattern="helper()", literal_text=True, path="src")
    assert literal.metadata["matches"] == 3
    # an include with a slash is matched against the path as results show it (from the working
    # directory), whatever directory is searched: by both engines
    for include, expected in (("src/util/*.py", ["src/util/helpers.py"]), ("util/*.py", [])):
        under = call(tool, tree, pattern="helper", include=include, path="src", output_mode="files_with_matches")
        assert under.content.splitlines()[1:] == expected, include
    files = call(tool, tree, pattern="helper", output_mode="files_with_matches")
    assert files.content.splitlines()[1:] == ["src/util/helpers.py", "src/app.py", "src/util/types.pyi"]
    counts = call(tool, tree, pattern="return", output_mode="count", path="src")
    assert "src/app.py: 1" in counts.content
    ctx_result = call(tool, tree, pattern="def main", context=1, path="src/app.py")
    assert "  2- " in ctx_result.content and "  3: def main():" in ctx_result.content
    assert "  4- " in ctx_result.content
    assert call(tool, tree, pattern="no-such-text-anywhere").content == "No matches found"


@pytest.mark.parametrize("use_rg", ENGINES)
def test_grep_caps_matches(tmp_path, use_rg):
    make_tree(tmp_path, {"many.txt": "hit\n" * 150})
    result = call(GrepTool(use_ripgrep=use_rg), tmp_path, pattern="hit")
    assert result.metadata["matches"] == 100
    assert result.metadata["truncated"] is True
    assert "Results are truncated" in result.content


def test_grep_invalid_regex(tmp_path):
    make_tree(tmp_path, {"a.txt": "x\n"})
    with pytest.raises(ToolError, match="Invalid regular expression"):
        call(GrepTool(use_ripgrep=False), tmp_path, pattern="(unclosed")


@pytest.mark.skipif(not HAVE_RG, reason="rg not installed")
def test_grep_falls_back_to_python_for_lookaround(tmp_path):
    make_tree(tmp_path, {"a.txt": "foobar\nfoobaz\n"})
    result = call(GrepTool(), tmp_path, pattern="foo(?=baz)")
    assert result.metadata["engine"] == "python"
    assert "  2: foobaz" in result.content


# --------------------------------------------------------------------------- ls


def test_ls_tree(tree):
    make_tree(tree, {"src/__pycache__/x.pyc": "", "src/mod.so": ""})
    result = call(LsTool(), tree)
    lines = result.content.splitlines()
    assert lines[0] == f"- {tree}/"
    assert "  - src/" in lines
    assert "    - app.py" in lines
    assert "    - util/" in lines
    assert "      - helpers.py" in lines
    for hidden in (
        ".git",
        ".pando",
        ".hidden",
        "node_modules",
        "__pycache__",
        "mod.so",
        "build/",
        ".gitignore",
    ):
        assert hidden not in result.content
    ignored = call(LsTool(), tree, ignore=["*.log", "util"])
    assert "keep.log" not in ignored.content and "util/" not in ignored.content
    assert "app.py" in ignored.content
    sub = call(LsTool(), tree, path="src/util")
    assert "helpers.py" in sub.content and "app.py" not in sub.content


def test_ls_caps_entries(tmp_path):
    make_tree(tmp_path, {f"d{n}/f{m}.txt": "" for n in range(5) for m in range(5)})
    result = call(LsTool(max_entries=10), tmp_path)
    assert result.metadata["truncated"] is True
    assert "more than 10 entries" in result.content
    # breadth first: all top-level directories are listed
    assert all(f"- d{n}/" in result.content for n in range(5))


def test_ls_errors(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ToolError, match="not a directory"):
        call(LsTool(), tmp_path, path="file.txt")
    with pytest.raises(ToolError, match="not found"):
        call(LsTool(), tmp_path, path="missing")
