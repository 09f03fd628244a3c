"""How a cloud environment gets the project's history: cloned from the project's remote, or sent as a bundle.

A bundle of the whole history up to the agent's base commit is slow to make, upload and keep for a large
repository. When the project has a remote the environment can reach and the base commit is on it, the
container clones it instead (a partial clone: ``fetch_base.sh``) — at provision and at every restore after a
sleep, a pause or a crash — and only the agent's own commits and uncommitted work travel, as snapshot bundles
(``save.sh``, the move's export), on both routes. Otherwise the project goes up as one bundle, as it always did.

:func:`choose` decides on this machine, without the network: the remote's URL must be one a container can
use without the user's keys (``https``, ``http`` or ``git``; not SSH, not a path, never a URL with
credentials in it: those never leave this machine), the Worker's containers must have the internet
(``ENABLE_INTERNET``), and the base commit must be on one of the remote's branches as last fetched (a
remote-tracking ref contains it). The last is a local answer that may be stale; the clone in the container is
the real test, and when it fails the backend falls back to the bundle (a network probe from here would prove
little: this machine's network and credentials are not the container's). ``git config palot.cloudClone
false`` in the project turns the remote route off for it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from .. import git

#: Puts the project's history up to the base commit into the workspace, from a bundle file or a remote's URL.
FETCH_BASE_SCRIPT: str = resources.files(__package__).joinpath("fetch_base.sh").read_text(encoding="utf-8")

#: The project's git setting that turns the remote route off (``git config palot.cloudClone false``).
SETTING = "palot.cloudClone"


@dataclass(frozen=True)
class Route:
    """Where the environment gets the project's history: ``remote`` (a URL without credentials) or, when it
    is None, a bundle sent from here; ``why`` says which and why, in words fit for a log (no secrets)."""

    remote: str | None
    why: str

    @property
    def name(self) -> str:
        return "remote" if self.remote else "bundle"


async def choose(project: Path, base_commit: str, *, internet: bool) -> Route:
    """The route for a new environment of ``project`` at ``base_commit`` (see the module's docstring)."""
    if not internet:
        return Route(None, 'sent as a bundle: the Worker\'s containers have no internet (ENABLE_INTERNET = "false")')
    setting = await git.run_git("config", "--type=bool", "--get", SETTING, cwd=project, check=False)
    if setting.stdout.strip() == "false":
        return Route(None, f"sent as a bundle: the remote route is off for this project (git config {SETTING})")
    reasons: list[str] = []
    for name in await _remotes(project):
        url = await git.remote_url(project, name)
        problem = "it has no URL" if url is None else url_problem(url)
        if problem is None and not await _has_commit(project, name, base_commit):
            problem = "none of its branches (as last fetched) has the base commit"
        if problem is None:
            assert url is not None
            return Route(url, f"cloned from the project's remote {name} ({url})")
        reasons.append(f"{name}: {problem}")
    return Route(None, "sent as a bundle: " + ("; ".join(reasons) or "the project has no remote"))


def url_problem(url: str) -> str | None:
    """Why an environment cannot clone ``url`` by itself, or None when it can try."""
    if "://" not in url:
        # scp-like "user@host:path" is SSH; anything else is a path on this machine.
        head = url.split("/", 1)[0]
        return "it is reached over SSH, with keys the environment does not have" if ":" in head \
            else "it is a path on this machine"
    parts = urlsplit(url)
    if parts.scheme in ("ssh", "git+ssh", "ssh+git"):
        return "it is reached over SSH, with keys the environment does not have"
    if parts.scheme not in ("https", "http", "git") or not parts.hostname:
        return f"its URL scheme ({parts.scheme}) is not one an environment can clone"
    if parts.username is not None or parts.password is not None:
        return "its URL carries credentials, which never leave this machine"
    if _names_this_machine(parts.hostname):
        return "its URL names this machine, which the environment cannot reach"
    return None


def _names_this_machine(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _remotes(project: Path) -> list[str]:
    """The remotes to consider, in order: the checked-out branch's upstream remote, then ``origin``."""
    names: list[str] = []
    branch = await git.current_branch(project)
    if branch:
        upstream = await git.run_git("config", "--get", f"branch.{branch}.remote", cwd=project, check=False)
        if upstream.stdout.strip() not in ("", "."):  # "." is the repository itself
            names.append(upstream.stdout.strip())
    listed = (await git.run_git("remote", cwd=project)).stdout.split()
    return [n for n in dict.fromkeys([*names, "origin"]) if n in listed]


async def _has_commit(project: Path, remote: str, commit: str) -> bool:
    """Whether a remote-tracking branch of ``remote`` contains ``commit`` (local refs only, no network)."""
    found = await git.run_git("for-each-ref", "--count=1", "--contains", commit, "--format=%(refname)",
                              f"refs/remotes/{remote}/", cwd=project, check=False)
    return found.returncode == 0 and bool(found.stdout.strip())
