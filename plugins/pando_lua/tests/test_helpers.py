"""The pando_* helper functions offered to scripts."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import pytest
from pando_lua.helpers import HelperRefusal, LuaHelpers

LOAD = """
function hook_load(ctx)
  local content, err = pando_load_file(ctx.path)
  return {content = content, err = err}
end
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    wd = tmp_path / "project"
    (wd / "sub").mkdir(parents=True)
    (wd / "README.md").write_text("hello ✓\n", encoding="utf-8")
    (wd / "sub" / "notes.txt").write_text("notes", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("top secret", encoding="utf-8")
    return wd


@pytest.mark.parametrize(
    ("path", "content"),
    [("README.md", "hello ✓\n"), ("sub/notes.txt", "notes"), ("./sub/../README.md", "hello ✓\n")],
)
def test_load_file_inside_workdir(path: str, content: str, workdir: Path, make_engine) -> None:
    engine = make_engine(LOAD, helpers=LuaHelpers(workdir=workdir))
    assert engine.call_hook("load", {"path": path}) == {"content": content}


def test_load_file_absolute_path_inside_workdir(workdir: Path, make_engine) -> None:
    engine = make_engine(LOAD, helpers=LuaHelpers(workdir=workdir))
    assert engine.call_hook("load", {"path": str(workdir / "README.md")}) == {"content": "hello ✓\n"}


@pytest.mark.parametrize(
    ("make_path", "fragment"),
    [
        (lambda wd: "../secret.txt", "outside the working directory"),
        (lambda wd: "sub/../../secret.txt", "outside the working directory"),
        (lambda wd: str(wd.parent / "secret.txt"), "outside the working directory"),
        (lambda wd: "/etc/passwd", "outside the working directory"),
        (lambda wd: "link_out", "outside the working directory"),
        (lambda wd: "sub/dirlink/secret.txt", "outside the working directory"),
        (lambda wd: "missing.txt", "no such file"),
        (lambda wd: "sub", "not a regular file"),
        (lambda wd: "big.bin", "larger than"),
        (lambda wd: "", "non-empty string"),
        (lambda wd: "a\x00b", "invalid path"),
    ],
    ids=["dotdot", "nested_dotdot", "absolute_outside", "etc_passwd", "symlink_out", "dir_symlink_out", "missing",
         "directory", "too_big", "empty", "nul"],
)  # fmt: skip
def test_load_file_refusals(make_path, fragment: str, workdir: Path, make_engine) -> None:
    (workdir / "link_out").symlink_to(workdir.parent / "secret.txt")
    (workdir / "sub" / "dirlink").symlink_to(workdir.parent, target_is_directory=True)
    (workdir / "big.bin").write_bytes(b"x" * 2048)
    engine = make_engine(LOAD, helpers=LuaHelpers(workdir=workdir, max_file_size=1024))
    out = engine.call_hook("load", {"path": make_path(workdir)})
    assert "content" not in out
    assert fragment in out["err"]
    assert "top secret" not in str(out)


def test_load_file_symlink_inside_workdir_is_allowed(workdir: Path, make_engine) -> None:
    (workdir / "link_in").symlink_to(workdir / "sub" / "notes.txt")
    engine = make_engine(LOAD, helpers=LuaHelpers(workdir=workdir))
    assert engine.call_hook("load", {"path": "link_in"}) == {"content": "notes"}


def test_load_file_non_string_argument(workdir: Path, make_engine) -> None:
    engine = make_engine(
        "function hook_x(ctx) local c, e = pando_load_file(42) return {e = e} end",
        helpers=LuaHelpers(workdir=workdir),
    )
    assert "non-empty string" in engine.call_hook("x", {})["e"]


def test_get_config_dotted_lookup_and_secret_redaction(make_engine) -> None:
    config = {
        "working_dir": "/w",
        "debug": True,
        "lua": {"timeout": 1.5, "scripts": ["a.lua"]},
        "providers": {"openai": {"api_key": "sk-123", "model": "gpt"}, "anthropic": {"token": "t"}},
        "path": Path("/p"),
    }
    engine = make_engine(
        """
        function hook_x(ctx)
          return {
            wd = pando_get_config("working_dir"), debug = pando_get_config("debug"),
            timeout = pando_get_config("lua.timeout"), scripts = pando_get_config("lua.scripts"),
            missing = pando_get_config("nope.deeper"), key = pando_get_config("providers.openai.api_key"),
            providers = pando_get_config("providers"), path = pando_get_config("path"),
          }
        end
        """,
        helpers=LuaHelpers(config=config),
    )
    out = engine.call_hook("x", {})
    assert out == {
        "wd": "/w",
        "debug": True,
        "timeout": 1.5,
        "scripts": ["a.lua"],
        "providers": {"openai": {"model": "gpt"}, "anthropic": {}},
        "path": "/p",
    }


def test_list_tools_and_mcp_servers(make_engine) -> None:
    engine = make_engine(
        "function hook_x(ctx) return {tools = pando_list_tools(), servers = pando_list_mcp_servers()} end",
        helpers=LuaHelpers(tools=lambda: ["bash", "view"], mcp_servers=("github",)),
    )
    assert engine.call_hook("x", {}) == {"tools": ["bash", "view"], "servers": ["github"]}
    empty = make_engine("function hook_x(ctx) return {tools = pando_list_tools()} end")
    assert empty.call_hook("x", {}) == {"tools": []}


def test_log_and_print_go_to_the_logger(make_engine, caplog) -> None:
    engine = make_engine(
        "function hook_x(ctx) pando_log('error', 'bad ' .. ctx.n) pando_log('debug', 'dbg') "
        "print('hello', 1, nil, true) pando_log('weird', {}) end",
        name="logging.lua",
    )
    with caplog.at_level(logging.DEBUG, logger="pando_lua"):
        engine.call_hook("x", {"n": 3})
    messages = {(r.levelno, r.getMessage()) for r in caplog.records}
    assert (logging.ERROR, "lua[logging.lua]: bad 3") in messages
    assert (logging.DEBUG, "lua[logging.lua]: dbg") in messages
    assert (logging.INFO, "lua[logging.lua]: hello\t1\tnil\ttrue") in messages
    assert any(level == logging.INFO and "table:" in msg for level, msg in messages)


def test_custom_helpers_override_defaults(make_engine) -> None:
    logged: list[tuple[str, str]] = []

    def load_file(path: str) -> str:
        if path == "deny":
            raise HelperRefusal("denied by policy")
        return f"<{path}>"

    helpers = LuaHelpers(
        get_config=lambda key: {"key": key},
        get_git_status=lambda: {"is_repo": True, "branch": "main"},
        load_file=load_file,
        list_tools=lambda: ["t1"],
        log=lambda level, msg: logged.append((level, msg)),
    )
    engine = make_engine(
        "function hook_x(ctx) local c, e = pando_load_file('deny') pando_log('warn', 'w') return {"
        "cfg = pando_get_config('a.b'), git = pando_get_git_status(), file = pando_load_file('f'), err = e,"
        "tools = pando_list_tools()} end",
        name="custom.lua",
        helpers=helpers,
    )
    assert engine.call_hook("x", {}) == {
        "cfg": {"key": "a.b"},
        "git": {"is_repo": True, "branch": "main"},
        "file": "<f>",
        "err": "denied by policy",
        "tools": ["t1"],
    }
    assert logged == [("warn", "custom.lua: w")]


def test_helper_exception_is_a_catchable_lua_error(make_engine) -> None:
    def broken(key: str) -> None:
        raise RuntimeError("backend down")

    engine = make_engine(
        "function hook_x(ctx) local ok, e = pcall(pando_get_config, 'x') return {ok = ok, e = e} end\n"
        "function hook_y(ctx) pando_get_config('x') end\n",
        helpers=LuaHelpers(get_config=broken),
        strict=True,
    )
    assert engine.call_hook("x", {}) == {"ok": False, "e": "pando_get_config: backend down"}
    with pytest.raises(Exception, match="backend down"):
        engine.call_hook("y", {})


GIT = "function hook_git(ctx) return pando_get_git_status() end"


def test_git_status_outside_a_repository(tmp_path: Path, make_engine, monkeypatch) -> None:
    env_guard = tmp_path / "not_a_repo"
    env_guard.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    engine = make_engine(GIT, helpers=LuaHelpers(workdir=env_guard))
    out = engine.call_hook("git", {})
    assert out["is_repo"] is False and out["working_dir"] == str(env_guard.resolve())


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_status_in_a_repository(tmp_path: Path, make_engine) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    run = {"cwd": repo, "check": True, "capture_output": True}
    subprocess.run(["git", "init", "-q", "-b", "main"], **run)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "i"],
        **run,
    )
    (repo / "new file.txt").write_text("x")
    (repo / "staged.txt").write_text("y")
    subprocess.run(["git", "add", "staged.txt"], **run)
    engine = make_engine(GIT, helpers=LuaHelpers(workdir=repo))
    out = engine.call_hook("git", {})
    assert out["is_repo"] is True and out["branch"] == "main" and out["clean"] is False
    files = {f["path"]: f["status"] for f in out["files"]}
    assert files == {"new file.txt": "??", "staged.txt": "A "}


def test_git_status_parser_handles_renames_and_branch_info() -> None:
    from pando_lua.helpers import _parse_porcelain

    out = _parse_porcelain(b"## dev...origin/dev [ahead 2, behind 1]\0R  new.py\0old.py\0 M x.py\0", "/w")
    assert out["branch"] == "dev" and out["upstream"] == "origin/dev"
    assert out["ahead"] == 2 and out["behind"] == 1
    assert out["files"] == [
        {"status": "R ", "index": "R", "worktree": " ", "path": "new.py", "orig_path": "old.py"},
        {"status": " M", "index": " ", "worktree": "M", "path": "x.py"},
    ]
    detached = _parse_porcelain(b"## HEAD (no branch)\0", "/w")
    assert detached["detached"] is True and detached["clean"] is True


@pytest.mark.parametrize(
    "path",
    [".pando.toml", ".pando.json", ".pando/auth/client.key", ".pando/pando.db", "./sub/../.pando.toml", "home_config"],
)
def test_load_file_refuses_pandos_own_files_and_config_files(path: str, workdir: Path, make_engine, monkeypatch) -> None:
    """pando_get_config hides secrets, so the files holding them are not readable either (issue 19 #10)."""
    (workdir / ".pando.toml").write_text('[providers.x]\napi_key = "sk-SECRET"\n')
    (workdir / ".pando.json").write_text('{"providers": {"x": {"api_key": "sk-SECRET"}}}')
    (workdir / ".pando" / "auth").mkdir(parents=True)
    (workdir / ".pando" / "auth" / "client.key").write_text("sk-SECRET key")
    (workdir / ".pando" / "pando.db").write_text("sk-SECRET db")
    # the user's own config, reached through a symlink inside the working directory
    user_config = workdir.parent / "xdg" / "pando" / "config.toml"
    user_config.parent.mkdir(parents=True)
    user_config.write_text('api_key = "sk-SECRET"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(workdir.parent / "xdg"))
    (workdir / "home_config").symlink_to(user_config)
    engine = make_engine(LOAD, helpers=LuaHelpers(workdir=workdir))
    out = engine.call_hook("load", {"path": path})
    assert "content" not in out
    assert "sk-SECRET" not in str(out)
    assert "not readable from Lua" in out["err"] or "outside the working directory" in out["err"]
    assert engine.call_hook("load", {"path": "README.md"}) == {"content": "hello ✓\n"}
