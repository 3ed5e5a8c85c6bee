"""Every hookspec is documented for plugin authors and actually called by the core (datasette style)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import pando_core
from pando_core import hookspecs

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "plugin-hooks.md").read_text(encoding="utf-8")
HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("pando_"))
CORE_SOURCES = {
    path: path.read_text(encoding="utf-8")
    for path in Path(pando_core.__file__).parent.rglob("*.py")
    if path.name != "hookspecs.py" and "testing" not in path.parts
}


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook):
    assert f"### `{hook}`" in DOC, f"{hook} is missing from docs/plugin-hooks.md"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_called_by_the_core(hook):
    # call sites name hooks through their caller objects: plugins.hooks.<name>(...) / .acall / .flat
    pattern = re.compile(rf"\bhooks\.{hook}\b")
    callers = [path for path, text in CORE_SOURCES.items() if pattern.search(text)]
    assert callers, f"the core never calls {hook}"


def test_hooks_are_never_called_by_string_name():
    pattern = re.compile(r"""\.(call|call_sync|acall|flat|pipeline|apipeline)\(\s*["']pando_""")
    offenders = [str(path) for path, text in CORE_SOURCES.items() if pattern.search(text)]
    assert offenders == []


TEST_SOURCES = "\n".join(path.read_text(encoding="utf-8") for path in (ROOT / "tests").rglob("test_*.py"))


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_test_of_its_own(hook):
    assert re.search(rf"^def test_hook_{hook}\(", TEST_SOURCES, flags=re.M), f"no test_hook_{hook} in tests/"


def test_documented_hooks_exist():
    documented = set(re.findall(r"^### `(pando_\w+)`", DOC, flags=re.M))
    assert documented == set(HOOKS)


def test_doc_examples_are_valid_python():
    blocks = re.findall(r"```python\n(.*?)```", DOC, flags=re.S)
    assert len(blocks) > len(HOOKS)
    for block in blocks:
        ast.parse(block)


def test_every_hookspec_has_a_docstring_saying_when():
    for hook in HOOKS:
        doc = getattr(hookspecs, hook).__doc__ or ""
        assert doc.strip(), hook
        assert "When:" in doc, f"{hook}: say when it is called"
        assert "Returns" in doc or "Returns nothing" in doc or "Return" in doc, f"{hook}: say what it returns"


def test_hook_docs_are_in_sync_with_the_docstrings():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "sync_hook_docs.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
