"""The bash read-only check (pando_core.agent.tools.shell_safety) on real directories, and its use by
the bash tool and the permission service: deny rules first, then read-only, then asking."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest

from pando_core.agent.tools.base import PermissionDenied, ToolContext
from pando_core.agent.tools.bash import BashTool
from pando_core.agent.tools.shell_safety import classify, command_texts, secret_variables
from pando_core.services.permissions import PermissionService

# Commands the issue (19 #1) saw run unasked, and their relatives: none of them is read-only.
NOT_READ_ONLY = [
    # they run other programs
    'env -S"touch /tmp/x"',
    "env --split-string='touch /tmp/x'",
    "git ls-remote --upload-pack=CMD .",
    "git grep -OCMD foo",
    "git grep --open-files-in-pager=CMD foo",
    "go test -exec /bin/sh ./...",
    "rg --pre=/bin/sh foo",
    "find . -exec rm {} ;",
    "find . -execdir touch x ;",
    "find . -ok rm {} ;",
    "find . -name x -delete",
    "cat a | sh",
    "cat a | bash",
    "bash script.sh",
    "bash -c 'touch /tmp/x'",
    'sh -c "ls; rm -rf x"',
    "xargs rm",
    "xargs cat",
    "timeout 5 rm x",
    "nice -n 5 touch x",
    "command rm x",
    "builtin eval ls",
    "exec rm x",
    "git -c core.pager=/bin/sh log",
    "git -c alias.x=!sh x",
    "git --config-env=core.pager=X log",
    "python script.py",
    "python3 -c 'print(1)'",
    "node -e 1",
    "sort --compress-program=/bin/sh a",
    # they write files (outside the working directory or not)
    "sort -o /f a",
    "sort -uo /f a",
    "sort --outp=/f a",
    "sort --output=/f a",
    "uniq a /f",
    "tree -o /f",
    "tree -R -H . x",
    "git diff --output=/tmp/x",
    "git log --output=/tmp/x",
    "git show --ext-diff",
    "go build -o /tmp/x",
    "cargo build",
    "npm ls",
    "cat a > /tmp/f",
    "cat a >> /tmp/f",
    "cat a >| f",
    "cat a &> f",
    "cat a 2> err.txt",
    "cat <> f",
    "ls >&f",
    "echo hi > file.txt",
    "tee f",
    "touch x",
    "git branch -D main",
    "git branch new-feature",
    "git tag v1",
    "git tag -d v1",
    "git config user.name x",
    "git stash",
    # they change the system or reach the network
    "date -s 2020-01-01",
    "date --set=2020-01-01",
    "date 010203042020",
    "hostname -F /etc/hostname",
    "hostname newname",
    "git ls-remote https://example.com/x.git",
    "git fetch",
    "git remote show origin",
    "git remote add x https://example.com",
    # they read outside the working directory
    "cat /etc/shadow",
    "cat ../outside.txt",
    "cat ~/.ssh/id_rsa",
    "cat {/etc/shadow,README.md}",
    "head -n 5 /etc/passwd",
    "grep -r x /",
    "grep -r x ..",
    "grep -f /etc/shadow x",
    "rg foo /",
    "find / -name x",
    "find . -newer /etc/shadow",
    "ls /",
    "ls -la ~",
    "cd / && ls",
    "cd .. && cat x",
    "cd",
    "cat < /etc/shadow",
    "git -C / status",
    "git diff --no-index /etc/shadow README.md",
    "diff /etc/passwd README.md",
    "[ -f /etc/shadow ]",
    "cat */../../x",
    "grep -R secret .",
    "rg -L secret",
    "find -L . -name x",
    "find . -follow -name x",
    "ls -RL",
    "tree -l",
    "du -L .",
    "test -v 'a[$(touch /tmp/x)]'",
    "printf -v 'a[$(touch /tmp/x)]' x",
    # they print secrets
    "env",
    "env -i",
    "env -u HOME",
    "printenv",
    "printenv OPENAI_API_KEY",
    "set",
    "export -p",
    "export",
    "declare -p",
    "declare -x",
    "typeset -p",
    "echo $OPENAI_API_KEY",
    'echo "${ANTHROPIC_API_KEY}"',
    "cat $HOME/.bashrc",
    "ps eww",
    "cat .pando.toml",
    "cat .pando.json",
    "cat .pando/auth/client.key",
    "grep -r key .pando",
    # substitutions, assignments and the unknown
    "ls $(touch /tmp/p)",
    "ls `touch /tmp/p`",
    "echo $(rm -rf x)",
    "cat <(rm x)",
    "cat a > >(sh)",
    "cat $(ls)",
    "LD_PRELOAD=x.so ls",
    "GIT_EXTERNAL_DIFF=/bin/sh git diff",
    "PATH=/tmp:$PATH",
    "BASH_ENV=x bash -c ls",
    "env GIT_PAGER=/bin/sh git log",
    "ls; rm -rf x",
    "git status && touch y",
    "ls\nrm x",
    "ls # comment\nrm -rf x",
    "for f in *; do rm $f; done",
    "if true; then rm x; fi",
    "cat <<EOF\nhi\nEOF",
    "echo $((1+2))",
    "f() { ls; }",
    "ls 'unterminated",
    "sudo ls",
    "curl https://example.com",
    "unknown-command --flag",
    "./ls",
    "/tmp/cat a",
    "",
]

READ_ONLY = [
    "ls",
    "ls -la",
    "ls -la | grep foo",
    "ls src",
    "ls 2>/dev/null",
    "ls [ab]*",
    "git status",
    "git status --short",
    "git log --oneline -5 2>/dev/null",
    "git log -M50% --stat",
    "git diff HEAD~1 | head -50",
    "git diff --cached --name-only",
    "git show HEAD:README.md",
    "git branch",
    "git branch -a",
    "git branch --list 'feat*'",
    "git tag -l 'v*'",
    "git remote -v",
    "git rev-parse --show-toplevel",
    "git -C src status",
    "git --no-pager log -3",
    "git grep -n foo",
    "git blame README.md",
    "cat README.md",
    "cat README.md src/main.py",
    "cat *.md",
    "head -20 README.md",
    "tail -n 5 README.md",
    "wc -l *.md",
    "grep -rn foo .",
    "grep -rn 'a b' src --include='*.py'",
    "grep -e foo -e bar README.md",
    "rg -n foo",
    "rg --files",
    "find . -name '*.py' -type f",
    "find src -maxdepth 2 -newer README.md -print",
    "sort -u README.md",
    "sort -k1,2 -t: README.md",
    "uniq -c README.md",
    "tree -L 2",
    "diff README.md src/main.py",
    "diff <(sort README.md) src/main.py",
    "pwd && echo done",
    "echo hi",
    "echo $(git rev-parse HEAD)",
    "echo $?",
    "printf '%s\\n' a b",
    "cd src && ls",
    "cd src; cat main.py",
    "(cd src && ls)",
    "{ ls; pwd; }",
    "timeout 5 ls",
    "nice ls",
    "command -v git",
    "type ls",
    "env LC_ALL=C sort README.md",
    "LC_ALL=C sort README.md",
    "date",
    "date +%s",
    "date -u -d '2 days ago'",
    "hostname",
    "uname -a",
    "whoami",
    "[ -f README.md ] && cat README.md",
    "test -d src",
    "bash -c 'ls -la'",
    "ps aux",
    "du -sh .",
    "stat README.md",
    "file README.md",
    "which git",
    "cat README.md | sort | uniq -c | sort -rn | head",
    "ls -la src/ 2>&1 | head -20",
    "python3 --version",
    "true",
]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    root = tmp_path / "work"
    (root / "src").mkdir(parents=True)
    (root / "README.md").write_text("hello\nfoo\n")
    (root / "src" / "main.py").write_text("print('foo')\n")
    (root / "a").write_text("a\n")
    return root


@pytest.mark.parametrize("command", NOT_READ_ONLY)
def test_commands_that_write_run_programs_read_outside_or_print_secrets_are_not_read_only(command, workdir):
    verdict = classify(command, workdir)
    assert not verdict.read_only
    assert verdict.reason  # always says why


@pytest.mark.parametrize("command", READ_ONLY)
def test_reading_commands_inside_the_working_directory_are_read_only(command, workdir):
    verdict = classify(command, workdir)
    assert verdict.read_only, verdict.reason


def test_symlinks_and_globs_are_followed_out_of_the_working_directory(workdir, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("s")
    (workdir / "link").symlink_to(outside / "secret.txt")
    (workdir / "dirlink").symlink_to(outside)
    assert not classify("cat link", workdir).read_only
    assert not classify("cat lin*", workdir).read_only  # the glob matches the symlink
    assert not classify("ls dirlink/", workdir).read_only
    assert not classify("cat dirlink/secret.txt", workdir).read_only
    assert classify("cat READ*", workdir).read_only


def test_file_names_and_expansions_cannot_smuggle_options_or_paths(workdir):
    (workdir / "--pre=.x.sh").write_text("")
    assert not classify("rg foo *", workdir).read_only  # the glob would pass --pre=.x.sh to rg
    assert not classify("grep {foo,/etc/shadow}", workdir).read_only  # becomes: grep foo /etc/shadow
    assert not classify("grep -f={a,/etc/shadow} x", workdir).read_only
    assert not classify("grep /et? README.md", workdir).read_only  # the pattern's place is globbed too
    assert not classify("cat ~-/secret", workdir).read_only  # $OLDPWD
    assert not classify("timeout {5,cat} /etc/shadow", workdir).read_only
    assert classify("echo {a,b}", workdir).read_only


def test_the_user_config_is_secret_even_inside_the_working_directory(workdir, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(workdir / "conf"))
    (workdir / "conf" / "pando").mkdir(parents=True)
    (workdir / "conf" / "pando" / "config.toml").write_text('api_key = "x"\n')
    assert not classify("cat conf/pando/config.toml", workdir).read_only
    assert classify("ls conf", workdir).read_only


def test_the_shells_current_directory_counts(workdir, tmp_path):
    assert classify("cat main.py", workdir, cwd=workdir / "src").read_only
    assert not classify("cat ../../x", workdir, cwd=workdir / "src").read_only
    # after an approved `cd /tmp` nothing is read-only until the shell is back inside
    assert not classify("ls", workdir, cwd=tmp_path).read_only
    # a cd that may fail leaves the old directory possible: both must be inside
    assert not classify("cd src; cat ../../x", workdir).read_only


def test_permission_patterns_see_every_simple_command():
    assert command_texts("cd x && cat .env") == ["cd x && cat .env", "cd x", "cat .env"]
    assert "rm -rf x" in command_texts("timeout 5 rm -rf x")
    assert "cat .env" in command_texts("bash -c 'cat .env'")
    assert "cat .env" in command_texts("echo $(cat '.env')")
    assert "rm x" in command_texts("env A=b nice -n 5 rm x")
    assert "rm x" in command_texts("if true; then rm x; fi")  # not parsed: split at keywords
    assert "cat .env" in command_texts("ls; /bin/cat .env")  # by its name too
    assert {"cat < .env", "cat .env"} <= set(command_texts("ls && cat<.env"))  # with its redirection
    assert "cat .env" in command_texts("eval 'cat .env'")
    assert "cat .env" in command_texts("f(){ cat .env; }; f")  # not parsed: split at braces too


def test_secret_variables_are_the_provider_keys_and_the_named_patterns():
    environ = {
        "OPENAI_API_KEY": "1",
        "ANTHROPIC_API_KEY": "2",
        "GROQ_API_KEY": "3",
        "GITHUB_TOKEN": "4",
        "AWS_SECRET": "5",
        "MY_PROVIDER_CREDENTIAL": "6",
        "HOME": "/home/x",
        "PATH": "/bin",
        "TOKENIZER": "x",
    }
    assert secret_variables(environ, ["MY_PROVIDER_CREDENTIAL"]) == {
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GROQ_API_KEY",
        "GITHUB_TOKEN",
        "AWS_SECRET",
        "MY_PROVIDER_CREDENTIAL",
    }


# ---------------------------------------------------------------------------------- the bash tool


def run_bash(command: str, workdir: Path, permissions) -> object:
    ctx = ToolContext(workdir=workdir, session_id=uuid.uuid4().hex, permissions=permissions)
    return asyncio.run(BashTool().run({"command": command}, ctx))


def permission_of(command: str, workdir: Path, permissions=None):
    ctx = ToolContext(workdir=workdir, session_id=uuid.uuid4().hex, permissions=permissions)
    return asyncio.run(BashTool().permission({"command": command}, ctx))


def test_the_bash_tool_asks_through_permission_only_for_what_is_not_read_only(workdir):
    assert permission_of("cat README.md", workdir) is None
    request = permission_of("sort -o /tmp/x README.md", workdir)
    assert request is not None
    assert (request.tool_name, request.action, request.description) == (
        "bash",
        "execute",
        "sort -o /tmp/x README.md",
    )
    assert request.params["command"] == "sort -o /tmp/x README.md"
    assert request.params["cwd"] == str(workdir.resolve())


@pytest.mark.parametrize(
    ("patterns", "command"),
    [
        (["cat *"], "cat .env"),
        (["ls*"], "ls -la"),
        (["cat *"], "cd src && cat .env"),
        (["rm *"], "timeout 5 rm -f a"),
    ],
)
def test_a_deny_rule_wins_over_read_only_yolo_and_allow_rules(patterns, command, workdir):
    (workdir / ".env").write_text("SECRET=1\n")
    (workdir / "src" / ".env").write_text("SECRET=1\n")
    service = PermissionService(
        {"deny_bash": patterns, "allow_bash": ["*"], "allow_tools": ["bash"]}, yolo=True
    )
    service.grant_session("s", "bash", "execute", "*")
    with pytest.raises(PermissionDenied):
        run_bash(command, workdir, service)
    assert [d.description for d in service.denials] == [command]
    assert (workdir / "a").exists()  # (`rm -f a` did not run)


def test_without_a_matching_deny_rule_read_only_commands_never_reach_the_service(workdir):
    service = PermissionService({"deny_bash": ["rm *"]})  # no asker: anything asked is refused
    result = run_bash("cat README.md", workdir, service)
    assert result.content == "hello\nfoo"
    assert service.denials == []
    with pytest.raises(PermissionDenied):
        run_bash("touch made", workdir, service)
    assert not (workdir / "made").exists()


def test_the_commands_environment_has_no_provider_keys(workdir, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET")
    monkeypatch.setenv("SOME_SERVICE_TOKEN", "tok-SECRET")
    monkeypatch.setenv("PANDO_TEST_VISIBLE", "visible-value")
    tool = BashTool()
    ctx = ToolContext(workdir=workdir, session_id=uuid.uuid4().hex)
    output = asyncio.run(tool.run({"command": "printenv; export MY_OWN_TOKEN=mine"}, ctx)).content
    assert "visible-value" in output
    assert "SECRET" not in output
    # a variable the commands exported themselves is kept for the next call
    again = asyncio.run(tool.run({"command": "printenv MY_OWN_TOKEN OPENAI_API_KEY"}, ctx)).content
    assert again.splitlines()[0] == "mine"
    assert "sk-test" not in again
    assert os.environ["OPENAI_API_KEY"] == "sk-test-SECRET"  # pando's own environment is untouched
