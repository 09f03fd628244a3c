"""``palot``'s entry point: the client commands of :mod:`palot.cli` plus this machine's administration.

Doctor, up/down, images, cloud, demo and serve act on this machine (installing OpenCode, building the
agent image, deploying the Worker, running the service in the foreground), so they live here and may
use the core; every agent command stays a thin client of the service in :mod:`palot.cli`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.text import Text

from . import cli
from .cli import EXIT_FAILED, EXIT_OK, _dump, _progress, console, err_console
from .client import PalotClient
from .endpoint import Endpoint
from .errors import (
    ConfirmationRequired,
    InvalidInput,
    InvalidState,
    ServiceUnavailable,
    ServiceVersionMismatch,
)
from .paths import PalotPaths

START_TIMEOUT = 180.0  # the first start may install OpenCode


# --- the service ---------------------------------------------------------------------------


async def service_info(home: Path | None = None) -> dict[str, Any]:
    """Whether the service of ``home`` runs (never starting it): running, pid, version, socket."""
    client = PalotClient(home, autostart=False)
    info: dict[str, Any] = {"running": False, "pid": None, "version": None, "socket": str(client.endpoint.socket)}
    try:
        status = await client.connect()
        info.update(running=True, pid=status.pid, version=status.palot_version, opencode_url=status.opencode_url,
                    opencode_pid=status.opencode_pid, agents=status.agents)
    except ServiceVersionMismatch as e:  # it runs, another Palot version
        state = client.endpoint.read_state() or {}
        info.update(running=True, pid=state.get("pid"), version=state.get("palot_version"), problem=e.message)
    except ServiceUnavailable:
        pass
    finally:
        await client.close()
    return info


def start_service_process(paths: PalotPaths, *, scripted: str | None = None, isolated: bool = False,
                          opencode_bin: Path | None = None, port: int | None = None) -> subprocess.Popen[bytes]:
    """``palot serve`` for ``paths`` in the background (its own session: it outlives this command)."""
    args = [sys.executable, "-m", "palot.service", "--background"]
    if scripted:
        args += ["--scripted", scripted]
    if isolated:
        args.append("--isolated")
    if opencode_bin:
        args += ["--opencode-bin", str(opencode_bin)]
    if port:
        args += ["--port", str(port)]
    paths.ensure()
    return subprocess.Popen(args, env={**os.environ, "PALOT_HOME": str(paths.home)}, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


async def wait_for_service(paths: PalotPaths, proc: subprocess.Popen[bytes],
                           progress: Callable[[str], None] | None = None) -> PalotClient:
    """A connected client once the service started by ``proc`` answers; a clear error if it never does."""
    endpoint = Endpoint(paths)
    started = time.monotonic()
    told = False
    while True:
        client = PalotClient(paths.home, autostart=False)
        try:
            await client.connect()
            return client
        except ServiceUnavailable:
            await client.close()
        waited = time.monotonic() - started
        if progress and not told and waited > 1.0:
            progress(f"starting the Palot service for {paths.home} …")
            told = True
        code = proc.poll()
        if code not in (None, 0) or waited > START_TIMEOUT:
            errors = []
            with contextlib.suppress(OSError):
                errors = [ln.split(": ", 1)[-1] for ln in endpoint.log_file.read_text().splitlines() if " ERROR " in ln]
            reason = errors[-1] if errors else f"no answer within {START_TIMEOUT:.0f} s" if code is None else "no reason was logged"
            raise ServiceUnavailable(f"the Palot service did not start: {reason}",
                                     f"see {endpoint.log_file}, or run `palot serve` to watch it start")
        await asyncio.sleep(0.1)


def _same_settings(saved: dict[str, Any], scripted: str | None, isolated: bool) -> bool:
    def norm(script: str | None) -> str | None:
        return str(Path(script).expanduser().resolve()) if script and Path(script).expanduser().exists() else script

    return norm(saved.get("scripted")) == norm(scripted) and bool(saved.get("isolated")) == isolated


def cmd_up(args: argparse.Namespace) -> int:
    if args.port is not None and not 0 < args.port < 65536:
        raise InvalidInput(f"--port {args.port} is not a TCP port", "pass a port from 1 to 65535, or leave it out")
    paths = PalotPaths.default()
    scripted = os.path.abspath(args.scripted) if args.scripted and os.path.exists(args.scripted) else args.scripted

    async def run() -> tuple[Any, bool]:
        client = PalotClient(autostart=False)
        try:
            status = await client.connect()
        except ServiceUnavailable:
            status = None
        finally:
            await client.close()
        if status is not None:
            saved = (Endpoint(paths).read_state() or {}).get("options") or {}
            if not _same_settings(saved, scripted, args.isolated):
                raise InvalidState(
                    f"the Palot service of {paths.home} already runs with other settings "
                    f"(scripted: {saved.get('scripted') or 'no'}, isolated: {'yes' if saved.get('isolated') else 'no'})",
                    "run `palot down` first, then `palot up` with the settings you want")
            return status, True
        proc = start_service_process(paths, scripted=scripted, isolated=args.isolated, port=args.port)
        client = await wait_for_service(paths, proc, _progress(args))
        try:
            return await client.status(), False
        finally:
            await client.close()

    status, attached = asyncio.run(run())
    saved = (Endpoint(paths).read_state() or {}).get("options") or {}
    from .servers import ServerManager

    server = ServerManager.read_running(paths)
    info = {"url": status.opencode_url, "pid": status.opencode_pid, "attached": attached,
            "version": server.version if server else None, "scripted": bool(saved.get("scripted")),
            "isolated": bool(saved.get("isolated")),
            "service": {"pid": status.pid, "version": status.palot_version,
                        "socket": str(Endpoint(paths).socket)}}
    if args.json:
        _dump(info)
    else:
        verb = "already running" if attached else "started"
        console.print(Text(f"Palot service {status.palot_version} {verb} (pid {status.pid}); "
                           f"OpenCode {info['version'] or ''} at {status.opencode_url} (pid {status.opencode_pid})"
                           + (" with the scripted model" if info["scripted"] else "")))
    return EXIT_OK


def cmd_down(args: argparse.Namespace) -> int:
    from .servers import ServerManager

    paths = PalotPaths.default()

    async def run() -> tuple[dict[str, Any], bool]:
        service = await service_info()
        if service["running"]:
            client = PalotClient(autostart=False)
            try:
                await client.stop_service(stop_opencode=True)
            finally:
                await client.close()
            if service["pid"]:
                await cli.wait_gone(service["pid"])  # stopped means its OpenCode server is stopped too
        # An OpenCode server without a service (e.g. the service was killed): stop it too.
        opencode = ServerManager.read_running(paths) is not None
        if opencode:
            await ServerManager(paths, supervise=False).stop()
        return service, opencode

    service, opencode = asyncio.run(run())
    stopped = service["running"] or opencode
    if args.json:
        _dump({"stopped": stopped, "service": service["running"], "opencode": opencode or service["running"]})
    elif stopped:
        console.print(Text(f"stopped the Palot service (pid {service['pid']}) and the shared OpenCode server"
                           if service["running"] else "stopped the shared OpenCode server"))
    else:
        console.print("no Palot server was running")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from .service.main import main as serve

    return serve(args.serve_args)


# --- this machine --------------------------------------------------------------------------


def cmd_doctor(args: argparse.Namespace) -> int:
    from .install import doctor
    from .servers import ServerManager

    paths = PalotPaths.default()
    checks = doctor(paths, fix=args.fix, progress=(lambda m: None) if args.quiet else err_console.print)
    running = ServerManager.read_running(paths)
    service = asyncio.run(service_info())
    if args.json:
        _dump({"checks": [c.__dict__ for c in checks],
               "server": {"url": running.url, "pid": running.pid} if running else None,
               "service": service})
    elif not args.quiet or not all(c.ok for c in checks):
        for c in checks:
            mark = ("!", "yellow") if c.warning else ("✓", "green") if c.ok else ("✕", "red")
            line = Text.assemble(mark, f" {c.name:9} {c.detail}")
            if c.fix:
                line.append_text(Text.assemble("\n  ", ("fix:", "yellow"), f" {c.fix}"))
            console.print(line)
        console.print(Text("  service   " + (
            f"running, Palot {service['version']} (pid {service['pid']}) on {service['socket']}"
            + (f" — {service['problem']}" if service.get("problem") else "")
            if service["running"] else "not running (any palot command starts it)")))
        console.print(Text(f"  server    {running.url + f' (pid {running.pid})' if running else 'not running'}"))
    return EXIT_OK if all(c.ok for c in checks) else EXIT_FAILED


def cmd_images(args: argparse.Namespace) -> int:
    from .images import build_agent_image, image_status
    from .paths import cache_dir

    if args.action == "build":
        progress = (lambda m: None) if args.json else err_console.print
        build_agent_image(PalotPaths.default(), cache=cache_dir(), progress=progress)
    status = image_status()
    if args.json:
        _dump(status.__dict__)
    else:
        state = "current" if status.current else "outdated (run `palot images build`)" if status.present else \
            "missing (run `palot images build`)"
        console.print(f"{status.image}: {state}; offline base image {'present' if status.base_present else 'absent'}")
    return EXIT_OK


def cmd_cloud(args: argparse.Namespace) -> int:
    from .cloud import config as cloud_config
    from .cloud import manage
    from .store import Store

    paths = PalotPaths.default()
    paths.ensure()
    progress = (lambda m: None) if args.json else err_console.print
    if args.action == "deploy":
        from .cloud.deploy import deploy

        cfg = deploy(paths, progress=progress)
        result: Any = {"url": cfg.url, "deployed": True}
    elif args.action == "connect":
        token = args.token or os.environ.get("PALOT_CLOUD_TOKEN") or (sys.stdin.readline().strip()
                                                                       if not sys.stdin.isatty() else "")
        # Proven first (reachable, token accepted), saved after: a bad URL or token changes nothing.
        result = asyncio.run(manage.status(cloud_config.CloudConfig(cloud_config.check_url(args.url), token),
                                           Store(paths.store)))
        cloud_config.save(paths, args.url, token)
    elif args.action == "status":
        result = asyncio.run(manage.status(cloud_config.load(paths), Store(paths.store)))
    else:  # destroy-all
        if not args.yes:
            raise ConfirmationRequired("destroy-all removes every cloud environment and the agents' unpublished work in them",
                                       "run `palot cloud destroy-all --yes` if that is what you want")
        result = {"destroyed": asyncio.run(manage.destroy_all(cloud_config.load(paths), Store(paths.store)))}
    if args.json:
        _dump(result)
    elif args.action in ("status", "connect"):
        console.print(f"Worker {result['url']}: {result['worker'].get('instance_type')} instances, "
                      f"sleep after {result['worker'].get('sleep_after')}")
        for e in result["environments"]:
            cost = e["cost_usd_estimate"]
            console.print(f"  {e['id']} {e['status']} agent={e['agent_id'] or '-'} {e['instance_type']} "
                          f"{e['running_seconds']:.0f} s" + (f" ≤ ${cost:.4f}" if cost is not None else ""))
        console.print(f"estimated cost so far: ≤ ${result['total_cost_usd_estimate']:.4f}")
    elif args.action == "deploy":
        console.print(f"deployed: {result['url']} (token saved, encrypted)")
    else:
        console.print(f"destroyed {len(result['destroyed'])} cloud environment(s)")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return asyncio.run(run_demo(keep=args.keep, console=console))


# --- parser --------------------------------------------------------------------------------


def add_commands(sub: Any) -> list[argparse.ArgumentParser]:
    """The administration commands, added to :func:`palot.cli.build_parser`; returns those taking --json."""
    d = sub.add_parser("doctor", help="check (and with --fix install) OpenCode, ripgrep and git; the service")
    d.add_argument("--fix", action="store_true", help="install what is missing")
    d.add_argument("--quiet", action="store_true", help="print only problems")
    d.set_defaults(func=cmd_doctor)

    u = sub.add_parser("up", help="start the Palot service and its OpenCode server (or report the running one)")
    u.add_argument("--scripted", nargs="?", const="demo", metavar="SCRIPT",
                   help="use Palot's scripted model (default script: demo) instead of your providers")
    u.add_argument("--isolated", action="store_true", help="give OpenCode its own config and data under Palot's dir")
    u.add_argument("--port", type=int, help="the OpenCode server's port on 127.0.0.1 (default: a free one)")
    u.set_defaults(func=cmd_up)

    dn = sub.add_parser("down", help="stop the Palot service and the shared OpenCode server")
    dn.set_defaults(func=cmd_down)

    sv = sub.add_parser("serve", help="run the Palot service in the foreground (systemd, launchd); "
                                      "see `palot serve --help`", add_help=False)
    sv.add_argument("serve_args", nargs=argparse.REMAINDER)
    sv.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="run two agents on a sample project offline, with the scripted model")
    demo.add_argument("--keep", action="store_true", help="leave the demo's service running at the end")
    demo.set_defaults(func=cmd_demo)

    im = sub.add_parser("images", help="the container agent image: status, or build it (offline too)")
    im.add_argument("action", choices=["status", "build"])
    im.set_defaults(func=cmd_images)

    cl = sub.add_parser("cloud", help="the cloud tier: deploy Palot's Worker, connect to it, status and costs")
    csub = cl.add_subparsers(dest="action", required=True)
    csub.add_parser("deploy", help="deploy the Worker with your wrangler login and remember it")
    cc = csub.add_parser("connect", help="use an already deployed Worker")
    cc.add_argument("url", help="the Worker's https://… URL")
    cc.add_argument("--token", help="its PALOT_TOKEN (default: $PALOT_CLOUD_TOKEN or one line on stdin)")
    csub.add_parser("status", help="the Worker, its environments, their running time and estimated cost")
    da = csub.add_parser("destroy-all", help="destroy every cloud environment (stops all cloud costs)")
    da.add_argument("--yes", action="store_true", help="really do it")
    cl.set_defaults(func=cmd_cloud)
    return [d, u, dn, demo, im, *csub.choices.values()]


def build_parser() -> argparse.ArgumentParser:
    return cli.build_parser(extend=add_commands)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["serve"]:  # its own options and --help, as `python -m palot.service` has them
        return cmd_serve(argparse.Namespace(serve_args=argv[1:]))
    return cli.main(argv, build_parser())


if __name__ == "__main__":
    sys.exit(main())
