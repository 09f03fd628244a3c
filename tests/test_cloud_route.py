"""How a cloud environment gets the project's history (issue 16, point 4), without the engine: the choice
between the project's remote and a bundle (palot.cloud.route), and the recipe that puts the history in place
(``fetch_base.sh``) run on this machine against real repositories — a ``file://`` remote stands for the
network one the environment clones (the end-to-end test under ``wrangler dev`` is test_cloud_clone.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import git, make_repo

from palot.cloud import durable, route

CLONE_URL = "https://git.example.com/team/project.git"


def tracked(tmp_path: Path, url: str = CLONE_URL, remote: str = "origin") -> tuple[Path, str]:
    """A project whose ``remote`` (at ``url``, never contacted) has, as last fetched, the project's head."""
    repo = make_repo(tmp_path / "project")
    git(repo, "remote", "add", remote, url)
    git(repo, "update-ref", f"refs/remotes/{remote}/main", "HEAD")
    return repo, git(repo, "rev-parse", "HEAD").strip()


async def test_a_project_whose_base_commit_is_on_its_https_remote_is_cloned_from_it(tmp_path: Path):
    repo, base = tracked(tmp_path)
    chosen = await route.choose(repo, base, internet=True)
    assert chosen.remote == CLONE_URL and chosen.name == "remote" and "origin" in chosen.why


async def test_without_internet_or_a_remote_or_with_the_setting_off_the_history_goes_as_a_bundle(tmp_path: Path):
    repo, base = tracked(tmp_path)
    off = await route.choose(repo, base, internet=False)
    assert off.remote is None and "ENABLE_INTERNET" in off.why
    git(repo, "config", route.SETTING, "false")
    setting = await route.choose(repo, base, internet=True)
    assert setting.remote is None and route.SETTING in setting.why
    lone = make_repo(tmp_path / "lone")
    alone = await route.choose(lone, git(lone, "rev-parse", "HEAD").strip(), internet=True)
    assert alone.remote is None and "no remote" in alone.why


async def test_a_remote_with_credentials_in_its_url_is_never_sent_and_its_secret_is_in_no_reason(tmp_path: Path):
    secret = "ghp_s3cretTok3n"
    for url in (f"https://x-access-token:{secret}@github.com/team/project.git",
                f"https://{secret}@github.com/team/project.git"):
        repo, base = tracked(tmp_path / secret[:3] / str(len(url)), url)
        chosen = await route.choose(repo, base, internet=True)
        assert chosen.remote is None and "credentials" in chosen.why and secret not in chosen.why


@pytest.mark.parametrize(("url", "reason"), [
    ("git@github.com:team/project.git", "SSH"),
    ("ssh://git@github.com/team/project.git", "SSH"),
    ("/srv/git/project.git", "path on this machine"),
    ("file:///srv/git/project.git", "scheme (file)"),
    ("http://localhost:3000/project.git", "names this machine"),
    ("https://127.0.0.1/project.git", "names this machine"),
])
def test_remotes_an_environment_cannot_clone_by_itself_say_why(url: str, reason: str):
    assert reason in (route.url_problem(url) or "")


@pytest.mark.parametrize("url", [CLONE_URL, "http://10.0.0.5:8080/project.git", "git://172.17.0.1:9418/p.git"])
def test_public_network_urls_may_be_cloned(url: str):
    assert route.url_problem(url) is None


async def test_a_base_commit_no_remote_branch_has_goes_as_a_bundle(tmp_path: Path):
    repo, _ = tracked(tmp_path)
    (repo / "local.txt").write_text("not pushed\n")
    git(repo, "add", "local.txt")
    git(repo, "commit", "-q", "-m", "local only")
    chosen = await route.choose(repo, git(repo, "rev-parse", "HEAD").strip(), internet=True)
    assert chosen.remote is None and "none of its branches" in chosen.why


async def test_the_branch_upstream_remote_comes_before_origin(tmp_path: Path):
    repo, base = tracked(tmp_path, "git@github.com:team/project.git")  # origin: SSH, not usable
    git(repo, "remote", "add", "upstream", CLONE_URL)
    git(repo, "update-ref", "refs/remotes/upstream/main", "HEAD")
    git(repo, "config", "branch.main.remote", "upstream")
    chosen = await route.choose(repo, base, internet=True)
    assert chosen.remote == CLONE_URL and "upstream" in chosen.why


# --- the recipe -------------------------------------------------------------------------------------


def fetch_base(workspace: Path, source: str, base: str) -> subprocess.CompletedProcess[str]:
    workspace.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["sh", "-c", route.FETCH_BASE_SCRIPT, "fetch_base.sh", source, base], cwd=workspace,
                          capture_output=True, text=True, check=False)


def served(tmp_path: Path) -> tuple[str, str, str]:
    """A bare repository that allows partial clones, its ``file://`` URL, its head and the commit before it."""
    repo = make_repo(tmp_path / "src", {"big.bin": "x" * 100_000, "README.md": "# p\n"})
    (repo / "README.md").write_text("# p, later\n")
    git(repo, "commit", "-q", "-am", "later")
    bare = tmp_path / "served.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    git(bare, "config", "uploadpack.allowFilter", "true")
    return f"file://{bare}", git(repo, "rev-parse", "HEAD").strip(), git(repo, "rev-parse", "HEAD~1").strip()


def test_the_recipe_makes_a_partial_clone_at_the_base_without_file_contents(tmp_path: Path):
    url, _, base = served(tmp_path)
    ws = tmp_path / "ws"
    done = fetch_base(ws, url, base)
    assert done.returncode == 0, done.stderr
    assert git(ws, "config", "remote.origin.promisor").strip() == "true"
    assert git(ws, "cat-file", "-t", base).strip() == "commit"
    missing = git(ws, "rev-list", "--objects", "--missing=print", base)
    assert any(line.startswith("?") for line in missing.splitlines())  # blobs stay on the remote until needed
    git(ws, "checkout", "-q", "-b", "palot/agent", base)
    assert (ws / "big.bin").read_text() == "x" * 100_000 and (ws / "README.md").read_text() == "# p\n"


def test_the_recipe_leaves_no_repository_behind_when_the_remote_fails(tmp_path: Path):
    ws = tmp_path / "ws"
    done = fetch_base(ws, f"file://{tmp_path}/nothing-here.git", "0" * 40)
    assert done.returncode != 0 and not (ws / ".git").exists()


def test_the_restore_command_clones_the_remote_when_the_worker_holds_no_base_bundle(tmp_path: Path):
    url, _, base = served(tmp_path)
    restore = durable.commands("palot/agent", base, url)["restore"]
    ws, incoming = tmp_path / "ws", tmp_path / "restore"
    ws.mkdir()
    incoming.mkdir()  # what the Worker put there: no base.bundle, no save yet
    done = subprocess.run([*restore, str(incoming)], cwd=ws, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "base"
    assert git(ws, "rev-parse", "HEAD").strip() == base
    assert git(ws, "symbolic-ref", "--short", "HEAD").strip() == "palot/agent"
    assert git(ws, "status", "--porcelain") == ""
    assert not incoming.exists()


def test_the_restore_command_without_bundle_or_remote_says_what_is_missing(tmp_path: Path):
    restore = durable.commands("palot/agent", "0" * 40)["restore"]
    (tmp_path / "ws").mkdir()
    (tmp_path / "in").mkdir()
    done = subprocess.run([*restore, str(tmp_path / "in")], cwd=tmp_path / "ws", capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "no base bundle" in done.stderr
