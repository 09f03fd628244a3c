"""The kernel limit a busy OpenCode server runs into: the number of memory mappings a process may have.

OpenCode runs on Bun, whose allocator marks freed pages with ``madvise(MADV_DONTDUMP)``; each call can split
a mapping. A server holding many projects' instances (about 100 agents' worktrees, 2 GB and more) reaches
Linux's default ``vm.max_map_count`` (65,530); from then on every such call fails with EAGAIN and the
allocator retries it in a loop with no pause (oven-sh/bun#27490): the server spins on two CPUs and never
answers again. Measured here: 65,531 mappings, ~3 million ``madvise`` calls a second, no recovery in 15 min.

So Palot checks: ``palot doctor`` says when the limit is low, and the supervisor restarts a server that has
stopped answering at the limit (it can never recover), saying how to raise the limit.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from .process import kill_now

LIMIT_FILE = Path("/proc/sys/vm/max_map_count")
#: Enough for a fleet of 100 agents on one server, with room (the value Elasticsearch and many distributions use).
ADVISED = 262144
#: Mappings short of the limit at which a server counts as having reached it (one call splits one mapping).
MARGIN = 16
FIX = (f"raise the limit: `sudo sysctl -w vm.max_map_count={ADVISED}`, and keep it across reboots with "
       f"`echo vm.max_map_count={ADVISED} | sudo tee /etc/sysctl.d/90-palot.conf`")


def map_limit() -> int | None:
    """The system's ``vm.max_map_count``; None where it cannot be read (not Linux)."""
    try:
        return int(LIMIT_FILE.read_text())
    except (OSError, ValueError):
        return None


def map_count(pid: int) -> int | None:
    """How many memory mappings process ``pid`` has; None if it is gone or not ours to read."""
    try:
        with open(f"/proc/{pid}/maps", "rb") as maps:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: maps.read(1 << 20), b""))
    except OSError:
        return None


def at_limit(count: int | None, limit: int | None) -> bool:
    """Whether a process with ``count`` mappings has reached ``limit`` (both known)."""
    return count is not None and limit is not None and count >= limit - MARGIN


def stuck_at_map_limit(pid: int, limit: int | None = None) -> bool:
    """Whether server ``pid`` has reached the mapping limit (``limit``: the system's unless given). Reads
    ``/proc/<pid>/maps`` (65,000 lines: a few milliseconds): call it off the event loop."""
    return at_limit(map_count(pid), limit if limit is not None else map_limit())


def describe(limit: int | None) -> tuple[bool, str]:
    """For ``palot doctor``: whether the limit is high enough for a large fleet, and the line to show."""
    if limit is None:
        return True, "not limited here (no /proc/sys/vm/max_map_count)"
    if limit >= ADVISED:
        return True, f"vm.max_map_count {limit:,}"
    return False, (f"vm.max_map_count {limit:,}: too low for ~100 agents on one OpenCode server (it stops answering "
                   "at the limit, a Bun bug; Palot then restarts it)")


async def end_if_stuck(pid: int, limit: int | None, log: logging.Logger) -> bool:
    """End server ``pid`` if it is silent because it reached the mapping limit (it never answers again, and a
    new one starts clean), saying so in ``log`` with the fix; True if it did. ``limit``: the system's if None."""
    if not await asyncio.to_thread(stuck_at_map_limit, pid, limit):
        return False
    log.error("the OpenCode server (pid %s) reached the kernel's limit of memory mappings and stopped answering "
              "for good (a Bun bug); it is restarted and its agents' running turns end. To stop this, %s", pid, FIX)
    await asyncio.to_thread(kill_now, pid)  # spinning, it handles no SIGTERM
    return True
