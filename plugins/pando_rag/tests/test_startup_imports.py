"""`pando --version`, `pando plugins` and `pando rag --help` with pando-rag selected import none of
its heavy libraries (chromadb, wordllama, tree-sitter, numpy, httpx, watchfiles)."""

import subprocess
import sys

HEAVY = {"chromadb", "wordllama", "tree_sitter", "numpy", "httpx", "watchfiles", "onnxruntime"}


def _imported(env, *args):
    code = (
        "import sys\nfrom pando_core.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\nfinally:\n    print('MODULES:' + ','.join(sys.modules), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120)
    line = [row for row in result.stderr.splitlines() if row.startswith("MODULES:")][-1]
    return result, {name.split(".")[0] for name in line[len("MODULES:") :].split(",")}


def test_startup_commands_import_nothing_heavy(pando_env, pando_workdir):
    env = {**pando_env, "PANDO_PLUGINS__ENABLED": '["rag"]'}
    for args in (("--version",), ("--plugins", "rag", "plugins"), ("--plugins", "rag", "rag", "--help")):
        result, modules = _imported(env, *args)
        assert not modules & HEAVY, f"pando {' '.join(args)} imported {sorted(modules & HEAVY)}"
    result, _ = _imported(env, "--plugins", "rag", "plugins")
    assert "rag" in result.stdout and "error" not in result.stdout.lower()
    result, _ = _imported(env, "--plugins", "rag", "rag", "--help")
    assert "kb" in result.stdout and "code" in result.stdout
