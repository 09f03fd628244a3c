"""The model-provider credentials a cloud environment's OpenCode needs, read from the user's own OpenCode setup.

- ``auth.json`` (what ``opencode auth login`` saved) from the OpenCode data directory the local shared
  server uses — Palot's isolated one in demos and tests, else ``$XDG_DATA_HOME`` or ``~/.local/share`` —
  or the user's own ``OPENCODE_AUTH_CONTENT``; it travels as ``OPENCODE_AUTH_CONTENT``, which OpenCode
  reads instead of its auth file, so nothing is written to the container's disk;
- the environment variables the OpenCode configuration names: ``{env:NAME}`` anywhere in it and
  ``provider.<id>.env`` lists, in Palot's config, the user's global config files, ``OPENCODE_CONFIG`` and the
  project's own ``opencode.json``; their values come from Palot's environment.

They go to the Worker with the environment's creation (the Worker seals them in its Durable Object and hands
them to the environment daemon after every start). Palot neither logs nor stores them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..servers import ServerManager

#: Set by the Worker or Palot itself: never taken from the user's environment.
RESERVED = frozenset({"OPENCODE_SERVER_PASSWORD", "PALOT_ENV_ID", "PALOT_DAEMON_PORT", "PALOT_CREDENTIALS"})
CONFIG_NAMES = ("opencode.json", "opencode.jsonc", "config.json")
_ENV_REFERENCE = re.compile(r"\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


def named_variables(texts: Iterable[str]) -> set[str]:
    """Variable names an OpenCode configuration reads: ``{env:NAME}`` and ``provider.<id>.env`` entries."""
    names: set[str] = set()
    for text in texts:
        names.update(_ENV_REFERENCE.findall(text))
        try:
            config = json.loads(text)
        except ValueError:
            continue  # JSONC (comments): its {env:…} references were still found above
        providers = config.get("provider") if isinstance(config, dict) else None
        for provider in (providers or {}).values() if isinstance(providers, dict) else ():
            env = provider.get("env") if isinstance(provider, dict) else None
            names.update(n for n in env or () if isinstance(n, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n))
    return names


def collect(*, config_texts: Iterable[str], auth_file: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables to give the environment's OpenCode (empty when the user has no credentials)."""
    values = {name: environ[name] for name in sorted(named_variables(config_texts))
              if name not in RESERVED and environ.get(name)}
    auth = environ.get("OPENCODE_AUTH_CONTENT") or _read(auth_file)
    if auth:
        try:
            parsed: Any = json.loads(auth)
        except ValueError:
            parsed = None  # a broken auth file is OpenCode's to report, not a reason to send garbage
        if isinstance(parsed, dict) and parsed:
            values["OPENCODE_AUTH_CONTENT"] = json.dumps(parsed)
    return values


def for_environment(server: ServerManager, project: Path | None) -> dict[str, str]:
    """The credentials for an environment of ``project``, from the setup the local shared server uses."""
    if server.isolated:
        data_home = server.paths.isolated_opencode_home / "data"
        config_home = server.paths.isolated_opencode_home / "config"
    else:
        home = Path.home()
        data_home = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
        config_home = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    files = [config_home / "opencode" / name for name in CONFIG_NAMES]
    if os.environ.get("OPENCODE_CONFIG"):
        files.append(Path(os.environ["OPENCODE_CONFIG"]))
    if project is not None:
        files += [project / name for name in CONFIG_NAMES[:2]]
    texts = [json.dumps(server.settings.opencode_config("http://127.0.0.1/v1")), *filter(None, map(_read, files))]
    return collect(config_texts=texts, auth_file=data_home / "opencode" / "auth.json", environ=os.environ)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None
