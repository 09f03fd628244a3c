"""Running git: one ``git`` (or git-driving ``sh``) process, in a thread, with a safe environment.

Owns the switches every call shares (``-c core.quotepath=off``, no prompts, English messages, no inherited
``GIT_DIR``-style redirection, repositories Palot trusts), the process runner with its timeout and
cancellation, and the error that names a failed command.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from palot.errors import GitError, PathNotFound

# Options that go before every git sub-command.
_BASE_OPTIONS: tuple[str, ...] = ("-c", "core.quotepath=off")

# Inherited variables that would make git act on a different repository,
# index or object store than the one we name with ``cwd``.
_REDIRECTING_ENV: tuple[str, ...] = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
)

_GENERIC_FIX = "read git's message above, fix what it describes in the repository, then try again"


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


#: Repositories Palot made itself that another uid owns (a container's workspace written by its
#: non-root user); git refuses those unless they are named in safe.directory.
_TRUSTED: set[str] = set()


def trust(path: Path) -> None:
    """Let Palot's git calls work in ``path`` although another user owns it (never ``*``)."""
    resolved = Path(path).resolve()
    # git checks the work tree for local commands and the .git directory when serving a fetch.
    _TRUSTED.update({str(resolved), str(resolved / ".git")})


def _git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for one git process: the caller's, made safe."""
    env = {k: v for k, v in os.environ.items() if k not in _REDIRECTING_ENV}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"
    if _TRUSTED:
        env["GIT_CONFIG_COUNT"] = str(len(_TRUSTED))
        for i, path in enumerate(sorted(_TRUSTED)):
            env[f"GIT_CONFIG_KEY_{i}"] = "safe.directory"
            env[f"GIT_CONFIG_VALUE_{i}"] = path
    if extra:
        env.update(extra)
    return env


def _command_text(args: tuple[str, ...] | list[str]) -> str:
    return "git " + " ".join(args)


#: No git command Palot runs should take longer (a push to a slow remote is the longest).
GIT_TIMEOUT = 600.0


@dataclass(frozen=True)
class GitResult:
    """What one git process printed and how it exited."""

    stdout: str
    stderr: str
    returncode: int


#: Where git processes are started and waited for. Started from the event loop's thread, each would hold the
#: loop until the child runs (vfork): tens of ms per process on a busy machine, for every client's events.
_GIT_THREADS = ThreadPoolExecutor(max_workers=64, thread_name_prefix="palot-git")


class _GitProcess:
    """One process, run to its end in a thread (``run``); ``kill`` stops it from any thread.

    With ``group`` (a script that starts git processes of its own) it leads a process group, and
    stopping it stops them all.
    """

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], input: bytes | None,
                 group: bool = False) -> None:
        self.argv, self.cwd, self.env, self.input, self.group = argv, cwd, env, input, group
        self._proc: subprocess.Popen[bytes] | None = None
        self._killed = False
        self._lock = threading.Lock()

    def run(self, timeout: float) -> tuple[bytes, bytes, int]:
        """(stdout, stderr, exit code); ``subprocess.TimeoutExpired`` once it is stopped after ``timeout`` s."""
        with self._lock:
            if self._killed:
                raise ProcessLookupError("stopped before it started")
            self._proc = subprocess.Popen(
                self.argv, cwd=str(self.cwd), env=self.env,
                # Never inherit our stdin: git must not wait on a terminal.
                stdin=subprocess.PIPE if self.input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=self.group)
        with self._proc as proc:
            try:
                out, err = proc.communicate(self.input, timeout)
            except subprocess.TimeoutExpired:
                self._stop(proc)
                raise
        return out, err, proc.returncode

    def kill(self) -> None:
        with self._lock:
            self._killed = True
            if self._proc is not None and self._proc.poll() is None:
                self._stop(self._proc)

    def _stop(self, proc: subprocess.Popen[bytes]) -> None:
        if self.group:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
                return
            except ProcessLookupError:
                pass
        proc.kill()


async def run_git(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
    timeout: float = GIT_TIMEOUT,
) -> GitResult:
    """Run ``git <args>`` in ``cwd`` and return its output (stopped after ``timeout`` seconds).

    ``env`` adds to (and overrides) the sanitised environment.  With
    ``check`` a non-zero exit raises :class:`GitError` naming the command
    and quoting git's stderr.
    """
    process = _GitProcess(["git", *_BASE_OPTIONS, *args], Path(cwd), _git_env(env), input)
    return await _run(process, _command_text(args), check=check, timeout=timeout)


def recipe(name: str) -> str:
    """A git recipe shipped beside this package (``snapshot.sh``, ``restore.sh``, ``checkpoint.sh``): run here
    with :func:`run_script`, and sent as it is to an environment's daemon, so the two never drift apart."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


async def run_script(
    script: str,
    name: str,
    *args: str,
    cwd: Path,
    input: bytes | None = None,
    timeout: float = GIT_TIMEOUT,
) -> GitResult:
    """Run the shell ``script`` (a git recipe, with ``args`` as ``$1``…) in ``cwd``, as :func:`run_git` runs
    git: same environment, timeout and cancellation; a non-zero exit raises :class:`GitError`.

    ``name`` stands for the script in messages.
    """
    process = _GitProcess(["sh", "-c", script, name, *args], Path(cwd), _git_env(), input, group=True)
    return await _run(process, " ".join(["sh", name, *args]), check=True, timeout=timeout)


async def _run(process: _GitProcess, text: str, *, check: bool, timeout: float) -> GitResult:
    # Checked up front: a missing cwd would otherwise surface as the same
    # FileNotFoundError as a missing git binary.
    if not process.cwd.is_dir():
        raise PathNotFound(
            f"directory {process.cwd} does not exist",
            "check the path, or recreate the directory",
        )
    try:
        out, err, returncode = await asyncio.get_running_loop().run_in_executor(_GIT_THREADS, process.run, timeout)
    except FileNotFoundError as exc:
        raise GitError(
            f"the `{process.argv[0]}` program was not found",
            "install git (2.30 or newer) and make sure it is on PATH",
        ) from exc
    except subprocess.TimeoutExpired:
        raise GitError(f"`{text}` did not finish within {timeout:.0f} s and was stopped",
                       "check that the repository and its remote are reachable, then try again") from None
    except BaseException:
        process.kill()  # cancelled or interrupted: don't leave an orphaned git behind
        raise
    result = GitResult(_decode(out), _decode(err), returncode)
    if check and result.returncode != 0:
        raise _failed(text, result)
    return result


def _command_failed(args: tuple[str, ...] | list[str], result: GitResult) -> GitError:
    return _failed(_command_text(args), result)


def _failed(text: str, result: GitResult) -> GitError:
    stderr = result.stderr.strip() or result.stdout.strip() or "(no output)"
    return GitError(f"`{text}` failed (exit {result.returncode}): {stderr}", _GENERIC_FIX)
