"""Installing skills from a local directory, a git repository or the skills.sh catalog; lock file; scaffold."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from .catalog import CatalogClient, CatalogSkill
from .config import SCOPES
from .discovery import find_skill_files, standard_roots
from .errors import CatalogError, InstallError, SkillParseError
from .model import SKILL_FILE, STAGING_PREFIX, Skill, name_problem, path_inside
from .parser import parse_skill

LOCK_FILE = "skills-lock.json"
LOCK_VERSION = 1
GIT_TIMEOUT = 120.0
_URL = re.compile(r"^(?:https?|ssh|git|file)://|^[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+:", re.IGNORECASE)


@dataclass
class InstalledSkill:
    name: str
    path: Path  # the installed skill directory
    scope: str
    source: str  # as given by the user (local paths made absolute)
    source_type: str  # "local" | "git" | "catalog"
    checksum: str  # sha256 of the installed tree (see tree_checksum)
    installed_at: str  # ISO 8601, UTC
    url: str | None = None  # the git URL cloned
    subdir: str = ""  # directory of the skill inside the source
    commit: str | None = None  # resolved git commit
    catalog_id: str | None = None
    replaced: bool = False  # an existing installation was replaced (force)
    notes: list[str] = field(default_factory=list)

    def lock_entry(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "source_type": self.source_type,
            "url": self.url,
            "subdir": self.subdir,
            "commit": self.commit,
            "catalog_id": self.catalog_id,
            "scope": self.scope,
            "checksum": self.checksum,
            "installed_at": self.installed_at,
        }


# --------------------------------------------------------------------------------------------- locations


def check_scope(scope: str, what: str = "scope") -> str:
    """`scope` when it is one of SCOPES; else an InstallError naming `what` (the CLI says "--scope")."""
    if scope not in SCOPES:
        raise InstallError(f"{what} must be 'project' or 'global', got {scope!r}")
    return scope


def skills_root(scope: str, workdir: Path | str = ".", home: Path | str | None = None) -> Path:
    """`<wd>/.agents/skills` (project) or `~/.pando/skills` (global): the first discovery root of that label."""
    scope = check_scope(scope)
    return next(root for label, root in standard_roots(workdir, home) if label == scope)


def _check_name(name: str) -> str:
    problem = name_problem(name)
    if problem:
        raise InstallError(problem)
    return name


# --------------------------------------------------------------------------------------------- checksum


def tree_checksum(path: Path | str) -> str:
    """sha256 (hex) over the sorted relative paths of a directory tree, each with the sha256 of its content
    (or its link target for a symlink) and its executable bit."""
    root = Path(path)
    digest = hashlib.sha256()
    entries: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for name in dirnames:
            if (base / name).is_symlink():
                entries.append(base / name)  # os.walk does not enter symlinked directories
        entries.extend(base / name for name in filenames)
    for entry in sorted(entries, key=lambda p: p.relative_to(root).as_posix()):
        rel = entry.relative_to(root).as_posix().encode("utf-8")
        if entry.is_symlink():
            digest.update(b"L\0" + rel + b"\0" + os.readlink(entry).encode("utf-8") + b"\n")
            continue
        file_hash = hashlib.sha256()
        with entry.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 16), b""):
                file_hash.update(chunk)
        mode = b"x" if os.access(entry, os.X_OK) else b"-"
        digest.update(b"F\0" + rel + b"\0" + mode + file_hash.hexdigest().encode() + b"\n")
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------- lock file


def lock_path(root: Path) -> Path:
    return root / LOCK_FILE


def read_lock(root: Path) -> dict[str, Any]:
    """The lock document of a skills root: {"version": 1, "skills": {name: entry}} (empty when absent)."""
    path = lock_path(root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"version": LOCK_VERSION, "skills": {}}
    except OSError as exc:
        raise InstallError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InstallError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); fix or delete it"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("skills", {}), dict):
        raise InstallError(f"{path} does not look like a skills lock file; fix or delete it")
    data.setdefault("version", LOCK_VERSION)
    data.setdefault("skills", {})
    return data


def write_lock(root: Path, data: dict[str, Any]) -> None:
    from pando_core.fsutil import atomic_write

    root.mkdir(parents=True, exist_ok=True)
    atomic_write(lock_path(root), (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"), 0o600)


def verify(
    name: str, scope: str = "project", workdir: Path | str = ".", home: Path | str | None = None
) -> bool | None:
    """True when an installed skill still matches its lock checksum, False when modified, None when unknown."""
    root = skills_root(scope, workdir, home)
    entry = read_lock(root)["skills"].get(name)
    target = root / name
    if not isinstance(entry, dict) or not entry.get("checksum") or not target.is_dir():
        return None
    return tree_checksum(target) == entry["checksum"]


# --------------------------------------------------------------------------------------------- sources


@dataclass
class _Source:
    kind: str  # "local" | "git" | "catalog"
    location: str  # directory, git URL, or catalog id
    subdir: str = ""
    ref: str = ""  # branch or tag to clone (GitHub /tree/<ref>/ URLs)


_GITHUB_TREE = re.compile(r"^(https://github\.com/[^/]+/[^/]+?)(?:\.git)?/(?:tree|blob)/([^/]+)(?:/(.*))?$")


def _clean_subdir(subdir: str, source: str) -> str:
    subdir = subdir.strip().replace("\\", "/").strip("/")
    if not subdir or subdir == ".":
        return ""
    parts = PurePosixPath(subdir).parts
    if ".." in parts or subdir.startswith("~"):
        raise InstallError(f"subdirectory {subdir!r} of {source} escapes the source")
    return "/".join(p for p in parts if p != ".")


def _split_subdir(source: str) -> tuple[str, str]:
    """`url#sub` or `url//sub` → (url, sub)."""
    if "#" in source:
        base, sub = source.rsplit("#", 1)
        return base, sub
    scheme = source.find("://")
    start = scheme + 3 if scheme >= 0 else 0
    if source.startswith("file:///"):
        start = len("file:///")
    index = source.find("//", start)
    if index > 0:
        return source[:index], source[index + 2 :]
    return source, ""


def _is_git_repo(path: Path) -> bool:
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


def parse_source(source: str, workdir: Path | str = ".") -> _Source:
    """Classify an install source: an existing local directory (or SKILL.md), a git URL / local git
    repository path with optional `#subdir` or `//subdir`, or else a catalog id."""
    text = source.strip()
    if not text:
        raise InstallError("install source is empty")
    workdir = Path(workdir).expanduser().absolute()

    def local(raw: str) -> Path:
        candidate = Path(raw).expanduser()
        return candidate if candidate.is_absolute() else workdir / candidate

    whole = local(text)
    if not _URL.match(text) and whole.exists():
        if whole.is_file():
            if whole.name != SKILL_FILE:
                raise InstallError(f"{whole} is not a directory or a {SKILL_FILE} file")
            whole = whole.parent
        return _Source("local", str(whole.resolve()))
    tree = _GITHUB_TREE.match(text)
    if tree:  # a GitHub page URL: https://github.com/o/r/tree/<ref>/<dir> (or /blob/<ref>/<dir>/SKILL.md)
        sub = (tree.group(3) or "").rstrip("/")
        if sub == SKILL_FILE or sub.endswith("/" + SKILL_FILE):
            sub = sub[: -len(SKILL_FILE)]
        return _Source("git", tree.group(1) + ".git", _clean_subdir(sub, text), ref=tree.group(2))
    base, sub = _split_subdir(text)
    subdir = _clean_subdir(sub, text)
    if _URL.match(base):
        return _Source("git", base, subdir)
    base_path = local(base)
    if base_path.is_dir():
        if _is_git_repo(base_path):
            return _Source("git", str(base_path.resolve()), subdir)
        return _Source("local", str(base_path.resolve()), subdir)
    if text.startswith((".", "/", "~", "\\")):
        raise InstallError(f"source {text} does not exist")
    return _Source("catalog", text)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(OSError):
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover - non-POSIX
            proc.kill()


def _run_git(args: list[str], timeout: float, cwd: Path | None = None) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    try:
        proc = subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise InstallError("git is not installed (needed to install from a git repository)") from None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.communicate()
        raise InstallError(f"git {args[0]} timed out after {timeout:g}s") from None
    if proc.returncode != 0:
        lines = [line.strip() for line in err.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {proc.returncode}"
        raise InstallError(f"git {args[0]} failed: {reason}")
    return out


def _repo_name(url: str) -> str:
    tail = re.split(r"[/:\\]", url.rstrip("/\\"))[-1]
    tail = tail.removesuffix(".git")
    return tail if tail and name_problem(tail) is None else "repo"


@contextlib.contextmanager
def _git_checkout(url: str, timeout: float, ref: str = "") -> Iterator[tuple[Path, str | None]]:
    """Clone `url` (depth 1, branch/tag `ref` when given) into a temporary directory; yields
    (checkout dir, commit)."""
    with tempfile.TemporaryDirectory(prefix="pando-skill-") as tmp:
        dest = Path(tmp) / _repo_name(url)
        branch = ["--branch", ref] if ref else []
        _run_git(["clone", "--depth", "1", "--quiet", *branch, "--", url, str(dest)], timeout)
        try:
            commit = _run_git(["rev-parse", "HEAD"], timeout, cwd=dest).strip() or None
        except InstallError:
            commit = None
        yield dest, commit


# --------------------------------------------------------------------------------------------- selection


def _skills_in(base: Path) -> list[Path]:
    """Skill directories under `base`: itself when it holds a SKILL.md, else every skill folder below."""
    if (base / SKILL_FILE).is_file():
        return [base]
    return [path.parent for path in find_skill_files(base)]


def _parse_for_install(skill_dir: Path) -> Skill:
    try:
        return parse_skill(skill_dir / SKILL_FILE)
    except SkillParseError as exc:
        raise InstallError(f"cannot install: {exc}") from None


def _select(base: Path, source: str, wanted: str | None, single: bool = False) -> list[Skill]:
    """The skills to install from `base`: the one named `wanted`, else all of them (or, with `single`,
    the only one; several is an error listing them)."""
    if not base.is_dir():
        raise InstallError(f"{source}: directory not found")
    dirs = _skills_in(base)
    if not dirs:
        raise InstallError(f"{source}: no {SKILL_FILE} found")
    if wanted is None:
        if single and len(dirs) > 1:
            names = ", ".join(sorted(d.name for d in dirs)[:20])
            raise InstallError(
                f"{source} contains {len(dirs)} skills ({names}); choose one with --skill NAME or use --all"
            )
        return [_parse_for_install(d) for d in dirs]
    for skill_dir in dirs:
        try:
            skill = parse_skill(skill_dir / SKILL_FILE)
        except SkillParseError:
            if skill_dir.name == wanted:
                _parse_for_install(skill_dir)  # raises with the parse problem
            continue
        if wanted in (skill.name, skill_dir.name):
            return [skill]
    names = ", ".join(sorted(d.name for d in dirs)[:20])
    raise InstallError(f"{source}: no skill named {wanted!r} (found: {names})")


def _select_catalog(base: Path, entry: CatalogSkill) -> Skill:
    """Find the catalog skill inside its repository checkout: the catalog's `path` when given, else the
    spec's candidates `skills/<id>`, `<id>`, the repository root (when its name matches),
    `.agents/skills/<id>`, then any skill folder whose name or directory matches."""
    if entry.path:
        return _select(base / _clean_subdir(entry.path, entry.id), entry.id, None, single=True)[0]
    key = entry.skill_id or entry.name
    wanted = {key, entry.name}
    root_skill: Skill | None = None
    for candidate in (base / "skills" / key, base / key, base, base / ".agents" / "skills" / key):
        if (candidate / SKILL_FILE).is_file():
            skill = _parse_for_install(candidate)
            if candidate == base and skill.name not in wanted:
                root_skill = skill
                continue
            return skill
    for child in sorted(p for p in base.iterdir() if p.is_dir() and p.name != ".git"):
        for skill_file in find_skill_files(child):
            try:
                skill = parse_skill(skill_file)
            except SkillParseError:
                continue
            if skill.name in wanted or skill_file.parent.name in wanted:
                return skill
    if root_skill is not None:
        return root_skill
    raise InstallError(f"catalog skill {entry.id!r}: no {SKILL_FILE} for {key!r} in {entry.git_url}")


def _ensure_inside(skills: list[Skill], checkout: Path, source: str) -> list[Skill]:
    """Refuse skills of a cloned repository that resolve outside the checkout (symlinked directories)."""
    root = os.path.realpath(checkout)
    for skill in skills:
        if not path_inside(os.path.realpath(skill.root), root):
            raise InstallError(f"{source}: skill '{skill.name}' is a symlink leaving the repository")
    return skills


# --------------------------------------------------------------------------------------------- copy


def _copy_skill(src: Path, dst: Path) -> None:
    """Copy a skill directory. `.git` is left out; symlinked files inside the skill are copied as files;
    symlinked directories and links that point outside the skill are left out."""
    src_real = os.path.realpath(src)

    def ignore(directory: str, names: list[str]) -> list[str]:
        skipped = []
        for name in names:
            full = os.path.join(directory, name)
            if name == ".git":
                skipped.append(name)
            elif os.path.islink(full) and (
                os.path.isdir(full) or not path_inside(os.path.realpath(full), src_real)
            ):
                skipped.append(name)
        return skipped

    shutil.copytree(src, dst, symlinks=False, ignore=ignore)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _place(skill: Skill, root: Path) -> tuple[Path, str, bool]:
    """Copy `skill` into `root/<name>` atomically (staging dir + rename). Returns (dest, checksum, replaced)."""
    dest = root / skill.name
    replaced = os.path.lexists(dest)  # without `force`, _install_from has refused this
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=root))
    old: Path | None = None
    try:
        staged = staging / skill.name
        _copy_skill(skill.root, staged)
        checksum = tree_checksum(staged)
        if replaced:
            old = staging / f"old-{uuid.uuid4().hex}"
            os.replace(dest, old)
        try:
            os.replace(staged, dest)
        except OSError:
            if old is not None:  # put the previous installation back
                os.replace(old, dest)
                old = None
            raise
    except OSError as exc:
        raise InstallError(f"cannot install '{skill.name}' into {root}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            for child in staging.iterdir():
                _remove(child)
            staging.rmdir()
    return dest, checksum, replaced


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _install_from(
    skills: list[Skill],
    scope: str,
    root: Path,
    other_root: Path,
    force: bool,
    meta: dict[str, Any],
) -> list[InstalledSkill]:
    seen: dict[str, Skill] = {}
    for skill in skills:  # parse_skill has already refused bad names (name_problem)
        if skill.name in seen:
            raise InstallError(
                f"two skills of the source are named '{skill.name}': {seen[skill.name].path}, {skill.path}"
            )
        seen[skill.name] = skill
    if not force:
        for skill in skills:
            dest = root / skill.name
            if os.path.lexists(dest):
                raise InstallError(
                    f"skill '{skill.name}' is already installed at {dest} (use --force to replace it)"
                )
    lock = read_lock(root)
    installed: list[InstalledSkill] = []
    try:
        for skill in skills:
            installed.append(_install_one(skill, scope, root, other_root, meta))
            lock["skills"][skill.name] = installed[-1].lock_entry()
    finally:
        if installed:  # record what was installed even when a later skill failed
            write_lock(root, lock)
    return installed


def _install_one(
    skill: Skill, scope: str, root: Path, other_root: Path, meta: dict[str, Any]
) -> InstalledSkill:
    dest, checksum, replaced = _place(skill, root)
    item = InstalledSkill(
        name=skill.name,
        path=dest,
        scope=scope,
        checksum=checksum,
        installed_at=_now(),
        replaced=replaced,
        **meta,
    )
    if scope == "project" and (other_root / skill.name / SKILL_FILE).is_file():
        item.notes.append(
            f"a global skill named '{skill.name}' exists in {other_root} and takes precedence over this one"
        )
    return item


def install_many(
    source: str,
    scope: str = "project",
    workdir: Path | str = ".",
    home: Path | str | None = None,
    force: bool = False,
    catalog: CatalogClient | None = None,
    *,
    skill: str | None = None,
    git_timeout: float = GIT_TIMEOUT,
    single: bool = False,
) -> list[InstalledSkill]:
    """Like `install`, but a source holding several skills installs all of them (or only `skill`);
    with `single`, such a source is refused unless `skill` picks one (what `install` does)."""
    root = skills_root(scope, workdir, home)  # checks the scope
    other_root = skills_root("global", workdir, home)
    spec = parse_source(source, workdir)
    if spec.kind == "local":
        base = Path(spec.location) / spec.subdir if spec.subdir else Path(spec.location)
        chosen = _select(base, source, skill, single)
        meta = {
            "source": spec.location + (f"#{spec.subdir}" if spec.subdir else ""),
            "source_type": "local",
            "subdir": spec.subdir,
        }
        return _install_from(chosen, scope, root, other_root, force, meta)
    if spec.kind == "git":
        with _git_checkout(spec.location, git_timeout, spec.ref) as (checkout, commit):
            base = checkout / spec.subdir if spec.subdir else checkout
            chosen = _ensure_inside(_select(base, source, skill, single), checkout, source)
            meta = {
                "source": source.strip(),
                "source_type": "git",
                "url": spec.location,
                "subdir": spec.subdir,
                "commit": commit,
            }
            return _install_from(chosen, scope, root, other_root, force, meta)
    if catalog is None:
        raise InstallError(
            f"{source!r} is not a local directory or a git URL, and no skills catalog is configured"
        )
    try:
        entry = catalog.get(spec.location)
    except CatalogError as exc:
        raise InstallError(str(exc)) from None
    url = entry.git_url
    if not url:
        raise InstallError(f"catalog skill {entry.id!r} has no source repository")
    with _git_checkout(url, git_timeout) as (checkout, commit):
        chosen_skill = _ensure_inside([_select_catalog(checkout, entry)], checkout, source)[0]
        subdir = chosen_skill.root.relative_to(checkout).as_posix()
        meta = {
            "source": source.strip(),
            "source_type": "catalog",
            "url": url,
            "subdir": "" if subdir == "." else subdir,
            "commit": commit,
            "catalog_id": entry.id,
        }
        return _install_from([chosen_skill], scope, root, other_root, force, meta)


def install(
    source: str,
    scope: str = "project",
    workdir: Path | str = ".",
    home: Path | str | None = None,
    force: bool = False,
    catalog: CatalogClient | None = None,
    *,
    skill: str | None = None,
    git_timeout: float = GIT_TIMEOUT,
) -> InstalledSkill:
    """Install one skill into `<wd>/.agents/skills/<name>` (project) or `~/.pando/skills/<name>` (global).

    `source` is a local directory (holding a SKILL.md, or a folder of skills: pick one with `skill`), a git
    URL or local git repository (`https://…`, `git@host:…`, `file://…`, a path; `#subdir` or `//subdir`
    names a subdirectory), or a catalog id resolved through `catalog` to a repository (+ directory).
    Installing over an existing skill requires `force`. `skills-lock.json` in the skills root records it.
    """
    return install_many(
        source, scope, workdir, home, force, catalog, skill=skill, git_timeout=git_timeout, single=True
    )[0]


def uninstall(
    name: str,
    scope: str = "project",
    workdir: Path | str = ".",
    home: Path | str | None = None,
    missing_ok: bool = False,
) -> Path:
    """Remove `<skills root>/<name>` and its lock entry. Returns the removed directory path. A skill that
    is neither on disk nor in the lock file is an error unless `missing_ok`."""
    _check_name(name)
    root = skills_root(scope, workdir, home)
    target = root / name
    on_disk = os.path.lexists(target)
    lock = read_lock(root)  # empty when there is no lock file
    in_lock = name in lock["skills"]
    if not on_disk and not in_lock:
        if missing_ok:
            return target
        raise InstallError(f"skill '{name}' is not installed in the {scope} skills directory {root}")
    if on_disk:
        try:
            _remove(target)
        except OSError as exc:
            raise InstallError(f"cannot remove {target}: {exc.strerror or exc}") from None
    if in_lock:
        del lock["skills"][name]
        write_lock(root, lock)
    return target


_TEMPLATE = """---
name: {name}
description: {title} — say in one sentence what this skill does and when it helps.
when-to-use: {trigger}
---

# {title}

Instructions the agent follows when this skill is active. Be specific and imperative.

## Steps

1. First step.
2. Second step.

## Resources

Put helper files next to this SKILL.md (`scripts/`, `references/`, `assets/`) and refer to them by
relative path, e.g. `references/notes.md`.
"""


def scaffold(name: str, dest: Path | str) -> Path:
    """Write a template `<dest>/<name>/SKILL.md` (for `pando skills new`). Returns the SKILL.md path."""
    _check_name(name)
    skill_dir = Path(dest).expanduser() / name
    if skill_dir.exists():
        raise InstallError(f"{skill_dir} already exists")
    title = " ".join(part.capitalize() for part in re.split(r"[-_\s]+", name) if part) or name
    trigger = " ".join(part for part in re.split(r"[-_\s]+", name.lower()) if part) or name
    try:
        skill_dir.mkdir(parents=True)
        path = skill_dir / SKILL_FILE
        path.write_text(_TEMPLATE.format(name=name, title=title, trigger=trigger), encoding="utf-8")
    except OSError as exc:
        raise InstallError(f"cannot create {skill_dir}: {exc.strerror or exc}") from None
    return path
