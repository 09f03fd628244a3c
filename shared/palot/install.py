"""Locating, checking and installing the tools Palot runs: the pinned OpenCode and ripgrep.

OpenCode goes into Palot's data dir through npm (``opencode-ai`` ships the
linux binary as an optional dependency), so it never conflicts with an
OpenCode the user installed elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import OpenCodeNotInstalled, OpenCodeVersionMismatch, PalotError, ToolInstallFailed
from .paths import PalotPaths, cache_dir, tools_dirs

OPENCODE_VERSION = "1.18.33"
OPENCODE_PACKAGE = "opencode-ai"
#: The newest ripgrep release PyPI serves as a prebuilt wheel (newer ones build from source).
RIPGREP_PYPI = "ripgrep==14.1.0"

#: A callback for one line of progress on long work (installs, builds, spawns).
Progress = Callable[[str], None]


def quiet(_: str) -> None:
    """A ``Progress`` that says nothing."""


def opencode_prefixes(paths: PalotPaths | None = None) -> list[Path]:
    """The npm prefixes the pinned OpenCode may be installed in, in the order they are looked at; the first is
    where it is installed (shared by every Palot home; ``paths`` adds an older install in that home)."""
    prefixes = [d / f"opencode-{OPENCODE_VERSION}" for d in tools_dirs()]
    return prefixes + ([paths.legacy_opencode_prefix] if paths is not None else [])


def _bin_in(prefix: Path) -> Path:
    return prefix / "node_modules" / ".bin" / "opencode"


def find_opencode(paths: PalotPaths | None = None) -> Path | None:
    """``$PALOT_OPENCODE_BIN`` if set, else the first installed copy of :func:`opencode_prefixes`."""
    env = os.environ.get("PALOT_OPENCODE_BIN")
    if env:
        return Path(env)
    return next((b for b in map(_bin_in, opencode_prefixes(paths)) if b.exists()), None)


#: Versions binaries reported, by (path, inode, size, mtime, ctime): asked once per binary, not on every move.
_versions: dict[str, str] = {}
#: How many binaries' versions the file in the cache dir remembers (the newest ones).
_KEPT_VERSIONS = 16


def _versions_file() -> Path:
    # Shared by every Palot process of this user: the binary takes about a second to say its version, and a
    # `make demo` asked it three times (doctor, the demo, its service).
    return cache_dir() / "opencode-versions.json"


def _load_versions() -> dict[str, str]:
    try:
        saved = json.loads(_versions_file().read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in saved.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(saved, dict) else {}


def _save_version(key: str, version: str) -> None:
    saved = {**_load_versions(), key: version}
    kept = dict(list(saved.items())[-_KEPT_VERSIONS:])
    target = _versions_file()
    with contextlib.suppress(OSError):  # a cache: not writing it only costs the next process a second
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")  # one per writer
        tmp.write_text(json.dumps(kept))
        os.replace(tmp, target)


def opencode_version(binary: Path) -> str | None:
    """The version a binary reports, or None if it does not run (remembered, in this process and in the cache
    dir, until the binary changes: any rewrite or replacement changes its inode, size or times)."""
    try:
        real = Path(binary).resolve()
        st = real.stat()
    except OSError:
        return None
    key = f"{real}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
    if key in _versions:
        return _versions[key]
    saved = _load_versions().get(key)
    if saved is not None:
        _versions[key] = saved
        return saved
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=30, env=_no_update_env(),
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = out.stdout.strip() or None if out.returncode == 0 else None
    if version is not None:
        _versions[key] = version
        _save_version(key, version)
    return version


def require_opencode(paths: PalotPaths | None = None, binary: Path | None = None) -> Path:
    """The pinned OpenCode binary, or a clear error saying how to get it."""
    binary = binary or find_opencode(paths)
    if binary is None or not binary.exists():
        raise OpenCodeNotInstalled(
            f"OpenCode {OPENCODE_VERSION} is not installed (looked in "
            f"{', '.join(str(p) for p in opencode_prefixes(paths))})",
            "run `palot doctor --fix` to install it",
        )
    version = opencode_version(binary)
    if version != OPENCODE_VERSION:
        raise OpenCodeVersionMismatch(
            f"{binary} is OpenCode {version or 'unknown (it did not run)'}, Palot needs {OPENCODE_VERSION}",
            "run `palot doctor --fix` to install the pinned version, or unset PALOT_OPENCODE_BIN",
        )
    return binary


def ensure_opencode(paths: PalotPaths | None = None, binary: Path | None = None,
                    progress: Progress = quiet) -> Path:
    """The pinned OpenCode, installed first (with ``progress``) when no home on this machine has it yet."""
    if binary is None and find_opencode(paths) is None:
        return install_opencode(progress)
    return require_opencode(paths, binary)


def install_opencode(progress: Progress = quiet) -> Path:
    """Install the pinned OpenCode into the shared tools dir with npm (idempotent)."""
    prefix = opencode_prefixes()[0]
    target = _bin_in(prefix)
    if target.exists() and opencode_version(target) == OPENCODE_VERSION:
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise OpenCodeNotInstalled(
            "npm is not on PATH, so OpenCode cannot be installed",
            "install Node.js and npm (e.g. `apt-get install nodejs npm`), then run `palot doctor --fix`",
        )
    prefix.mkdir(parents=True, exist_ok=True)
    progress(f"installing {OPENCODE_PACKAGE}@{OPENCODE_VERSION} into {prefix} (about a minute) …")
    cmd = [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
           "--loglevel=error", f"{OPENCODE_PACKAGE}@{OPENCODE_VERSION}"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=900)
    except subprocess.TimeoutExpired:
        raise OpenCodeNotInstalled(
            "npm did not finish installing OpenCode within 15 minutes",
            "check that the npm registry is reachable, then run `palot doctor --fix` again",
        ) from None
    if out.returncode != 0:
        raise OpenCodeNotInstalled(
            f"npm could not install OpenCode: {out.stderr.strip()[-800:]}",
            "check that the npm registry is reachable, then run `palot doctor --fix` again",
        )
    return require_opencode(None, target)


def find_ripgrep() -> Path | None:
    """``rg`` on PATH or beside this Python (a virtualenv's ``bin/``)."""
    found = shutil.which("rg")
    if found:
        return Path(found)
    beside = Path(sys.executable).parent / "rg"
    return beside if beside.exists() else None


def install_ripgrep(progress: Progress = quiet) -> Path:
    """Install ripgrep from PyPI into this Python's environment (idempotent)."""
    found = find_ripgrep()
    if found:
        return found
    progress(f"installing {RIPGREP_PYPI} …")
    try:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--only-binary", "ripgrep", RIPGREP_PYPI],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600,
        )
        detail = out.stderr.strip()[-500:] if out.returncode != 0 else ""
    except subprocess.TimeoutExpired:
        detail = "pip did not finish within 10 minutes"
    found = find_ripgrep()
    if detail or found is None:
        raise ToolInstallFailed(
            f"could not install ripgrep: {detail}",
            "install it with your package manager (e.g. `apt-get install ripgrep`)",
        )
    return found


def tool_path_dirs() -> list[str]:
    """Directories to put first on an OpenCode server's PATH (so it finds ripgrep)."""
    rg = find_ripgrep()
    return [str(rg.parent)] if rg else []


def _no_update_env() -> dict[str, str]:
    return {**os.environ, "OPENCODE_DISABLE_AUTOUPDATE": "1"}


@dataclass(frozen=True)
class Check:
    """One line of ``palot doctor``."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None
    warning: bool = False  # works, but says what to change before it bites (not a failed check)


def doctor(paths: PalotPaths, *, fix: bool = False, progress: Progress = quiet) -> list[Check]:
    """Check (and with ``fix`` install) what Palot needs; never raises for a failed check."""
    checks: list[Check] = []
    if fix:
        for installer in (lambda: install_opencode(progress), lambda: install_ripgrep(progress)):
            try:
                installer()
            except PalotError as e:
                checks.append(Check("install", False, e.message, e.fix))
    try:
        binary = require_opencode(paths)
        checks.append(Check("opencode", True, f"{OPENCODE_VERSION} at {binary}"))
    except PalotError as e:
        checks.append(Check("opencode", False, e.message, e.fix))
    rg = find_ripgrep()
    checks.append(
        Check("ripgrep", True, str(rg))
        if rg
        else Check("ripgrep", False, "rg not found on PATH", "run `palot doctor --fix`")
    )
    git = shutil.which("git")
    checks.append(
        Check("git", True, git)
        if git
        else Check("git", False, "git not found on PATH", "install git (e.g. `apt-get install git`)")
    )
    checks.append(Check("data dir", True, str(paths.home)))
    from .servers import limits  # here: the servers package imports this module

    enough, detail = limits.describe(limits.map_limit())
    checks.append(Check("map limit", True, detail, None if enough else limits.FIX, warning=not enough))
    return checks
