"""Tests for palot.store: schema, records and audit log."""

from __future__ import annotations

import sqlite3
import stat
import time
from pathlib import Path

import pytest

from palot.errors import AgentNotFound, StoreError
from palot.store import (
    SCHEMA_VERSION,
    AgentRecord,
    EnvironmentRecord,
    Store,
)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "nested" / "palot.db"


@pytest.fixture
def store(db_path: Path):
    s = Store(db_path)
    yield s
    s.close()


def make_agent(agent_id: str, project_id: str, **overrides) -> AgentRecord:
    now = time.time()
    values = dict(
        id=agent_id,
        project_id=project_id,
        environment_id=None,
        session_id=None,
        title=f"agent {agent_id}",
        prompt="fix the bug",
        model="anthropic/claude",
        permission_mode="auto",
        status="running",
        error=None,
        created_at=now,
        updated_at=now,
    )
    values.update(overrides)
    return AgentRecord(**values)


def make_env(env_id: str, **overrides) -> EnvironmentRecord:
    values = dict(
        id=env_id,
        type="worktree",
        directory=f"/tmp/wt/{env_id}",
        branch=f"palot/{env_id}",
        base_commit="abc123",
        server_url=None,
        state="active",
        created_at=time.time(),
        data={"port": 4096},
    )
    values.update(overrides)
    return EnvironmentRecord(**values)


# --- schema and file -------------------------------------------------------


def test_migrates_empty_database(store: Store, db_path: Path) -> None:
    assert db_path.exists()
    assert store.schema_version == SCHEMA_VERSION >= 1
    conn = sqlite3.connect(db_path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    conn.close()
    assert {"projects", "environments", "agents", "audit", "preferences"} <= tables
    assert {"agents_project", "agents_status", "agents_session"} <= indexes


def test_reopen_keeps_data_and_version(db_path: Path) -> None:
    with Store(db_path) as s:
        project = s.upsert_project("/repo", "repo")
        s.add_agent(make_agent("a1", project.id))
    with Store(db_path) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert s.get_agent("a1").project_id == project.id


def test_newer_database_is_refused(db_path: Path) -> None:
    Store(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError) as info:
        Store(db_path)
    assert "newer" in str(info.value)
    assert "upgrade Palot" in (info.value.fix or "")


def test_wal_mode_and_pragmas(store: Store, db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert store._conn is not None
    assert store._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000


def test_file_is_private(store: Store, db_path: Path) -> None:
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600


def test_closed_store_raises(db_path: Path) -> None:
    s = Store(db_path)
    s.close()
    s.close()  # twice is fine
    with pytest.raises(StoreError):
        s.list_projects()


def test_not_a_database_is_a_store_error(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        Store(db_path)


# --- projects and environments ---------------------------------------------


def test_project_upsert_is_idempotent(store: Store) -> None:
    first = store.upsert_project("/home/me/repo", "repo")
    again = store.upsert_project("/home/me/repo", "renamed")
    assert first.id == again.id and first.id.startswith("prj_")
    assert again.created_at == first.created_at
    assert again.name == "renamed"
    assert store.get_project(first.id) == again
    assert store.get_project("prj_nope") is None
    other = store.upsert_project("/home/me/other", "other")
    assert other.id != first.id
    assert [p.id for p in store.list_projects()] == [other.id, first.id]


def test_environment_roundtrip_and_update(store: Store) -> None:
    env = make_env("env1")
    store.add_environment(env)
    assert store.get_environment("env1") == env
    assert store.get_environment("nope") is None
    updated = store.update_environment("env1", state="archived", data={"port": 5000})
    assert updated.state == "archived" and updated.data == {"port": 5000}
    assert store.get_environment("env1") == updated
    with pytest.raises(StoreError):
        store.update_environment("env1", colour="red")
    with pytest.raises(StoreError):
        store.update_environment("missing", state="archived")
    with pytest.raises(StoreError):
        store.add_environment(env)  # duplicate id


# --- agents ----------------------------------------------------------------


def test_agent_crud(store: Store) -> None:
    project = store.upsert_project("/repo", "repo")
    store.add_environment(make_env("env1"))
    agent = make_agent("a1", project.id, environment_id="env1", session_id="ses_1")
    store.add_agent(agent)
    assert store.get_agent("a1") == agent
    assert store.find_agent_by_session("ses_1") == agent
    assert store.find_agent_by_session("ses_x") is None

    before = agent.updated_at
    updated = store.update_agent("a1", status="idle", error="boom")
    assert updated.status == "idle" and updated.error == "boom"
    assert updated.updated_at >= before
    assert store.get_agent("a1") == updated

    with pytest.raises(StoreError):
        store.add_agent(agent)  # duplicate id
    with pytest.raises(StoreError):
        store.add_agent(make_agent("a2", "prj_unknown"))

    store.delete_agent("a1")
    with pytest.raises(AgentNotFound):
        store.get_agent("a1")
    with pytest.raises(AgentNotFound):
        store.delete_agent("a1")


def test_agent_not_found_names_the_fix(store: Store) -> None:
    with pytest.raises(AgentNotFound) as info:
        store.get_agent("ghost")
    assert "ghost" in str(info.value)
    assert "palot agents list" in str(info.value)
    assert info.value.fix == "run `palot agents list` to see agent ids"
    with pytest.raises(AgentNotFound):
        store.update_agent("ghost", status="idle")


def test_update_agent_rejects_unknown_and_bad_fields(store: Store) -> None:
    project = store.upsert_project("/repo", "repo")
    store.add_agent(make_agent("a1", project.id))
    with pytest.raises(StoreError) as info:
        store.update_agent("a1", colour="red")
    assert "colour" in str(info.value)
    with pytest.raises(StoreError):
        store.update_agent("a1", id="a2")
    with pytest.raises(StoreError):
        store.update_agent("a1", created_at="not a time")
    assert store.get_agent("a1").status == "running"  # nothing half-applied


def test_list_agent_filters(store: Store) -> None:
    p1 = store.upsert_project("/one", "one")
    p2 = store.upsert_project("/two", "two")
    t = 1_000.0
    store.add_agent(make_agent("a1", p1.id, status="running", created_at=t + 1))
    store.add_agent(make_agent("a2", p1.id, status="idle", created_at=t + 2))
    store.add_agent(make_agent("a3", p2.id, status="error", created_at=t + 3))
    store.add_agent(make_agent("a4", p2.id, status="idle", created_at=t + 4, archived_at=t + 5))

    def ids(**filters) -> list[str]:
        return [a.id for a in store.list_agents(**filters)]

    assert ids() == ["a1", "a2", "a3", "a4"]
    assert ids(project_id=p1.id) == ["a1", "a2"]
    assert ids(status="idle") == ["a2", "a4"]
    assert ids(status=["running", "error"]) == ["a1", "a3"]
    assert ids(status=[]) == []
    assert ids(include_archived=False) == ["a1", "a2", "a3"]
    assert ids(project_id=p2.id, status=["idle"], include_archived=False) == []

    rows = store.list_agents_with_environments(project_id=p2.id)
    assert [(a.id, e, p.id) for a, e, p in rows] == [("a3", None, p2.id), ("a4", None, p2.id)]


def test_list_agents_with_environments_joins(store: Store) -> None:
    project = store.upsert_project("/repo", "repo")
    env = make_env("env1")
    store.add_environment(env)
    store.add_agent(make_agent("a1", project.id, environment_id="env1", created_at=1.0))
    store.add_agent(make_agent("a2", project.id, created_at=2.0))
    rows = store.list_agents_with_environments()
    assert [(a.id, e, p) for a, e, p in rows] == [("a1", env, project), ("a2", None, project)]


def test_thousand_agents_over_twenty_projects(store: Store) -> None:
    projects = [store.upsert_project(f"/repos/{i}", f"repo{i}") for i in range(20)]
    for i in range(500):
        store.add_environment(make_env(f"env{i}"))
    statuses = ["running", "idle", "error", "done"]
    for i in range(1000):
        store.add_agent(
            make_agent(
                f"a{i:04d}",
                projects[i % 20].id,
                environment_id=f"env{i}" if i < 500 else None,
                status=statuses[i % 4],
                created_at=float(i),
            )
        )
    rows = store.list_agents_with_environments()
    assert len(rows) == 1000
    assert [a.id for a, _, _ in rows] == [f"a{i:04d}" for i in range(1000)]
    assert sum(e is not None for _, e, _ in rows) == 500
    assert all(e is None or e.id == a.environment_id for a, e, _ in rows)
    assert all(p.id == a.project_id for a, _, p in rows)
    assert len({p.id for _, _, p in rows}) == 20
    assert len(store.list_agents_with_environments(project_id=projects[3].id)) == 50
    assert len(store.list_agents_with_environments(status=["idle", "done"])) == 500
    assert len(store.list_agents(project_id=projects[0].id, status="running")) == 50


# --- audit -----------------------------------------------------------------


def test_audit_order_and_limit(store: Store) -> None:
    for i in range(10):
        store.audit("tick", agent_id="a1" if i % 2 == 0 else "a2", project_id="p", n=i)
    entries = store.audit_log()
    assert [e.detail["n"] for e in entries] == list(range(10))
    assert [e.detail["n"] for e in store.audit_log(limit=3)] == [7, 8, 9]
    assert [e.detail["n"] for e in store.audit_log(agent_id="a1", limit=2)] == [6, 8]
    assert store.audit_log(limit=0) == []
    assert entries[0].event == "tick" and entries[0].project_id == "p"
    assert all(a.id < b.id for a, b in zip(entries, entries[1:]))


def test_audit_survives_delete_agent(store: Store) -> None:
    project = store.upsert_project("/repo", "repo")
    store.add_agent(make_agent("a1", project.id))
    store.audit("agent.created", agent_id="a1", project_id=project.id, title="x")
    store.delete_agent("a1")
    store.audit("agent.deleted", agent_id="a1", project_id=project.id)
    assert [e.event for e in store.audit_log(agent_id="a1")] == ["agent.created", "agent.deleted"]


@pytest.mark.parametrize(
    "key", ["password", "token", "access_token", "secret", "client_secret", "apikey", "api_key", "apiKey"]
)
def test_audit_rejects_secret_keys(store: Store, key: str) -> None:
    with pytest.raises(StoreError):
        store.audit("login", **{key: "hunter2"})
    with pytest.raises(StoreError):
        store.audit("login", server={"auth": {key: "hunter2"}})  # nested too
    assert store.audit_log() == []


def test_audit_allows_harmless_keys_and_rejects_non_json(store: Store) -> None:
    store.audit("usage", input_tokens=10, keyboard="us", tokenizer="x")
    assert store.audit_log()[0].detail == {"input_tokens": 10, "keyboard": "us", "tokenizer": "x"}
    with pytest.raises(StoreError):
        store.audit("bad", when=object())


# --- sharing -----------------------------------------------


def test_two_stores_share_the_file(db_path: Path) -> None:
    with Store(db_path) as a, Store(db_path) as b:
        project = a.upsert_project("/repo", "repo")
        assert b.get_project(project.id) == project
        b.add_agent(make_agent("a1", project.id))
        assert a.get_agent("a1").id == "a1"
        a.update_agent("a1", status="done")
        assert b.get_agent("a1").status == "done"
        b.audit("x", agent_id="a1")
        assert [e.event for e in a.audit_log()] == ["x"]


def test_a_repeated_listing_sees_writes_from_this_and_other_processes(tmp_path):
    """Listings are reused while nothing changed; any commit, here or in another connection, refreshes them."""
    import time as _time

    path = tmp_path / "palot.db"
    mine, theirs = Store(path), Store(path)
    project = mine.upsert_project("/p", "p")

    def agent(agent_id: str) -> AgentRecord:
        now = _time.time()
        return AgentRecord(id=agent_id, project_id=project.id, environment_id=None, session_id=None, title="t",
                           prompt="p", model=None, permission_mode="default", status="running", error=None,
                           created_at=now, updated_at=now)

    mine.add_agent(agent("ag_1"))
    assert [a.id for a, _, _ in mine.list_agents_with_environments()] == ["ag_1"]
    theirs.add_agent(agent("ag_2"))
    assert [a.id for a, _, _ in mine.list_agents_with_environments()] == ["ag_1", "ag_2"]
    theirs.update_agent("ag_1", status="completed")
    assert [a.status for a, _, _ in mine.list_agents_with_environments()] == ["completed", "running"]
    mine.update_agent("ag_2", status="failed")
    assert [a.status for a, _, _ in mine.list_agents_with_environments()] == ["completed", "failed"]
