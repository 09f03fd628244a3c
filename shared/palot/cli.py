"""``palot``: the command line, a thin client of the Palot service. Every command takes ``--json``.

Each agent command sends one :data:`palot.api.ACTIONS` request through :class:`palot.client.PalotClient`
(which starts the service when none runs); :data:`ACTION_COMMANDS` says which command runs which action,
and each request field is an argument of the same name. Machine administration (doctor, up/down, images,
cloud, demo, serve) is in :mod:`palot.admin`, the ``palot`` entry point, which adds those commands here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.text import Text

from . import api, render
from .client import PalotClient
from .errors import InvalidInput, PalotError, ServiceLogMissing, ServiceUnavailable

# Strings print as written (agent titles, paths and errors may contain "[/x]"); style goes in ``Text``.
console = render.console()
err_console = render.console(stderr=True)

#: Exit codes (README: "Exit codes"). 2 is any error Palot refused or could not carry out (see ``main``).
EXIT_OK, EXIT_FAILED, EXIT_ERROR, EXIT_STILL_RUNNING, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 70, 130

#: The command (argv prefix) that runs each action of :data:`palot.api.ACTIONS`; its arguments carry the
#: request's field names (a container option such as ``memory`` stands for ``options.memory``).
ACTION_COMMANDS: dict[str, list[str]] = {
    "status": ["service", "status"],
    "projects": ["projects"],
    "models": ["models"],
    "list": ["agents", "list"],
    "get": ["agents", "show"],
    "spawn": ["agents", "spawn"],
    "prompt": ["agents", "prompt"],
    "abort": ["agents", "abort"],
    "reply": ["agents", "reply"],
    "wait": ["agents", "wait"],
    "activity": ["agents", "activity"],
    "messages": ["agents", "messages"],
    "diff": ["agents", "diff"],
    "apply": ["agents", "apply"],
    "create_pr": ["agents", "pr"],
    "archive": ["agents", "archive"],
    "destroy": ["agents", "destroy"],
    "environment": ["agents", "env"],
    "move": ["agents", "move"],
    "moves": ["agents", "moves"],
    "audit": ["agents", "audit"],
    "budget": ["agents", "budget"],
    "inbox": ["inbox"],
    "inbox_reply": ["inbox", "reply"],
    "settings": ["settings"],
    "templates": ["templates", "list"],
    "template_show": ["templates", "show"],
    "template_add": ["templates", "add"],
    "template_remove": ["templates", "remove"],
    "retry": ["agents", "retry"],
    "request_changes": ["agents", "request-changes"],
    "bulk": ["agents", "bulk"],
    "du": ["du"],
    "gc": ["gc"],
}
#: The actions of ``palot templates <command>``, by command.
TEMPLATE_ACTIONS = {cmd[1]: action for action, cmd in ACTION_COMMANDS.items() if cmd[0] == "templates"}
#: Commands that act on one agent, or on every agent their filters select (``bulk``) when given filters.
BULK_COMMANDS = ("archive", "abort", "destroy")
_FILTERS = ("status", "project", "environment", "older_than", "title", "agents")
#: The nested request field whose own fields are separate arguments.
NESTED = {"options": api.ContainerOptions}


def _dump(value: Any) -> None:
    def default(o: Any) -> Any:
        if hasattr(o, "model_dump"):
            return o.model_dump(mode="json")
        raise TypeError(type(o).__name__)

    print(json.dumps(value, default=default, indent=2))


def _progress(args: argparse.Namespace) -> Callable[[str], None]:
    """Progress lines go to stderr (stdout stays the answer); none with --json."""
    if getattr(args, "json", False):
        return lambda _m: None
    return lambda m: err_console.print(Text(m, "bright_black"), soft_wrap=True)


def request_args(action: str, args: argparse.Namespace) -> dict[str, Any]:
    """The request of ``action`` from the parsed command line: each field from the argument of its name."""
    values: dict[str, Any] = {}
    for name in api.ACTIONS[action].request.model_fields:
        if name in NESTED:
            nested = {f: getattr(args, f, None) for f in NESTED[name].model_fields}
            values[name] = {k: v for k, v in nested.items() if v not in (None, [])} or None
        else:
            values[name] = getattr(args, name, None)
    # The service runs elsewhere (its own working directory): paths are sent absolute.
    if action in ("spawn", "models"):
        values["project"] = os.path.abspath(os.path.expanduser(values.get("project") or "."))
    elif values.get("project") and os.path.exists(os.path.expanduser(values["project"])):
        values["project"] = os.path.abspath(os.path.expanduser(values["project"]))
    if action == "spawn":
        values["vars"] = _vars(values.get("vars") or [])
    if action == "template_add" and values.get("prompt") == "-":
        values["prompt"] = sys.stdin.read()
    if action == "inbox_reply" and not values.get("permission_ids"):
        values["permission_ids"] = None  # `palot inbox reply once --tool bash`: no ids given
    if action == "request_changes":
        values["comments"] = _comments(args)
    if action == "bulk":
        values["operation"] = getattr(args, "operation", None) or args.action
        if values.get("project") and os.path.exists(os.path.expanduser(values["project"])):
            values["project"] = os.path.abspath(os.path.expanduser(values["project"]))
        values["dry_run"] = True if values.get("dry_run") is None else values["dry_run"]
        values["force"] = bool(values.get("force"))
    return values


def _var(text: str) -> tuple[str, str]:
    """``--var name=value``: one template variable."""
    name, eq, value = text.partition("=")
    if not eq or not name.strip():
        raise argparse.ArgumentTypeError(f"'{text}' is not NAME=VALUE (e.g. --var issue=42)")
    return name.strip(), value


def _vars(pairs: list[tuple[str, str]]) -> dict[str, str] | None:
    values: dict[str, str] = {}
    for name, value in pairs:
        if name in values:
            raise InvalidInput(f"--var {name} is given twice", f"give each variable once (--var {name}=VALUE)")
        values[name] = value
    return values or None


def _comments(args: argparse.Namespace) -> list[dict[str, Any]]:
    """``--comment PATH:LINE[-END]:TEXT`` (repeated) and ``--comments-file`` (a JSON list) as review comments."""
    out: list[dict[str, Any]] = []
    for text in getattr(args, "comments", None) or []:
        out.append(api.review_comment(text).model_dump())
    if getattr(args, "comments_file", None):
        path = Path(args.comments_file).expanduser()
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise InvalidInput(f"cannot read the comments of {path}: {e}",
                               'give a JSON list: [{"path": "src/app.py", "line": 12, "comment": "…"}]') from None
        if not isinstance(loaded, list):
            raise InvalidInput(f"{path} holds no list of comments",
                               'give a JSON list: [{"path": "src/app.py", "line": 12, "comment": "…"}]')
        out += loaded
    return out


async def _with_client(args: argparse.Namespace, fn: Callable[[PalotClient], Awaitable[Any]], *,
                       autostart: bool = True) -> Any:
    async with PalotClient(autostart=autostart, progress=_progress(args)) as client:
        return await fn(client)


# --- agents --------------------------------------------------------------------------------


#: The actions of ``palot agents <command>``, by command.
AGENT_ACTIONS = {cmd[1]: action for action, cmd in ACTION_COMMANDS.items() if cmd[0] == "agents"}
LONG_ACTIONS = {name for name, spec in api.ACTIONS.items() if spec.long}


def cmd_agents(args: argparse.Namespace) -> int:
    command = args.action
    if command == "watch":
        return cmd_watch(args)
    if command == "bulk" or (command in BULK_COMMANDS and _bulk_wanted(args)):
        return cmd_bulk(args)
    action = AGENT_ACTIONS[command]

    overview: list[api.ServiceStatus] = []

    async def run(client: PalotClient) -> Any:
        progress = _progress(args) if action in LONG_ACTIONS and action != "wait" else None
        result = await client.call(action, request_args(action, args), progress=progress)
        if action == "list" and not args.json:
            try:
                overview.append(await client.status())  # today's spend and the inbox, under the table
            except PalotError:
                pass  # the list is the answer; the overview line is a bonus
        if action == "get":
            return {"agent": result, "activity": await client.activity(result.id)}
        if action == "spawn" and args.wait:
            return await client.wait(result.id, timeout=args.timeout)
        if action == "apply":
            return {"applied": result}
        if action == "destroy":
            return {"destroyed": args.agent}
        return result

    result = asyncio.run(_with_client(args, run))
    if args.json:
        _dump(result)
    else:
        _print_result(command, result, args)
        line = render.overview_line(overview[0]) if overview else None
        if line is not None:
            console.print(line, soft_wrap=True)
    return _outcome_code(args, result)


def _bulk_wanted(args: argparse.Namespace) -> bool:
    """``palot agents archive --status completed``: filters instead of one agent (both is a mistake)."""
    filtered = [f"--{f.replace('_', '-')}" for f in _FILTERS if getattr(args, f, None)]
    if args.agent and filtered:
        raise InvalidInput(f"give one agent or filters ({', '.join(filtered)}), not both",
                           f"`palot agents {args.action} AGENT`, or `palot agents {args.action} --status …` for many")
    if args.agent and getattr(args, "dry_run", None):  # never do for real what was asked as a rehearsal
        raise InvalidInput("--dry-run goes with filters, not with one agent given as AGENT",
                           f"to see the plan for one agent: `palot agents {args.action} --only {args.agent} --dry-run`")
    if not args.agent and not filtered:
        raise InvalidInput(f"say which agent to {args.action}",
                           f"give its id, or filters for many: `palot agents {args.action} --status completed "
                           "--project P` (--env, --older-than 7d, --title …)")
    return not args.agent


def cmd_bulk(args: argparse.Namespace) -> int:
    """A bulk action: the plan first (a dry run), then — confirmed, or with --yes — the plan carried out."""
    request = request_args("bulk", args)
    operation = request["operation"]

    async def run(client: PalotClient) -> tuple[api.BulkResult, api.BulkResult | None]:
        plan: api.BulkResult = await client.call("bulk", {**request, "dry_run": True})
        todo = [i.agent_id for i in plan.items if i.outcome == "would"]
        if args.dry_run or not todo:
            return plan, None
        if not args.yes:
            if args.json or not sys.stdin.isatty():
                return plan, None
            _print_bulk(plan)
            noun = f"{len(todo)} agent{'s' if len(todo) != 1 else ''}"
            answer = console.input(Text(f"{operation.capitalize()} these {noun}? [y/N] "))  # [y/N] is not markup
            if answer.strip().lower() not in ("y", "yes"):
                return plan, api.BulkResult(operation=operation, dry_run=True, items=[])
        done = await client.call("bulk", {**request, "agents": todo, "dry_run": False}, progress=_progress(args))
        return plan, done

    plan, done = asyncio.run(_with_client(args, run))
    if args.json:
        _dump(done or plan)
        return EXIT_OK
    if done is None:
        _print_bulk(plan)
        if any(i.outcome == "would" for i in plan.items) and not args.dry_run:
            console.print(Text(f"nothing was done: run it again with --yes to {operation} them "
                               "(or answer the question in a terminal)"), soft_wrap=True)
        elif args.dry_run:
            console.print(Text("dry run: nothing was done"))
        return EXIT_OK
    if not done.items:
        console.print(Text("nothing was done"))
        return EXIT_OK
    _print_bulk(done)
    return EXIT_FAILED if done.count("failed") else EXIT_OK


def _print_bulk(result: api.BulkResult) -> None:
    for item in result.items:
        console.print(render.bulk_line(item), soft_wrap=True)
    console.print(render.bulk_summary(result), soft_wrap=True)


def _outcome_code(args: argparse.Namespace, result: Any) -> int:
    """Non-zero when what a command waited for did not go well: the agent failed, or is still running."""
    waited = args.action in ("wait", "watch") or (args.action == "spawn" and args.wait)
    if not waited or not isinstance(result, api.Agent):
        return EXIT_OK
    if result.status == api.AgentStatus.FAILED:
        return EXIT_FAILED
    return EXIT_STILL_RUNNING if result.status.active else EXIT_OK


def _print_result(command: str, result: Any, args: argparse.Namespace) -> None:
    if command == "list":
        console.print(render.agents_table(result) if result else "no agents yet — `palot agents spawn PATH PROMPT`")
    elif command == "show":
        agent = result["agent"]
        console.print(render.agents_table([agent]))
        env = agent.environment
        console.print(Text(f"directory: {env.directory}"
                           + (f" (on this machine: {env.host_path})" if env.host_path and env.host_path != env.directory
                              else "")))
        if env.unavailable:
            console.print(Text(env.unavailable, "yellow"))
        if env.branch:
            console.print(Text(f"branch: {env.branch}"))
        budget = render.budget_text(agent)
        if budget is not None:
            console.print(budget)
        if agent.pause_reason:
            console.print(Text.assemble(("paused by Palot:", "yellow"), f" {agent.pause_reason}"))
        if agent.error:
            console.print(Text.assemble(("error:", "red"), f" {agent.error}"))
        for p in agent.permissions:
            console.print(Text.assemble(("waiting for permission", "yellow"), f" {p.id}: {p.summary} — "
                                        f"`palot agents reply {agent.id} once|always|reject`"))
        for item in result["activity"]:
            console.print(render.activity_line(item))
    elif command == "activity":
        for item in result:
            console.print(render.activity_line(item))
    elif command == "messages":
        for message in result:
            console.print(render.message_text(message))
        if not result:
            console.print("no messages yet")
    elif command == "diff":
        console.print(render.diff_summary(result))
        if result.unavailable:
            console.print(Text(result.unavailable, "yellow"))
        if not args.stat:
            console.print(render.patch_text(result.patch))
    elif command == "apply":
        console.print(Text(f"applied {len(result['applied'])} files to your checkout: {', '.join(result['applied'])}"))
    elif command == "destroy":
        console.print(Text(f"destroyed {result['destroyed']}"))
    elif command == "pr":
        console.print(Text(result.message))
    elif command == "move":
        console.print(Text(
            f"moved {result.agent_id} from its {result.source} to a {result.target} in {result.seconds:.1f} s: "
            f"{result.directory} on {result.branch}, {result.messages} messages, {result.files_changed} changed files"
            + (f", restarted: {'; '.join(result.processes_restarted)}" if result.processes_restarted else "")
            + (" — resumed with a note" if result.resumed else "")))
    elif command == "moves":
        for m in result:
            console.print(Text(f"{m.id} → {m.target_type}: {m.state}" + (f" at {m.step}" if m.step else "")
                               + (f" ({m.error})" if m.error else "")))
        if not result:
            console.print("this agent has never moved")
    elif command == "audit":
        for entry in result:
            console.print(render.audit_line(entry))
        if not result:
            console.print("the audit log is empty")
    elif command == "budget":
        console.print(render.agents_table([result]))
        console.print(render.budget_text(result) or Text("no budget"))
        if result.pause_reason:
            console.print(Text.assemble(("paused by Palot:", "yellow"), f" {result.pause_reason}"))
    elif command == "env":
        console.print(Text(f"{result.type} {result.state} at {result.directory} on {result.branch}"
                           + (f" — {result.resources}" if result.resources else "")))
        if result.dev_ports:
            console.print(Text(f"dev-server ports: {result.dev_ports} (PALOT_PORT={result.dev_port}, "
                               f"PALOT_PORTS={result.dev_ports})"))
        if result.unavailable:
            console.print(Text(result.unavailable, "yellow"))
    else:
        console.print(render.agents_table([result]))


def cmd_watch(args: argparse.Namespace) -> int:
    """Live events; with an agent, its events until it settles (exit code as ``palot agents wait``)."""

    async def run(client: PalotClient) -> api.Agent | None:
        watcher = render.EventPrinter(console)

        def show(event: api.Event) -> None:
            if args.json:
                print(event.model_dump_json(exclude_none=True), flush=True)
            else:
                watcher.show(event)

        agent = await client.get(args.agent) if args.agent else None
        agent_id = agent.id if agent else None
        if agent is not None and agent.status == api.AgentStatus.ARCHIVED:  # not in the replay; never changes
            show(api.Event(type=api.AGENT_UPDATED, agent_id=agent.id, agent=agent))
            return agent
        # replay: the state of every agent first, so a settled agent is known at once (no race with the stream)
        async for event in client.events(replay=True):
            if agent_id and event.agent_id != agent_id and event.type != api.RESYNC:
                continue
            show(event)
            if agent_id and event.type == api.AGENT_REMOVED:
                return None
            if agent_id and event.type == api.RESYNC:
                event = api.Event(type=api.AGENT_UPDATED, agent_id=agent_id, agent=await client.get(agent_id))
            if agent_id and event.agent is not None and event.agent.status in api.SETTLED:
                return event.agent
        return None

    result = asyncio.run(_with_client(args, run))
    return _outcome_code(args, result)


# --- the other API actions -----------------------------------------------------------------


def cmd_models(args: argparse.Namespace) -> int:
    models = asyncio.run(_with_client(args, lambda c: c.call("models", request_args("models", args))))
    if args.json:
        _dump({"models": models})
    else:
        for name in models:
            console.print(Text(name))
        if not models:
            console.print("no models: add a provider to your OpenCode config (`opencode auth login`)")
    return EXIT_OK


def cmd_projects(args: argparse.Namespace) -> int:
    projects = asyncio.run(_with_client(args, lambda c: c.projects()))
    if args.json:
        _dump(projects)
    else:
        for p in projects:
            console.print(Text.assemble((p.name, "bold"), f"  {p.path}  ({p.id})"))
        if not projects:
            console.print("no projects yet — `palot agents spawn PATH PROMPT` adds one")
    return EXIT_OK


def cmd_inbox(args: argparse.Namespace) -> int:
    """``palot inbox``: every pending permission request, oldest first; ``palot inbox reply``: answer many."""
    action = "inbox_reply" if args.inbox_action == "reply" else "inbox"
    items = asyncio.run(_with_client(args, lambda c: c.call(action, request_args(action, args))))
    if args.json:
        _dump(items)
    elif action == "inbox":
        if items:
            console.print(render.inbox_table(items), soft_wrap=True, end="")
        else:
            console.print("Nothing is waiting for you.")
    elif items:
        console.print(Text(f"answered {len(items)} request{'s' if len(items) != 1 else ''} with {args.reply}:"))
        for item in items:
            console.print(render.inbox_line(item), soft_wrap=True)
    else:
        console.print("no pending request matched: nothing was answered (see `palot inbox`)")
    return EXIT_OK


def cmd_settings(args: argparse.Namespace) -> int:
    """``palot settings``: the settings the service runs with; exit 1 when the file on disk has a mistake."""
    view = asyncio.run(_with_client(args, lambda c: c.call("settings")))
    if args.json:
        _dump(view)
    else:
        console.print(render.settings_text(view), soft_wrap=True)
    return EXIT_FAILED if view.error else EXIT_OK


def cmd_templates(args: argparse.Namespace) -> int:
    """``palot templates [list|show|add|remove]``: the prompt templates agents can be spawned from."""
    action = TEMPLATE_ACTIONS[args.template_action or "list"]
    result = asyncio.run(_with_client(args, lambda c: c.call(action, request_args(action, args))))
    if args.json:
        _dump(result)
    elif action == "templates":
        console.print(render.templates_text(result) if result else Text(
            "no templates yet — `palot templates add NAME --prompt TEXT [--project PATH]`"), soft_wrap=True, end="")
    elif action == "template_show":
        console.print(render.template_text(result), soft_wrap=True)
    elif action == "template_add":
        console.print(Text(result.message + (f" (variables: {', '.join(result.template.variables)})"
                                             if result.template.variables else "")), soft_wrap=True)
        console.print(Text(f"spawn with: {render.template_spawn_command(result.template)}", "bright_black"),
                      soft_wrap=True)
    else:
        console.print(Text(result.message), soft_wrap=True)
    return EXIT_OK


def cmd_du(args: argparse.Namespace) -> int:
    """``palot du``: disk used per agent, project and environment type."""

    async def run(client: PalotClient) -> tuple[api.DiskUse, dict[str, str]]:
        use = await client.call("du")
        titles = {a.id: a.title for a in await client.list(include_archived=True, include_external=False)}
        return use, titles

    use, titles = asyncio.run(_with_client(args, run))
    if args.json:
        _dump(use)
    else:
        console.print(render.du_text(use, titles), soft_wrap=True, end="")
    return EXIT_OK


def cmd_gc(args: argparse.Namespace) -> int:
    """``palot gc``: what no agent owns; ``--yes`` removes what holds no work. Exit 1 when something that
    holds work was left (or could not be removed)."""
    report = asyncio.run(_with_client(args, lambda c: c.call("gc", request_args("gc", args),
                                                            progress=_progress(args))))
    if args.json:
        _dump(report)
    else:
        console.print(render.gc_text(report), soft_wrap=True, end="")
    left = [o for o in report.orphans if not o.removed and (o.error or (report.removing and not o.safe))]
    return EXIT_FAILED if left else EXIT_OK


# --- the service ---------------------------------------------------------------------------


async def service_status(client: PalotClient) -> api.ServiceStatus | None:
    """The service's status, or None when it is not running (never starting it)."""
    try:
        return await client.connect()
    except ServiceUnavailable:
        return None


def cmd_service(args: argparse.Namespace) -> int:
    if args.action == "logs":
        return _service_logs(args)

    async def run(client: PalotClient) -> Any:
        status = await service_status(client)
        if args.action == "status":
            return status
        if args.action in ("stop", "restart") and status is not None:
            await client.stop_service(stop_opencode=getattr(args, "opencode", False))
            await wait_gone(status.pid)  # it holds the home's lock until it exits
        if args.action == "stop":
            return status
        async with PalotClient(progress=_progress(args)) as fresh:  # restart: starts it with its options
            return await fresh.status()

    client = PalotClient(autostart=False, progress=_progress(args))
    socket = str(client.endpoint.socket)
    status = asyncio.run(_closing(client, run))
    if args.json:
        body: dict[str, Any] = {"running": status is not None and args.action != "stop", "socket": socket}
        if status is not None:
            body.update(status.model_dump(mode="json"))
        _dump(body)
    elif args.action == "stop":
        console.print(Text(f"stopped the Palot service (pid {status.pid})" if status
                           else "the Palot service was not running"))
    elif status is None:
        console.print(Text(f"the Palot service is not running (socket {socket}); any palot command starts it"),
                      soft_wrap=True)
    else:
        console.print(render.service_status(status, socket), soft_wrap=True)
    return EXIT_FAILED if args.action == "status" and status is None else EXIT_OK


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, exited but not yet reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


async def wait_gone(pid: int, timeout: float = 30.0) -> bool:
    """Wait until ``pid`` has exited: the service answers no more before it has stopped its core."""
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def _closing(client: PalotClient, fn: Callable[[PalotClient], Awaitable[Any]]) -> Any:
    try:
        return await fn(client)
    finally:
        await client.close()


def _service_logs(args: argparse.Namespace) -> int:
    log_file = PalotClient(autostart=False).endpoint.log_file
    try:
        fh = open(log_file, "rb")  # noqa: SIM115 - followed below
    except FileNotFoundError:
        raise ServiceLogMissing(f"the Palot service has no log yet ({log_file})",
                                "start it with `palot up` (or any palot command)") from None
    with fh:
        lines = fh.read().decode(errors="replace").splitlines()
        for line in lines[-args.lines:] if args.lines > 0 else []:
            print(line)
        sys.stdout.flush()
        while args.follow:
            chunk = fh.read()
            if chunk:
                sys.stdout.write(chunk.decode(errors="replace"))
                sys.stdout.flush()
                continue
            try:  # rotated (the log is a RotatingFileHandler): follow the new file
                if log_file.stat().st_ino != os.fstat(fh.fileno()).st_ino:
                    fh.close()
                    fh = open(log_file, "rb")  # noqa: SIM115
                    continue
            except FileNotFoundError:
                pass
            time.sleep(0.3)
    return EXIT_OK


# --- parser --------------------------------------------------------------------------------


def _add_container_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--memory", help="container memory limit, e.g. 2g")
    parser.add_argument("--cpus", type=float, help="container CPU limit, e.g. 1.5")
    parser.add_argument("--pids", type=int, help="container process limit")
    parser.add_argument("--network", choices=["full", "none"], help="container network (default full)")
    parser.add_argument("--port", "--ports", dest="ports", type=int, action="append",
                        help="container port to publish on 127.0.0.1 (repeat)")


def _add_agent_commands(asub: Any) -> None:
    ls = asub.add_parser("list", help="agents across all projects")
    ls.add_argument("--project", help="a project's path, name or id")
    ls.add_argument("--status", action="append", help="running, waiting, paused, completed, failed, archived …")
    ls.add_argument("--env", "--environment", dest="environment", help="worktree, container, cloud or external")
    ls.add_argument("--all", "--include-archived", dest="include_archived", action="store_true",
                    help="include archived agents")
    ls.add_argument("--include-external", action=argparse.BooleanOptionalAction, default=True,
                    help="include OpenCode sessions Palot did not start (default: yes)")

    sp = asub.add_parser("spawn", help="start an agent in a new worktree, container or cloud environment")
    sp.add_argument("project", help="path of a git repository")
    sp.add_argument("prompt", nargs="?", help="what the agent should work on (or give --template)")
    sp.add_argument("--template", help=_help(api.SpawnRequest, "template") + " (see `palot templates list`)")
    sp.add_argument("--var", dest="vars", action="append", type=_var, metavar="NAME=VALUE",
                    help="a value for one of the template's {variables} (repeat)")
    sp.add_argument("--title")
    sp.add_argument("--model", help="provider/model from your OpenCode config (see `palot models`)")
    sp.add_argument("--base-branch", help="branch or commit to start from (default: HEAD)")
    sp.add_argument("--branch", help="branch to create (default: palot/<slug of the title>)")
    sp.add_argument("--setup-script", "--setup", dest="setup_script", help="a bash script run in the new environment first")
    sp.add_argument("--permission-mode", "--permission", dest="permission_mode", choices=api.PERMISSION_MODES,
                    help="ask: edits and commands wait for your approval; auto: allow everything "
                         "(default: the template's, else OpenCode's rules)")
    sp.add_argument("--env", "--environment", dest="environment", choices=api.TARGET_TYPES,
                    help="where the agent runs (default: the template's, else worktree; "
                         "container: its own container from the agent image; "
                         "cloud: a Cloudflare Container behind Palot's Worker, see `palot cloud`)")
    sp.add_argument("--budget-usd", type=float, help=_help(api.SpawnRequest, "budget_usd"))
    sp.add_argument("--budget-tokens", type=int, help=_help(api.SpawnRequest, "budget_tokens"))
    _add_container_options(sp)
    sp.add_argument("--wait", action="store_true", help="wait until the agent settles")
    sp.add_argument("--timeout", type=float, default=600, help="with --wait: seconds at most (default 600)")

    rt = asub.add_parser("retry", help="a new agent from the same prompt, base commit and options "
                                       "(the old one is left as it is)")
    rt.add_argument("agent")
    rc = asub.add_parser("request-changes", help="send the agent review comments on its diff as one prompt",
                         description="Each comment is PATH:LINE:TEXT or PATH:FIRST-LAST:TEXT, on a file and lines of "
                                     "the agent's diff (`palot agents diff AGENT`).")
    rc.add_argument("agent")
    rc.add_argument("--comment", dest="comments", action="append", metavar="PATH:LINE:TEXT",
                    help="a review comment, e.g. 'src/app.py:12:use a constant' (repeat)")
    rc.add_argument("--comments-file", metavar="FILE",
                    help='a JSON list of comments: [{"path": …, "line": …, "end_line"?: …, "comment": …}]')
    rc.add_argument("--note", help=_help(api.RequestChangesRequest, "note"))
    bk = asub.add_parser("bulk", help="archive, abort or destroy every agent the filters select (a plan first)")
    bk.add_argument("operation", choices=api.BULK_OPERATIONS)
    _add_bulk_options(bk)
    bk.add_argument("--force", action="store_true", help=_help(api.BulkRequest, "force"))

    ap = asub.add_parser("apply", help="apply the agent's changes to your checkout")
    ap.add_argument("agent")
    ap.add_argument("--path", help="only this file (relative to the project)")
    for name, helptext in (("abort", "stop the current turn (with filters instead of AGENT: of every agent they "
                                     "select)"),
                           ("archive", "stop the agent, remove its environment, keep its branch (with filters "
                                       "instead of AGENT: every agent they select)")):
        one = asub.add_parser(name, help=helptext)
        one.add_argument("agent", nargs="?")
        _add_bulk_options(one)
    for name, helptext in (("show", "one agent with its activity"),
                           ("messages", "the agent's conversation"),
                           ("env", "the agent's environment: state, directory, resources"),
                           ("moves", "the agent's moves between environments")):
        asub.add_parser(name, help=helptext).add_argument("agent")
    pr = asub.add_parser("prompt", help="send the agent another prompt")
    pr.add_argument("agent")
    pr.add_argument("text")
    pr.add_argument("--model", help="provider/model for this turn")
    rp = asub.add_parser("reply", help="answer a pending permission request")
    rp.add_argument("agent")
    rp.add_argument("reply", choices=api.REPLIES)
    rp.add_argument("--permission-id", help="which request (needed when several are pending)")
    rp.add_argument("--message", help="a note to the agent with a rejection")
    wt = asub.add_parser("wait", help="wait until the agent settles")
    wt.add_argument("agent")
    wt.add_argument("--timeout", type=float, default=600, help="seconds at most (default 600)")
    wt.add_argument("--until", action="append", choices=[s.value for s in api.AgentStatus],
                    help="a status to wait for (repeat; default: any settled one)")
    act = asub.add_parser("activity", help="the agent's structured activity")
    act.add_argument("agent")
    act.add_argument("--since", type=int, default=0, help="skip the first N items (a cursor)")
    df = asub.add_parser("diff", help="the agent's changes against its base commit")
    df.add_argument("agent")
    df.add_argument("--path", help="only this file")
    df.add_argument("--stat", action="store_true", help="file list only")
    prp = asub.add_parser("pr", help="push the agent's branch and open a PR (with gh when installed)")
    prp.add_argument("agent")
    prp.add_argument("--title")
    prp.add_argument("--body", help="the PR's description")
    prp.add_argument("--remote", default="origin")
    prp.add_argument("--base", help="branch the PR targets (default: the repository's default)")
    mv = asub.add_parser("move", help="move the agent to another environment, with its code and conversation")
    mv.add_argument("agent")
    mv.add_argument("target", choices=api.TARGET_TYPES, help="the new environment")
    _add_container_options(mv)
    mv.add_argument("--resume", action=argparse.BooleanOptionalAction, default=None,
                    help="send the agent a note to carry on (default: only if the move stopped a turn)")
    ds = asub.add_parser("destroy", help="remove the agent, its worktree and branch (with filters instead of AGENT: "
                                         "of every agent they select)")
    ds.add_argument("agent", nargs="?")
    ds.add_argument("--force", action="store_true", help="even if its changes were never applied or merged")
    _add_bulk_options(ds)
    au = asub.add_parser("audit", help="the audit log, oldest first")
    au.add_argument("agent", nargs="?", help="only this agent's events")
    au.add_argument("--limit", type=int, default=200, help="at most this many entries (default 200)")
    bu = asub.add_parser("budget", help="set the agent's budget (USD and/or tokens); a paused agent may go on")
    bu.add_argument("agent")
    bu.add_argument("usd", nargs="?", type=float, help=_help(api.BudgetRequest, "usd") + ", e.g. 1.50")
    bu.add_argument("--tokens", type=int, help=_help(api.BudgetRequest, "tokens"))


def _add_bulk_options(parser: argparse.ArgumentParser) -> None:
    """The filters of a bulk action, and how it is confirmed."""
    parser.add_argument("--status", action="append", choices=[s.value for s in api.AgentStatus],
                        help="only agents in this status (repeat)")
    parser.add_argument("--project", help=_help(api.BulkRequest, "project"))
    parser.add_argument("--env", "--environment", dest="environment", choices=api.TARGET_TYPES,
                        help=_help(api.BulkRequest, "environment"))
    parser.add_argument("--older-than", metavar="AGE", help=_help(api.BulkRequest, "older_than"))
    parser.add_argument("--title", help=_help(api.BulkRequest, "title"))
    parser.add_argument("--only", dest="agents", action="append", metavar="AGENT",
                        help="only this agent (an id; repeat), within the other filters")
    parser.add_argument("--dry-run", action="store_true", default=None, help="only list what would happen")
    parser.add_argument("--yes", "-y", action="store_true", help="do it without asking (scripts)")


def _help(model: type[Any], field: str) -> str:
    """The API's own description of a request field, as an argument's help."""
    return model.model_fields[field].description or ""


def _add_inbox_commands(sub: Any) -> argparse.ArgumentParser:
    ib = sub.add_parser("inbox", help="every permission request waiting for you, oldest first; "
                                      "`palot inbox reply` answers many at once")
    ib.add_argument("--project", help=_help(api.InboxRequest, "project"))
    isub = ib.add_subparsers(dest="inbox_action", required=False)
    rp = isub.add_parser("reply", help="answer many pending permission requests at once",
                         description="Answer the requests named by id, and/or every request of one agent "
                                     "(--all-from) or for one tool (--tool), within --project.")
    rp.add_argument("reply", choices=api.REPLIES)
    rp.add_argument("permission_ids", nargs="*", metavar="ID", help="these requests (ids from `palot inbox`)")
    rp.add_argument("--all-from", "--agent", dest="agent", metavar="AGENT",
                    help=_help(api.InboxReplyRequest, "agent"))
    rp.add_argument("--tool", help=_help(api.InboxReplyRequest, "tool"))
    # SUPPRESS: `palot inbox --project P reply …` keeps the P given before `reply`
    rp.add_argument("--project", default=argparse.SUPPRESS, help=_help(api.InboxReplyRequest, "project"))
    rp.add_argument("--message", help=_help(api.InboxReplyRequest, "message"))
    rp.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    ib.set_defaults(func=cmd_inbox)
    return ib


def _add_template_commands(sub: Any) -> list[argparse.ArgumentParser]:
    """``palot templates``: list (the default), show, add, remove; returns the parsers that take ``--json``."""
    tp = sub.add_parser("templates", help="reusable prompts with {variables}, per project or for every project "
                                          "(`palot agents spawn PATH --template NAME --var k=v`)")
    tsub = tp.add_subparsers(dest="template_action", required=False)
    ls = tsub.add_parser("list", help="the templates (with --project: those usable there)")
    # SUPPRESS: `palot templates --project P list` keeps the P given before `list` (as --json)
    ls.add_argument("--project", default=argparse.SUPPRESS, help=_help(api.TemplatesRequest, "project"))
    tp.add_argument("--project", help=_help(api.TemplatesRequest, "project"))
    sh = tsub.add_parser("show", help="one template: its prompt, variables and defaults")
    rm = tsub.add_parser("remove", help="remove a template (agents spawned from it are not touched)")
    for parser in (sh, rm):
        parser.add_argument("name", help=_help(api.TemplateRef, "name"))
        parser.add_argument("--project", help=_help(api.TemplateRef, "project"))
    ad = tsub.add_parser("add", help="add a template, or replace the one of that name in that project")
    ad.add_argument("name", help=_help(api.TemplateAddRequest, "name"))
    ad.add_argument("--prompt", required=True, help=_help(api.TemplateAddRequest, "prompt") + "; - reads stdin")
    ad.add_argument("--project", help=_help(api.TemplateAddRequest, "project"))
    ad.add_argument("--title", help=_help(api.TemplateAddRequest, "title"))
    ad.add_argument("--env", "--environment", dest="environment", choices=api.TARGET_TYPES,
                    help=_help(api.TemplateAddRequest, "environment"))
    ad.add_argument("--model", help=_help(api.TemplateAddRequest, "model"))
    ad.add_argument("--permission-mode", "--permission", dest="permission_mode", choices=api.PERMISSION_MODES,
                    help=_help(api.TemplateAddRequest, "permission_mode"))
    ad.add_argument("--setup-script", "--setup", dest="setup_script", help=_help(api.TemplateAddRequest,
                                                                                 "setup_script"))
    for parser in (ls, sh, rm, ad):
        parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    tp.set_defaults(func=cmd_templates)
    return [tp]


Extend = Callable[[Any], list[argparse.ArgumentParser]]


def build_parser(extend: Extend | None = None) -> argparse.ArgumentParser:
    """The command line; ``extend(subparsers)`` adds more commands (``palot.admin``'s) and returns those that
    take ``--json``."""
    p = argparse.ArgumentParser(prog="palot", description="A control plane for OpenCode coding agents.")
    sub = p.add_subparsers(dest="command", required=True)
    json_parsers = list(extend(sub)) if extend else []

    mo = sub.add_parser("models", help="the provider/model names agents can use (for --model)")
    mo.add_argument("project", nargs="?", help="a project's path (its opencode.json may add models; default: here)")
    mo.set_defaults(func=cmd_models)
    pj = sub.add_parser("projects", help="the projects Palot knows")
    pj.set_defaults(func=cmd_projects)
    ib = _add_inbox_commands(sub)
    se = sub.add_parser("settings", help="the settings in use (budgets, permission rules, notifications) "
                                         "and any mistake in settings.toml")
    se.set_defaults(func=cmd_settings)
    templates = _add_template_commands(sub)
    du = sub.add_parser("du", help="disk used per agent, project and environment type")
    du.set_defaults(func=cmd_du)
    gc = sub.add_parser("gc", help="find what no agent owns (worktrees, palot/* branches, containers, volumes, "
                                   "move leftovers …) with sizes; --yes removes what holds no work")
    gc.add_argument("--yes", "-y", action="store_true", help=_help(api.GcRequest, "yes"))
    gc.add_argument("--force", action="store_true", help=_help(api.GcRequest, "force"))
    gc.set_defaults(func=cmd_gc)

    ag = sub.add_parser("agents", help="list, spawn, steer and review agents")
    asub = ag.add_subparsers(dest="action", required=True)
    _add_agent_commands(asub)
    ag.set_defaults(func=cmd_agents)
    wa = asub.add_parser("watch", help="live events (with an agent: its events until it settles)")
    wa.add_argument("agent", nargs="?", help="only this agent, until it settles")

    sv = sub.add_parser("service", help="the Palot service of this PALOT_HOME: status, stop, restart, logs")
    ssub = sv.add_subparsers(dest="action", required=True)
    ssub.add_parser("status", help="version, pid, socket, OpenCode, agents and clients")
    st = ssub.add_parser("stop", help="stop the service (OpenCode keeps running; `palot down` stops both)")
    st.add_argument("--opencode", action="store_true", help="stop the shared OpenCode server too")
    ssub.add_parser("restart", help="stop the service and start it again with the same options")
    lg = ssub.add_parser("logs", help="the end of the service's log")
    lg.add_argument("-n", "--lines", type=int, default=50, help="how many lines (default 50)")
    lg.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    sv.set_defaults(func=cmd_service)

    for sp_ in (*json_parsers, mo, pj, ib, se, du, gc, *templates, *asub.choices.values(),
                *ssub.choices.values()):
        sp_.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def main(argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None) -> int:
    args = (parser or build_parser()).parse_args(argv)
    try:
        return args.func(args)
    except PalotError as e:
        _print_error(args, e)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - a bug: one line for the person, the traceback in a file
        log_file = _log_traceback(e)
        _print_error(args, PalotError(f"palot failed unexpectedly ({type(e).__name__}: {str(e)[:300]})",
                                      f"this is a bug in Palot; the details are in {log_file}"), code="bug")
        return EXIT_BUG


def _print_error(args: argparse.Namespace, e: PalotError, code: str | None = None) -> None:
    if getattr(args, "json", False):
        print(json.dumps({"error": {"code": code or e.code, "message": e.message, "fix": e.fix}}))
    else:
        # Not wrapped: paths and commands in errors are copied from the terminal.
        err_console.print(Text.assemble(("error:", "red"), f" {e.message}",
                                        *(("\n", ("fix:", "yellow"), f" {e.fix}") if e.fix else ())), soft_wrap=True)


def _log_traceback(e: BaseException) -> str:
    import traceback

    text = "".join(traceback.format_exception(e))
    for folder in (PalotClient(autostart=False).paths.home / "logs", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "palot-cli-error.log"
            with open(path, "a") as fh:
                fh.write(f"--- {' '.join(sys.argv)}\n{text}\n")
            return str(path)
        except OSError:
            continue
    return "no file (no folder was writable)"


if __name__ == "__main__":
    sys.exit(main())
