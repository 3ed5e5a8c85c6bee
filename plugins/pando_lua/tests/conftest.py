from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pando_lua.engine import LuaEngine


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[Callable[..., LuaEngine]]:
    """make_engine(code=None, *, name=None, scripts=(), **engine_kwargs) -> LuaEngine (closed after the test)."""
    engines: list[LuaEngine] = []
    counter = itertools.count()

    def make(code: str | None = None, *, name: str | None = None, scripts: Any = (), **kw: Any) -> LuaEngine:
        paths: list[Path] = []
        if code is not None:
            path = tmp_path / (name or f"script{next(counter)}.lua")
            path.write_text(code, encoding="utf-8")
            paths.append(path)
        paths.extend(Path(s) for s in scripts)
        engine = LuaEngine(paths, **kw)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


def hook_script(body: str, name: str = "x") -> str:
    """A script defining hook_<name>(ctx) with ``body``."""
    return f"function hook_{name}(ctx)\n{body}\nend\n"
