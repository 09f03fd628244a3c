"""Benchmark: the language server's code actions with 50 agents changing the open file.

``palot-lsp`` runs as a stdio subprocess, a thin client of a Palot service (bench script), driven by a
real pytest-lsp client. 50 worktree agents (real ``git worktree`` checkouts, agent rows written with
``palot.store`` before the service starts: it reads its store on start) have each changed a different
line of the open ``module.py``. Timed: ``textDocument/codeAction`` on a selection over a changed line,
200 runs (the answer carries the actions for the agent there). Baseline: the same client's round trip
for a method the server does not implement (a ``MethodNotFound`` answer: the transport and pygls floor).

An agent's edit to the editor's diagnostics (``file.edited`` → ``publishDiagnostics``) is timed by the
event benchmark (``test_bench_events.py``), with 20 busy agents.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from benchlib import BENCH_SCRIPT, git, make_repo, ratio, summary_ms
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, client_capabilities, register_lsp_features

from service_support import start_service, stop_service, wait_ready

from palot.paths import PalotPaths
from palot.store import AgentRecord, EnvironmentRecord, Store

PALOT_LSP = str(Path(sys.executable).with_name("palot-lsp"))
AGENTS = 50
LINES = 600
RUNS = 200
EDIT_RUNS = 10


class TimedClient(LanguageClient):
    """A pytest-lsp client that also notes when each ``publishDiagnostics`` arrived."""

    published: list[tuple[float, float, lsp.PublishDiagnosticsParams]]


def _timed_client() -> TimedClient:
    client = TimedClient(converter_factory=default_converter)
    client.published = []

    def on_publish(ls: TimedClient, params: lsp.PublishDiagnosticsParams) -> None:
        ls.published.append((time.perf_counter(), time.time(), params))
        ls.diagnostics[params.uri] = params.diagnostics

    register_lsp_features(client, {**DEFAULT_CLIENT_FEATURES, lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: on_publish})
    return client


@contextlib.asynccontextmanager
async def _lsp(home: Path, folder: Path) -> AsyncIterator[TimedClient]:
    config = ClientServerConfig(server_command=[PALOT_LSP], client_factory=_timed_client,
                                server_env={**os.environ, "PALOT_HOME": str(home)})
    client = await config.start()
    assert isinstance(client, TimedClient)
    caps = client_capabilities("visual-studio-code")
    assert caps.text_document and caps.text_document.code_action
    # Commands resolved lazily: lsprotocol would decode a CodeAction carrying a command as a Command.
    caps.text_document.code_action.resolve_support = lsp.ClientCodeActionResolveOptions(properties=["command"])
    await client.initialize_session(lsp.InitializeParams(
        capabilities=caps, root_uri=folder.as_uri(),
        workspace_folders=[lsp.WorkspaceFolder(uri=folder.as_uri(), name=folder.name)]))
    try:
        yield client
    finally:
        await client.shutdown_session()
        await client.stop()


def _open(client: LanguageClient, path: Path) -> str:
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(
        uri=path.as_uri(), language_id="python", version=1, text=path.read_text())))
    return path.as_uri()


async def _until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def _fifty_agents(home: Path, repo: Path) -> None:
    """50 settled agents, each with a real worktree where one line of module.py is changed, written into
    the store of ``home`` before its service starts."""
    paths = PalotPaths(home)
    paths.ensure()
    store = Store(paths.store)
    try:
        project = store.upsert_project(str(repo), repo.name)
        base = git(repo, "rev-parse", "HEAD").strip()
        now = time.time()
        for n in range(AGENTS):
            worktree = paths.worktrees / repo.name / f"palot-task-{n}"
            git(repo, "worktree", "add", "--quiet", "-b", f"palot/task-{n}", str(worktree), base)
            module = worktree / "module.py"
            lines = module.read_text().splitlines(keepends=True)
            lines[10 * n] = f"value_{10 * n + 1} = {n}  # changed by agent {n}\n"
            module.write_text("".join(lines))
            env = EnvironmentRecord(id=f"env_{n:06d}", type="worktree", directory=str(worktree),
                                    branch=f"palot/task-{n}", base_commit=base, server_url=None, state="active",
                                    created_at=now + n, data={"project_path": project.path})
            store.add_environment(env)
            store.add_agent(AgentRecord(
                id=f"ag_{n:08x}", project_id=project.id, environment_id=env.id, session_id=f"ses_bench{n:06d}",
                title=f"Task {n}: tune value {10 * n + 1}", prompt="tune the module", model=None,
                permission_mode="default", status="completed", error=None, created_at=now + n, updated_at=now + n,
            ))
    finally:
        store.close()


@pytest.mark.bench
async def test_lsp_code_action_latency_with_50_agents(tmp_path: Path, bench_results: Any) -> None:
    home = tmp_path / "home"
    source = "".join(f"value_{i} = {i}\n" for i in range(1, LINES + 1))
    repo = make_repo(tmp_path / "project", {"module.py": source})
    _fifty_agents(home, repo)
    proc = start_service(home, BENCH_SCRIPT)
    palot = await wait_ready(home, proc)
    try:
        samples, floor, first_diagnostics = await _time_code_actions(home, repo)
    finally:
        await palot.close()
        await stop_service(home, proc)

    fig, base = summary_ms(samples), summary_ms(floor)
    bench_results.add(
        f"LSP textDocument/codeAction with {AGENTS} agents changing the open file",
        figure={"p50_ms": fig["p50_ms"], "p99_ms": fig["p99_ms"]},
        baseline={"p50_ms": base["p50_ms"], "p99_ms": base["p99_ms"]},
        ratio=ratio(fig["p50_ms"], base["p50_ms"]),
        goal="p50 ≤ 20 ms", met=fig["p50_ms"] <= 20,
        runs=RUNS, code_action=fig, method_not_found_round_trip=base,
        open_to_all_diagnostics_s=round(first_diagnostics, 3),
        notes="baseline = the same client's round trip for an unimplemented method (MethodNotFound)",
    )


async def _time_code_actions(home: Path, repo: Path) -> tuple[list[float], list[float], float]:
    async with _lsp(home, repo) as client:
        started = time.perf_counter()
        uri = _open(client, repo / "module.py")
        await _until(lambda: len(client.diagnostics.get(uri, ())) == AGENTS, 120, "50 agents' diagnostics")
        first_diagnostics = time.perf_counter() - started

        def params(n: int) -> lsp.CodeActionParams:
            line = 10 * (n % AGENTS)  # the line agent n changed (0-based), selected whole
            return lsp.CodeActionParams(
                text_document=lsp.TextDocumentIdentifier(uri=uri),
                range=lsp.Range(lsp.Position(line, 0), lsp.Position(line + 1, 0)),
                context=lsp.CodeActionContext(diagnostics=[]))

        async def no_such_method() -> None:
            try:
                await client.protocol.send_request_async("palot/noSuchMethod", {})
            except JsonRpcException:
                pass

        for n in range(10):  # warm up the pipe, pydantic and cattrs
            await client.text_document_code_action_async(params(n))
            await no_such_method()
        samples, floor = [], []
        for n in range(RUNS):
            t = time.perf_counter()
            actions = await client.text_document_code_action_async(params(n))
            samples.append(time.perf_counter() - t)
            assert actions, f"no code action on agent {n % AGENTS}'s line"
            assert any(f"ag_{n % AGENTS:08x}" in repr(a) for a in actions), actions  # the agent there
            t = time.perf_counter()
            await no_such_method()
            floor.append(time.perf_counter() - t)

    return samples, floor, first_diagnostics
