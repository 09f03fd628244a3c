"""Dev-server ports: each live agent owns a small range of ports, so parallel agents' dev servers never collide.

An agent's range is kept in its environment's record (``data["dev_ports"] = [first, count]``), so a
restart keeps it; an archived or destroyed environment no longer counts, so its range is free again. The
agent sees it as ``PALOT_PORT`` (the first port) and ``PALOT_PORTS`` (``first-last``): in its setup script,
in processes restarted after a move, in a container's environment, and in the bash of the shared OpenCode
server through Palot's OpenCode plugin (:data:`PLUGIN_SOURCE`, OpenCode's ``shell.env`` hook), which reads
the map of worktree directories to variables that :func:`write_env_map` keeps.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InvalidState

DEFAULT_BASE = 41000
DEFAULT_PER_AGENT = 10
#: The highest port a range may reach.
LAST_PORT = 65535


@dataclass(frozen=True)
class PortRange:
    """``count`` consecutive ports from ``first``."""

    first: int
    count: int

    @property
    def last(self) -> int:
        return self.first + self.count - 1

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"

    def ports(self) -> range:
        return range(self.first, self.last + 1)

    def env(self) -> dict[str, str]:
        """The variables the agent's processes get."""
        return {"PALOT_PORT": str(self.first), "PALOT_PORTS": str(self)}

    def as_data(self) -> list[int]:
        return [self.first, self.count]

    @classmethod
    def from_data(cls, data: dict[str, Any] | None) -> "PortRange | None":
        """The range kept in an environment record's data, if it has one."""
        value = (data or {}).get("dev_ports")
        if not isinstance(value, list) or len(value) != 2:
            return None
        return cls(int(value[0]), int(value[1]))


def _free(port: int) -> bool:
    """Nothing on this machine listens on ``port`` (loopback), so a dev server can take it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As dev servers bind: a port whose last connections linger in TIME_WAIT is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def allocate(taken: Iterable[PortRange], *, base: int = DEFAULT_BASE,
             per_agent: int = DEFAULT_PER_AGENT) -> PortRange:
    """The first range of ``per_agent`` ports from ``base`` that overlaps no taken range and whose ports are
    all free now (a range some other program holds is skipped)."""
    used = {p for r in taken for p in r.ports()}
    first = base
    while first + per_agent - 1 <= LAST_PORT:
        candidate = PortRange(first, per_agent)
        if not used.intersection(candidate.ports()) and all(_free(p) for p in candidate.ports()):
            return candidate
        first += per_agent
    raise InvalidState(f"no free range of {per_agent} dev-server ports is left from {base}",
                       "archive agents you no longer need, or set [ports] base lower in settings.toml")


def write_env_map(path: Path, envs: dict[str, dict[str, str]]) -> None:
    """Write the map ``directory -> variables`` the OpenCode plugin reads (atomically: it reads on every
    bash call)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{secrets.token_hex(4)}.tmp")  # its own: two writers never share one
    tmp.write_text(json.dumps(envs, indent=1, sort_keys=True))
    os.replace(tmp, path)


def read_env_map(path: Path) -> dict[str, dict[str, str]]:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text())
        if isinstance(data, dict):
            return data
    return {}


#: Palot's OpenCode plugin (an ES module): OpenCode 1.18 calls its ``shell.env`` hook before each bash
#: command (the agent's bash tool, and a session's shell) with the command's cwd; the variables of the
#: agent whose worktree holds that cwd are added to the command's environment. The map's path is filled in.
PLUGIN_SOURCE = """// Written by Palot: each agent's own variables (PALOT_PORT, PALOT_PORTS) in its bash commands.
// No imports: OpenCode 1.18 would wait to install a package for this file; it runs under Bun.
const MAP = __MAP__;

async function varsFor(cwd) {
  let map = {};
  try { map = await Bun.file(MAP).json(); } catch { return {}; }
  let best = "";
  for (const dir of Object.keys(map)) {
    if ((cwd === dir || cwd.startsWith(dir + "/")) && dir.length > best.length) best = dir;
  }
  return best ? map[best] : {};
}

export const PalotAgentEnv = async (ctx) => ({
  "shell.env": async (input, output) => {
    const vars = await varsFor(String(input.cwd || ctx.directory || ""));
    for (const [k, v] of Object.entries(vars)) output.env[k] = String(v);
  },
});
"""


def write_plugin(path: Path, env_map: Path) -> str:
    """Write the plugin beside the map; the ``file://`` URL for OpenCode's ``plugin`` config."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PLUGIN_SOURCE.replace("__MAP__", json.dumps(str(env_map))))
    return path.resolve().as_uri()
