"""The event hub: fan-out, back-pressure, routing, replay of current state — then on the real server.

The first tests feed the hub from an async generator with events shaped like
the ones OpenCode 1.18 sends (captured from a real run); the last ones watch a
real agent on the real server with the scripted model.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from palot import AgentStatus, Palot
from palot.agents import AGENT_UPDATED
from palot.events import EventHub, Subscription, make_event
from palot.opencode import STREAM_CONNECTED, STREAM_DISCONNECTED, GlobalEvent

DIR_A = "/work/project-a"
DIR_B = "/work/project-b"


class Upstream:
    """The hub's source: an async generator yielding what the test pushes, after a connected event."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[GlobalEvent] = asyncio.Queue()

    async def events(self) -> AsyncIterator[GlobalEvent]:
        yield make_event(STREAM_CONNECTED, reconnects=0)
        while True:
            event = await self.queue.get()
            yield event
            self.queue.task_done()  # the hub asked for the next one: this one was published

    async def push(self, *events: GlobalEvent) -> None:
        """Send events upstream and return once the hub has published them all."""
        for event in events:
            self.queue.put_nowait(event)
        await asyncio.wait_for(self.queue.join(), 5)


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
async def hub(upstream: Upstream) -> AsyncIterator[EventHub]:
    hub = EventHub(upstream.events)
    await hub.start()
    assert hub.state.connected
    try:
        yield hub
    finally:
        await hub.stop()


# --- events in OpenCode's shapes ---------------------------------------------------------------


def status(session: str, kind: str, directory: str = DIR_A) -> GlobalEvent:
    return make_event("session.status", directory, sessionID=session, status={"type": kind})


def idle(session: str, directory: str = DIR_A) -> GlobalEvent:
    return make_event("session.idle", directory, sessionID=session)


def delta(session: str, text: str, directory: str = DIR_A) -> GlobalEvent:
    return make_event("message.part.delta", directory, sessionID=session, messageID="msg_1", partID="prt_1",
                      field="text", delta=text)


def file_edited(path: str, directory: str = DIR_A) -> GlobalEvent:
    return make_event("file.edited", directory, file=f"{directory}/{path}")


def permission_asked(request: str, session: str, directory: str = DIR_A) -> GlobalEvent:
    return make_event(
        "permission.asked", directory, id=request, sessionID=session, permission="edit", patterns=["README.md"],
        metadata={"filepath": f"{directory}/README.md", "diff": "-# sample\n+# sample, edited\n"},
        always=["*"], tool={"messageID": "msg_2", "callID": "call_1"},
    )


def permission_replied(request: str, session: str, directory: str = DIR_A) -> GlobalEvent:
    return make_event("permission.replied", directory, sessionID=session, requestID=request, reply="once")


def summary(event: GlobalEvent) -> tuple:
    """What a subscriber cares about in an event: its type, directory and session."""
    return event.type, event.directory, event.session_id


async def drain(sub: Subscription) -> list[GlobalEvent]:
    """Everything queued for a subscriber right now."""
    return [await sub.get() for _ in range(sub.pending())]


async def read(sub: Subscription, n: int) -> list[GlobalEvent]:
    return [await sub.get(timeout=5) for _ in range(n)]


# --- fan-out and back-pressure ------------------------------------------------------------------


async def test_every_subscriber_receives_every_event_in_order(hub: EventHub, upstream: Upstream):
    subs = [hub.subscribe() for _ in range(3)]
    sent = [delta("ses_1", f"word {i} ") for i in range(50)]
    await upstream.push(*sent)
    for sub in subs:
        got = await read(sub, 50)
        assert [e.payload.properties["delta"] for e in got] == [f"word {i} " for i in range(50)]
        assert sub.pending() == 0 and sub.lagged == 0


async def test_a_slow_subscriber_keeps_the_newest_events_and_does_not_hold_back_the_others(
    hub: EventHub, upstream: Upstream
):
    slow = hub.subscribe(maxsize=5)  # never reads
    fast = hub.subscribe()
    # push() returns only once the hub has published all 20: nothing waited for the slow reader.
    await upstream.push(*(delta("ses_1", str(i)) for i in range(20)))
    assert [e.payload.properties["delta"] for e in await read(fast, 20)] == [str(i) for i in range(20)]
    assert slow.lagged == 15
    assert [e.payload.properties["delta"] for e in await drain(slow)] == ["15", "16", "17", "18", "19"]
    # Once it catches up it gets new events again, with nothing more dropped.
    await upstream.push(delta("ses_1", "20"))
    assert (await slow.get(timeout=5)).payload.properties["delta"] == "20"
    assert slow.lagged == 15


# --- routing ------------------------------------------------------------------------------------


async def test_directory_subscribers_get_their_directory_and_stream_events_only(hub: EventHub, upstream: Upstream):
    in_a = hub.subscribe(directory=DIR_A)
    in_b = hub.subscribe(directory=DIR_B)
    everything = hub.subscribe()
    await upstream.push(
        status("ses_a", "busy", DIR_A), status("ses_b", "busy", DIR_B),
        file_edited("hello.txt", DIR_A), file_edited("notes.md", DIR_B),
        # The stream dropped and came back: no directory, so every subscriber must hear of it.
        make_event(STREAM_DISCONNECTED), make_event(STREAM_CONNECTED, reconnects=1),
    )
    stream = [(STREAM_DISCONNECTED, None, None), (STREAM_CONNECTED, None, None)]
    assert [summary(e) for e in await drain(in_a)] == [
        ("session.status", DIR_A, "ses_a"), ("file.edited", DIR_A, None), *stream]
    assert [summary(e) for e in await drain(in_b)] == [
        ("session.status", DIR_B, "ses_b"), ("file.edited", DIR_B, None), *stream]
    assert len(await drain(everything)) == 6


async def test_session_subscribers_get_their_session_wherever_it_is_named_and_stream_events(
    hub: EventHub, upstream: Upstream
):
    one = hub.subscribe(session_id="ses_1")
    both_filters = hub.subscribe(directory=DIR_A, session_id="ses_1")
    await upstream.push(
        status("ses_1", "busy"),
        status("ses_2", "busy"),
        delta("ses_2", "not yours"),
        # The session named inside the message info / the part, as message events carry it.
        make_event("message.updated", DIR_A, info={"id": "msg_1", "sessionID": "ses_1", "role": "assistant",
                                                   "time": {"created": 1}}),
        make_event("message.part.updated", DIR_A, part={"id": "prt_1", "sessionID": "ses_1", "messageID": "msg_1",
                                                        "type": "text", "text": "hi"}),
        make_event("message.part.updated", DIR_A, part={"id": "prt_2", "sessionID": "ses_2", "messageID": "msg_9",
                                                        "type": "text", "text": "not yours"}),
        make_event(STREAM_DISCONNECTED),
        # Same session id reported for another directory: only the directory filter keeps it out.
        status("ses_1", "idle", DIR_B),
    )
    mine = [("session.status", DIR_A, "ses_1"), ("message.updated", DIR_A, "ses_1"),
            ("message.part.updated", DIR_A, "ses_1"), (STREAM_DISCONNECTED, None, None)]
    assert [summary(e) for e in await drain(one)] == [*mine, ("session.status", DIR_B, "ses_1")]
    assert [summary(e) for e in await drain(both_filters)] == mine


async def test_type_filter_passes_only_the_asked_types(hub: EventHub, upstream: Upstream):
    sub = hub.subscribe(types=["session.status", "permission.asked"])
    await upstream.push(status("ses_1", "busy"), delta("ses_1", "x"), permission_asked("per_1", "ses_1"),
                        file_edited("a.txt"), idle("ses_1"), status("ses_1", "idle"))
    assert [(e.type, e.payload.properties.get("status")) for e in await drain(sub)] == [
        ("session.status", {"type": "busy"}), ("permission.asked", None), ("session.status", {"type": "idle"})]


# --- replay of the current state --------------------------------------------------------------


async def test_a_late_subscriber_first_gets_busy_sessions_pending_permissions_and_providers_events(
    hub: EventHub, upstream: Upstream
):
    agent = {"id": "ag_1", "status": "running", "session_id": "ses_1"}
    hub.add_snapshot_provider(lambda: [make_event(AGENT_UPDATED, DIR_A, agentID="ag_1", agent=agent)])
    asked = permission_asked("per_1", "ses_1")
    await upstream.push(status("ses_1", "busy"), status("ses_2", "busy", DIR_B), status("ses_3", "busy"),
                        status("ses_3", "idle"), asked, delta("ses_1", "not state"), file_edited("x.txt"))

    late = await drain(hub.subscribe())
    assert [summary(e) for e in late] == [
        ("session.status", DIR_A, "ses_1"), ("session.status", DIR_B, "ses_2"),
        ("permission.asked", DIR_A, "ses_1"), (AGENT_UPDATED, DIR_A, None)]
    assert late[0].payload.properties["status"] == {"type": "busy"}
    assert late[2].payload.properties == asked.payload.properties  # the request exactly as OpenCode sent it
    assert late[3].payload.properties["agent"] == agent

    # The replay goes through the subscriber's filters.
    assert [summary(e) for e in await drain(hub.subscribe(directory=DIR_B))] == [("session.status", DIR_B, "ses_2")]
    assert [e.type for e in await drain(hub.subscribe(types=["permission.asked"]))] == ["permission.asked"]
    assert await drain(hub.subscribe(replay=False)) == []


async def test_a_session_that_went_idle_or_an_answered_permission_is_no_longer_replayed(
    hub: EventHub, upstream: Upstream
):
    await upstream.push(status("ses_1", "busy"), status("ses_2", "busy"), status("ses_3", "retry"),
                        permission_asked("per_1", "ses_1"), permission_asked("per_2", "ses_2"))
    assert len(await drain(hub.subscribe())) == 5

    await upstream.push(status("ses_1", "idle"), idle("ses_2"), permission_replied("per_1", "ses_1"))
    late = await drain(hub.subscribe())
    assert [(e.type, e.session_id) for e in late] == [("session.status", "ses_3"), ("permission.asked", "ses_2")]
    assert late[0].payload.properties["status"]["type"] == "retry"


async def test_a_deleted_session_drops_out_of_the_replay_with_its_permissions(hub: EventHub, upstream: Upstream):
    await upstream.push(status("ses_1", "busy"), permission_asked("per_1", "ses_1"), status("ses_2", "busy"))
    await upstream.push(make_event("session.deleted", DIR_A, sessionID="ses_1",
                                   info={"id": "ses_1", "projectID": "p", "directory": DIR_A}))
    assert [(e.type, e.session_id) for e in await drain(hub.subscribe())] == [("session.status", "ses_2")]


async def test_after_the_stream_drops_busy_sessions_are_not_replayed_until_reported_again(
    hub: EventHub, upstream: Upstream
):
    await upstream.push(status("ses_1", "busy"), make_event(STREAM_DISCONNECTED))
    assert not hub.state.connected
    assert await drain(hub.subscribe()) == []
    await upstream.push(make_event(STREAM_CONNECTED, reconnects=1), status("ses_1", "busy"))
    assert hub.state.connected
    assert [e.session_id for e in await drain(hub.subscribe())] == ["ses_1"]


# --- robustness and lifecycle -----------------------------------------------------------------


async def test_a_listener_that_raises_does_not_stop_delivery(hub: EventHub, upstream: Upstream):
    seen: list[str] = []

    def broken(event: GlobalEvent) -> None:
        raise RuntimeError("listener bug")

    hub.add_listener(broken)
    hub.add_listener(lambda e: seen.append(e.type))
    sub = hub.subscribe()
    await upstream.push(status("ses_1", "busy"), delta("ses_1", "x"), status("ses_1", "idle"))
    assert [e.type for e in await read(sub, 3)] == ["session.status", "message.part.delta", "session.status"]
    assert seen == ["session.status", "message.part.delta", "session.status"]
    # The hub's own state kept up too.
    await upstream.push(status("ses_2", "busy"))
    assert list(hub.state.statuses) == ["ses_2"]


async def test_an_event_the_hub_cannot_read_does_not_stop_delivery(upstream: Upstream):
    hub = EventHub(upstream.events)
    await hub.start()
    sub = hub.subscribe()
    try:
        for event in (status("ses_1", "compacting"), status("ses_1", "busy")):
            upstream.queue.put_nowait(event)
        got = []
        with pytest.raises(asyncio.TimeoutError):
            while True:
                got.append((await sub.get(timeout=1)).payload.properties["status"]["type"])
        assert got == ["compacting", "busy"]
    finally:
        with contextlib.suppress(Exception):  # today stop() re-raises the dead pump's error
            await hub.stop()


async def test_get_times_out_when_nothing_arrives(hub: EventHub):
    sub = hub.subscribe()
    with pytest.raises(asyncio.TimeoutError):
        await sub.get(timeout=0.05)


async def test_leaving_a_subscription_stops_its_delivery(hub: EventHub, upstream: Upstream):
    with hub.subscribe() as sub:
        await upstream.push(delta("ses_1", "a"))
    await upstream.push(delta("ses_1", "b"))
    assert sub.closed
    assert [e.payload.properties["delta"] for e in await drain(sub)] == ["a"]


async def test_stopping_the_hub_ends_every_subscribers_iteration(upstream: Upstream):
    hub = EventHub(upstream.events)
    await hub.start()
    sub = hub.subscribe()

    async def consume() -> list[str]:
        return [e.payload.properties["delta"] async for e in sub]

    reader = asyncio.create_task(consume())
    await upstream.push(delta("ses_1", "a"), delta("ses_1", "b"))
    await hub.stop()
    assert await asyncio.wait_for(reader, 5) == ["a", "b"]


# --- on the real server -------------------------------------------------------------------------


def _collapse(values: list[str]) -> list[str]:
    return [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]


async def test_subscribers_see_a_real_agents_turn_and_a_late_one_gets_its_final_state(palot: Palot, repo: Path):
    agent = await palot.agents.spawn(repo, "write hello please")
    worktree = agent.environment.directory
    # Subscribed after spawn: a session already busy by now arrives through the replay.
    session_sub = palot.hub.subscribe(session_id=agent.session_id, types=["session.status"])
    dir_sub = palot.hub.subscribe(directory=worktree, types=["file.edited", AGENT_UPDATED])
    try:
        agent = await palot.agents.wait(agent.id, timeout=60)
        assert agent.status == AgentStatus.COMPLETED, agent.error
        await asyncio.sleep(0.2)  # the agent's update is published just after the idle event

        statuses = [e.payload.properties["status"]["type"] for e in await drain(session_sub)]
        assert _collapse(statuses) == ["busy", "idle"]

        seen = await drain(dir_sub)
        assert [e.payload.properties["file"] for e in seen if e.type == "file.edited"] == [f"{worktree}/hello.txt"]
        updates = [e.payload.properties for e in seen if e.type == AGENT_UPDATED]
        assert all(u["agentID"] == agent.id for u in updates)
        assert updates[-1]["agent"]["status"] == "completed"
    finally:
        session_sub.close()
        dir_sub.close()

    with palot.hub.subscribe(directory=worktree) as late:
        replayed = await drain(late)
    # Idle now: no session status is replayed, only the agent's current state.
    assert [e.type for e in replayed] == [AGENT_UPDATED]
    assert replayed[0].payload.properties["agent"]["id"] == agent.id
    assert replayed[0].payload.properties["agent"]["status"] == "completed"


async def test_a_session_subscriber_sees_the_agents_file_edit_and_completion(palot: Palot, repo: Path):
    agent = await palot.agents.spawn(repo, "write hello please")
    worktree = agent.environment.directory
    with palot.hub.subscribe(session_id=agent.session_id, types=["file.edited", AGENT_UPDATED]) as sub:
        agent = await palot.agents.wait(agent.id, timeout=60)
        assert agent.status == AgentStatus.COMPLETED, agent.error
        await asyncio.sleep(0.2)
        seen = await drain(sub)
    with palot.hub.subscribe(session_id=agent.session_id, types=[AGENT_UPDATED]) as late:
        replayed = await drain(late)
    edited = [e.payload.properties["file"] for e in seen if e.type == "file.edited"]
    final = [e.payload.properties["agent"]["status"] for e in seen if e.type == AGENT_UPDATED][-1:]
    replayed_status = [e.payload.properties["agent"]["status"] for e in replayed]
    assert (edited, final, replayed_status) == ([f"{worktree}/hello.txt"], ["completed"], ["completed"])


async def test_an_extra_source_is_fanned_out_without_touching_the_primary_connection():
    from palot.events import EventHub, make_event
    from palot.opencode import STREAM_CONNECTED

    async def primary():
        yield make_event(STREAM_CONNECTED)
        await asyncio.sleep(3600)

    async def container():
        yield make_event(STREAM_CONNECTED)
        yield make_event("session.status", "/in/container", sessionID="ses_c", status={"type": "busy"})
        await asyncio.sleep(3600)

    hub = EventHub(primary)
    await hub.start()
    with hub.subscribe(directory="/in/container", types=["session.status"], replay=False) as sub:
        hub.add_source("env_1", container)
        event = await sub.get(timeout=5)
        assert event.type == "session.status" and hub.state.statuses["ses_c"].type == "busy"
    assert hub.state.connected
    await hub.remove_source("env_1")
    await hub.stop()
