"""Notices: what the user should know about an agent's environment that is neither its status nor a failure.

Today one tier has them: a cloud environment whose container stopped unexpectedly (killed, crashed, out of
memory) says when, and what its restart restored from and lost (:mod:`palot.cloud.crash`). The tracker asks the
backend when the environment's stream drops or comes back and when a turn ends, and keeps the sentence in the
environment's record (``data["notice"]``), so the agent's view shows it without asking the tier.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..backends import RuntimeBackend
from ..errors import PalotError
from ..store import EnvironmentRecord, Store

NOTICE = "notice"


@runtime_checkable
class NoticingBackend(Protocol):
    """A tier that can tell something about an environment beyond its state."""

    async def notice(self, env: EnvironmentRecord) -> str | None: ...


async def current_notice(backend: RuntimeBackend, env: EnvironmentRecord) -> str | None:
    """The environment's notice now, asked of its tier (None for tiers without notices)."""
    if env.state != "active" or not isinstance(backend, NoticingBackend):
        return None
    try:
        return await backend.notice(env)
    except PalotError:
        return None


async def refresh_notice(store: Store, backend: RuntimeBackend, env_id: str) -> bool:
    """Ask the tier for the environment's notice and keep it in its record; True when it changed."""
    env = store.get_environment(env_id)
    if env is None or env.state != "active" or not isinstance(backend, NoticingBackend):
        return False
    try:
        found = await backend.notice(env)
    except PalotError:
        return False  # the tier cannot be asked now: what it said last still stands
    env = store.get_environment(env_id)  # read again: the record may have changed while the tier answered
    if env is None or env.data.get(NOTICE) == found:
        return False
    data = {key: value for key, value in env.data.items() if key != NOTICE}
    store.update_environment(env_id, data={**data, NOTICE: found} if found else data)
    return True
