"""The desktop and webhook sinks against real peers: a local HTTP server, a private D-Bus session bus."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Self

import pytest
from jeepney import MatchRule, MessageType, new_method_return
from jeepney.bus_messages import message_bus
from jeepney.io.asyncio import Proxy, open_dbus_router

from palot import api
from palot.policies.desktop import DesktopSink
from palot.policies.notify import Notifier
from palot.policies.settings import SettingsFile
from palot.policies.webhooks import WebhookSink


def settings_at(tmp_path: Path, toml: str) -> SettingsFile:
    path = tmp_path / "settings.toml"
    path.write_text(toml)
    settings = SettingsFile(path)
    settings.refresh()
    assert settings.error is None, settings.error
    return settings


# --- webhooks -----------------------------------------------------------------------------------


class HookServer:
    """A minimal HTTP/1.1 server: records each POST's JSON by path, answers from a per-path script."""

    def __init__(self, script: dict[str, list[int]]) -> None:
        self.script = script  # path -> statuses for its 1st, 2nd … request (the last repeats)
        self.received: dict[str, list[Any]] = {}
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = (await reader.readline()).decode()
        _, path, _ = request_line.split(" ", 2)
        length = 0
        while (line := (await reader.readline()).decode().strip()):
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        body = json.loads(await reader.readexactly(length))
        calls = self.received.setdefault(path, [])
        calls.append(body)
        statuses = self.script.get(path, [404])
        status = statuses[min(len(calls), len(statuses)) - 1]
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()


async def test_webhooks_get_their_format_once_after_a_retry_and_4xx_is_not_retried(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="palot.policies.webhooks")
    script = {"/slack/T0-SECRET": [500, 200], "/discord/D1-SECRET": [200], "/gone/G2-SECRET": [404]}
    async with HookServer(script) as server:
        settings = settings_at(tmp_path, f"""
[[notifications.webhooks]]
url = "{server.url('/slack/T0-SECRET')}"
format = "slack"
kinds = ["needs_you"]

[[notifications.webhooks]]
url = "{server.url('/discord/D1-SECRET')}"
format = "discord"
kinds = ["needs_you"]

[[notifications.webhooks]]
url = "{server.url('/gone/G2-SECRET')}"
kinds = ["needs_you"]
""")
        sink = WebhookSink(settings)
        note = api.Notification(kind="needs_you", title="agent-1 needs you", body="may it run `rm -rf build` & <go>?",
                                action="palot inbox", reason="permission", agent_ids=["a1"])
        assert sink.wanted(note)
        await sink.deliver(note)

        text = "agent-1 needs you\nmay it run `rm -rf build` & <go>?\nNext: palot inbox"
        slack = {"text": text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")}
        assert server.received["/slack/T0-SECRET"] == [slack, slack]  # the 500, then the 200
        assert server.received["/discord/D1-SECRET"] == [
            {"content": text, "username": "Palot", "allowed_mentions": {"parse": []}}]
        assert len(server.received["/gone/G2-SECRET"]) == 1  # a 404 is final

        done = api.Notification(kind="done", title="agent-1 is done", reason="completed")
        assert not sink.wanted(done)
        await sink.deliver(done)
        assert [len(server.received[p]) for p in script] == [2, 1, 1]

    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert "webhook 1 (127.0.0.1): HTTP 500; retrying" in logs
    assert "webhook 3 (127.0.0.1): refused with HTTP 404" in logs
    assert "SECRET" not in logs


async def test_discord_content_is_cut_to_its_limit(tmp_path: Path) -> None:
    async with HookServer({"/d": [200]}) as server:
        settings = settings_at(tmp_path, f"""
[[notifications.webhooks]]
url = "{server.url('/d')}"
format = "discord"
kinds = ["done"]
""")
        await WebhookSink(settings).deliver(api.Notification(kind="done", title="long", body="x" * 5000))
    [sent] = server.received["/d"]
    assert len(sent["content"]) == 2000 and sent["content"].startswith("long\nxxx") and sent["content"][-1] == "…"


async def test_a_hook_that_cannot_be_reached_does_not_raise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("palot.policies.webhooks.BACKOFF", (0.01, 0.01))  # the schedule, not the behaviour
    async with HookServer({}) as server:
        port = server.port  # closed on leaving: nothing listens there now
    settings = settings_at(tmp_path, f"""
[[notifications.webhooks]]
url = "http://127.0.0.1:{port}/x"
""")
    await WebhookSink(settings).deliver(api.Notification(kind="needs_you", title="t"))


# --- desktop ------------------------------------------------------------------------------------


@pytest.fixture
def session_bus() -> Iterator[str]:
    """A private D-Bus session bus; its address. The socket lives in a short path (the 108-byte limit)."""
    with tempfile.TemporaryDirectory(prefix="palot-bus-") as d:
        daemon = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--print-address", "--address", f"unix:path={d}/bus"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert daemon.stdout is not None
            address = daemon.stdout.readline().strip()
            assert address.startswith("unix:"), address
            yield address
        finally:
            daemon.kill()
            daemon.wait()


NOTIFY = MatchRule(type=MessageType.method_call, interface="org.freedesktop.Notifications", member="Notify")


@pytest.fixture
async def notification_server(session_bus: str,
                              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[tuple[Any, ...]]]:
    """Owns org.freedesktop.Notifications on the private bus and records each Notify call's arguments."""
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", session_bus)
    calls: list[tuple[Any, ...]] = []
    async with open_dbus_router(session_bus) as router:
        with router.filter(NOTIFY, queue=asyncio.Queue()) as queue:
            reply = await Proxy(message_bus, router).RequestName("org.freedesktop.Notifications", 0)
            assert reply == (1,)  # primary owner

            async def serve() -> None:
                while True:
                    msg = await queue.get()
                    calls.append(msg.body)
                    await router.send(new_method_return(msg, "u", (len(calls),)))

            task = asyncio.create_task(serve())
            try:
                yield calls
            finally:
                task.cancel()


async def test_desktop_notify_carries_summary_body_urgency_and_sound(
        tmp_path: Path, notification_server: list[tuple[Any, ...]]) -> None:
    settings = settings_at(tmp_path, "[notifications.desktop]\nenabled = true\nsound = false\n")
    sink = DesktopSink(settings)
    note = api.Notification(kind="needs_you", title="agent-1 needs you", body="run <make> & 'test'?")
    assert sink.wanted(note)
    await sink.deliver(note)

    [(app, replaces, icon, summary, body, actions, hints, timeout)] = notification_server
    assert (app, replaces, icon, actions, timeout) == ("Palot", 0, "", [], -1)
    assert summary == "agent-1 needs you"
    assert body == "run &lt;make&gt; &amp; 'test'?"
    assert hints == {"urgency": ("y", 2), "suppress-sound": ("b", True)}

    # settings are read at delivery: sound on now, and a "done" is of normal urgency
    (tmp_path / "settings.toml").write_text("[notifications.desktop]\nenabled = true\nsound = true\n")
    assert settings.refresh()
    await sink.deliver(api.Notification(kind="done", title="agent-1 is done"))
    assert notification_server[1][3:5] == ("agent-1 is done", "")
    assert notification_server[1][6] == {"urgency": ("y", 1)}


async def test_desktop_disabled_sends_nothing(tmp_path: Path, notification_server: list[tuple[Any, ...]]) -> None:
    settings = settings_at(tmp_path, "[notifications]\ncoalesce_seconds = 0\n"
                                     "[notifications.desktop]\nenabled = false\n")
    published: list[api.Event] = []
    notifier = Notifier(settings, published.append)
    sink = DesktopSink(settings)
    notifier.sinks = [sink]
    notifier.notify("needs_you", "permission", "agent-1 needs you")
    await notifier.close()
    assert not sink.wanted(api.Notification(kind="needs_you", title="t"))
    assert len(published) == 1  # the stream has it …
    assert notification_server == []  # … the desktop does not


async def test_desktop_without_a_bus_returns_quietly_and_says_so_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="palot.policies.desktop")
    settings = settings_at(tmp_path, "[notifications.desktop]\nenabled = true\n")
    sink = DesktopSink(settings)
    note = api.Notification(kind="needs_you", title="t")

    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path}/no-such-bus")
    await sink.deliver(note)
    await sink.deliver(note)
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS")
    await sink.deliver(note)
    said = [r for r in caplog.records if r.name == "palot.policies.desktop"]
    assert len(said) == 1 and said[0].levelno == logging.INFO and "no session bus" in said[0].getMessage()


async def test_desktop_with_a_bus_but_no_notification_server_returns_quietly(
        tmp_path: Path, session_bus: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", session_bus)
    settings = settings_at(tmp_path, "[notifications.desktop]\nenabled = true\n")
    await DesktopSink(settings).deliver(api.Notification(kind="done", title="t"))
