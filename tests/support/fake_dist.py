"""Make a plugin 'installed' for a subprocess without pip: a real *.dist-info with entry points.

importlib.metadata discovers distributions on sys.path through their dist-info directories, so
putting such a directory (and the plugin's module) on PYTHONPATH is a real installation as far
as entry-point discovery is concerned.
"""

from __future__ import annotations

from pathlib import Path


def make_distribution(root: Path, dist_name: str, version: str, entry_points: dict[str, str], modules: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    info = root / f"{dist_name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: {version}\n")
    lines = ["[pando.plugins]"] + [f"{name} = {target}" for name, target in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source)
    return root
