"""Find the processes running in an environment, from ``/proc`` (Linux).

Stdlib only and self-contained: a migration runs this file as is inside a
container (``python3 -c <this file> ROOT``) as well as on the host, so the
process manifest is made the same way in every tier.
"""

from __future__ import annotations

import json
import os
import shlex
import sys

# Palot's and OpenCode's own processes are the environment's machinery, not the agent's work.
IGNORED_MARKERS = ("opencode", "palot-envd", "palot.scripted", "procscan", "docker-init", "/sbin/init")


def _listening_inodes() -> dict[str, int]:
    """Socket inode → port, for TCP sockets in LISTEN state."""
    found: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                next(fh, None)
                for line in fh:
                    fields = line.split()
                    if len(fields) > 9 and fields[3] == "0A":  # 0A: LISTEN
                        found[fields[9]] = int(fields[1].rsplit(":", 1)[1], 16)
        except OSError:
            continue
    return found


def _ports(pid: str, listening: dict[str, int]) -> list[int]:
    ports: set[int] = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in listening:
                ports.add(listening[target[8:-1]])
    except OSError:
        pass
    return sorted(ports)


def scan(root: str, skip: set[int] | None = None) -> list[dict]:
    """Processes whose working directory is ``root`` or below it; children of such processes are left out
    (restarting the parent starts them again)."""
    root = os.path.realpath(root)
    skip = set(skip or ()) | {os.getpid()}
    listening = _listening_inodes()
    found: dict[int, dict] = {}
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in skip:
            continue
        try:
            cwd = os.readlink(f"/proc/{name}/cwd")
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                argv = [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
            with open(f"/proc/{name}/stat") as fh:
                parents[int(name)] = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if not argv or not (cwd == root or cwd.startswith(root + os.sep)):
            continue
        if any(marker in shlex.join(argv) for marker in IGNORED_MARKERS):
            continue
        if os.path.isabs(argv[0]) and not argv[0].startswith(root + os.sep):
            # /usr/bin/node or a pyenv python: found again through PATH in the new environment.
            argv[0] = os.path.basename(argv[0])
        command = shlex.join(argv)
        found[int(name)] = {"command": command, "cwd": os.path.relpath(cwd, root),
                            "ports": _ports(name, listening)}
    result = []
    for pid, info in sorted(found.items()):
        ancestor, seen = parents.get(pid), 0
        while ancestor and ancestor not in found and seen < 64:
            ancestor, seen = parents.get(ancestor), seen + 1
        if not ancestor or ancestor not in found:
            result.append({**info, "pid": pid})
    return result


if __name__ == "__main__":
    print(json.dumps(scan(sys.argv[1] if len(sys.argv) > 1 else os.getcwd())))
