"""Reading an agent's work: its conversation, its activity, its diff, and applying that diff.

Owns :class:`Conversation`: where an agent's messages are read from (its environment's server, or the
shared one for an external session) and what to say when they cannot be, the diff of its work wherever
that work is now (its environment, the last synced mirror, or its branch once the environment is gone),
and applying it to the user's checkout (recording the patch, so destroying knows it is not lost).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

from .. import git
from ..backends import RuntimeBackend
from ..errors import InvalidInput, InvalidState, OpenCodeHTTPError, PalotError
from ..opencode import Message, OpenCodeClient
from ..store import EnvironmentRecord, Store
from .activity import build_activity, simplify_messages
from .live import LiveAgents
from .models import ActivityItem, AgentDiff, AgentMessage, FileChange
from .tracker import Tracker
from .views import AgentViews, unavailable


def patch_sha(patch: str) -> str:
    """The fingerprint of a patch, kept when it is applied."""
    return hashlib.sha256(patch.encode("utf-8", "surrogateescape")).hexdigest()


def _notice(text: str) -> ActivityItem:
    """The one activity line of an agent whose conversation cannot be read."""
    head, _, rest = text.partition(": ")
    return ActivityItem(index=0, id="palot-unavailable", time=time.time(), kind="notice", verb=head, summary=rest)


class Conversation:
    """An agent's messages, activity and changes."""

    def __init__(self, store: Store, backends: dict[str, RuntimeBackend], client: Callable[[], OpenCodeClient],
                 live: LiveAgents, views: AgentViews, tracker: Tracker) -> None:
        self.store = store
        self.backends = backends
        self._client = client
        self.live = live
        self.views = views
        self.tracker = tracker

    async def _session_messages(self, agent_id: str) -> tuple[list[Message], str | None, str | None]:
        """The agent's messages, the directory its tool paths are relative to, and why the conversation
        cannot be read when it cannot (then there are no messages)."""
        if agent_id in self.live.external:
            session, _ = self.live.external[agent_id]
            return await self._client().messages(session.id, session.directory), session.directory, None
        rec = self.store.get_agent(agent_id)
        env = self.store.get_environment(rec.environment_id) if rec.environment_id else None
        if env is None or not rec.session_id:
            return [], env.directory if env else None, unavailable(env)
        gone = unavailable(env) if env.type != "worktree" else None
        if gone:
            return [], env.directory, gone
        try:
            client = self.backends[env.type].client_for(env)
            return await client.messages(rec.session_id, env.directory), env.directory, None
        except OpenCodeHTTPError as e:
            if e.status == 404:
                return [], env.directory, None
            raise
        except (OSError, KeyError) as e:  # the environment's files (credentials) are gone
            raise InvalidState(f"the conversation of agent {rec.id} cannot be read: its environment is incomplete "
                               f"({type(e).__name__}: {e})",
                               f"archive the agent to keep its work on branch {env.branch}") from e

    async def _readable_messages(self, agent_id: str, first_look: bool) -> tuple[list[Message], str | None, str | None]:
        """As :meth:`_session_messages`; on a first look an unreachable server is a reason, not an error."""
        try:
            return await self._session_messages(agent_id)
        except PalotError as e:
            if not first_look or isinstance(e, InvalidInput):
                raise
            return [], None, f"the conversation cannot be read now: {e.message}" + (f" ({e.fix})" if e.fix else "")

    async def activity(self, agent_ref: str, *, since: int = 0) -> list[ActivityItem]:
        """Structured activity, oldest first; ``since`` skips items already seen (a cursor).

        When the conversation cannot be read (its environment was archived, or its server is unreachable),
        the activity is one ``notice`` line saying so.
        """
        agent_id = self.views.resolve(agent_ref)
        messages, root, why = await self._readable_messages(agent_id, since <= 0)
        if why:
            return [_notice(why)] if since <= 0 else []
        return [item for item in build_activity(messages, root) if item.index >= since]

    async def messages(self, agent_ref: str) -> list[AgentMessage]:
        """The agent's conversation, simplified; empty when it is no longer available (see the agent's view)."""
        agent_id = self.views.resolve(agent_ref)
        messages, _, _ = await self._session_messages(agent_id)
        return simplify_messages(messages)

    async def diff(self, agent_ref: str, *, path: str | None = None) -> AgentDiff:
        """The agent's changes against its base commit, untracked files included.

        Once its environment is gone, the diff of its branch as kept in the user's repository (``unavailable``
        says so); when a cloud environment cannot be reached, its mirror as last brought up to date.
        """
        agent_id = self.views.resolve(agent_ref)
        why = None
        if agent_id in self.live.external:
            session, project = self.live.external[agent_id]
            d = await git.diff(Path(session.directory), "HEAD", path=path)
        else:
            rec = self.store.get_agent(agent_id)
            env = self.store.get_environment(rec.environment_id) if rec.environment_id else None
            if env is None or not env.base_commit:
                return AgentDiff(agent_id=agent_id, base_commit=None, files=[], additions=0, deletions=0, patch="",
                                 unavailable=unavailable(None))
            if env.state != "active":
                why = f"{unavailable(env)}; this is that branch as kept in your repository"
            try:
                d = await self.git_diff(env, path=path)
            except PalotError as e:
                host = Path(self.views.host_path(env) or "")
                if env.state != "active" or not (host / ".git").exists():
                    raise
                d = await git.diff(host, env.base_commit, path=path)
                why = (f"the environment cannot be reached now ({e.message}"
                       + (f"; {e.fix}" if e.fix else "") + "); this is its last synced state")
        files = [FileChange(path=f.path, status=f.status, additions=f.additions, deletions=f.deletions,
                            binary=f.binary, old_path=f.old_path) for f in d.files]
        return AgentDiff(agent_id=agent_id, base_commit=d.base_commit, files=files,
                         additions=d.additions, deletions=d.deletions, patch=d.patch, unavailable=why)

    async def git_diff(self, env: EnvironmentRecord, *, path: str | None = None) -> git.Diff:
        """The environment's changes against its base commit: from its files while it has them, else its branch."""
        assert env.base_commit
        backend = self.backends[env.type]
        try:
            directory = await backend.sync(env) if env.state == "active" else backend.host_path(env)
        except KeyError:  # a record without its workspace: read the branch
            directory = None
        if env.state == "active" and directory is not None and directory.is_dir():
            return await git.diff(directory, env.base_commit, path=path)
        if not env.branch or "project_path" not in env.data:
            raise InvalidState(f"the files of environment {env.id} are gone and it has no branch to read",
                               "nothing is left to show; destroy the agent")
        return await git.diff_refs(Path(env.data["project_path"]), env.base_commit, env.branch, path=path)

    async def apply(self, agent_ref: str, *, path: str | None = None) -> list[str]:
        """Apply the agent's changes (or only ``path``'s) to the user's checkout, uncommitted; refuses on a
        conflict or a dirty checkout, changing nothing."""
        rec, env = self.views.managed(agent_ref, "apply")
        d = await self.git_diff(env, path=path)
        if d.is_empty:
            what = f"changes to {path}" if path else "changes"
            raise InvalidState(f"agent {rec.id} has no {what} to apply", "wait for it to finish, or prompt it")
        project = self.store.get_project(rec.project_id)
        assert project is not None
        changed = await git.apply_patch(Path(project.path), d.patch)
        if path is None:  # "applied" means all of it: destroy checks this before dropping the branch
            self.store.update_agent(rec.id, applied_patch_sha=patch_sha(d.patch))
        self.store.audit("applied", agent_id=rec.id, project_id=rec.project_id, files=changed,
                         **({"path": path} if path else {}))
        self.tracker.announce(rec.id)
        return changed
