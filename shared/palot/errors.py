"""One exception hierarchy for all of Palot.

Every error says what failed and how to fix it, so front ends can show
``str(error)`` to a person (or an assistant) as it is.
"""

from __future__ import annotations


class PalotError(Exception):
    """Base of every error Palot raises on purpose.

    ``message`` says what went wrong, ``fix`` says what to do about it.
    """

    code = "palot_error"

    def __init__(self, message: str, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(f"{message} — {fix}" if fix else message)


# --- bad input -------------------------------------------------------------


class InvalidInput(PalotError):
    """An argument is malformed or out of range."""

    code = "invalid_input"


class PathNotFound(InvalidInput):
    code = "path_not_found"


class NotAGitRepo(InvalidInput):
    code = "not_a_git_repo"


class BranchExists(InvalidInput):
    code = "branch_exists"


class AgentNotFound(InvalidInput):
    code = "agent_not_found"


class TemplateNotFound(InvalidInput):
    code = "template_not_found"


class ReadOnlyAgent(InvalidInput):
    """The action would change an agent Palot does not manage (an external session)."""

    code = "read_only_agent"


class InvalidState(PalotError):
    """The action does not fit the agent's current state (e.g. prompting an archived agent)."""

    code = "invalid_state"


class BudgetReached(InvalidState):
    """The agent (or the fleet, today) has spent its budget: raise it to go on."""

    code = "budget_reached"


class SettingsInvalid(InvalidInput):
    """``settings.toml`` has a mistake; the message names its line. The service keeps the last good settings."""

    code = "settings_invalid"


class EnvironmentGone(InvalidState):
    """The agent's environment (a container, a cloud environment) was removed outside Palot."""

    code = "environment_gone"


class UnknownAction(InvalidInput):
    """A client asked for an action the API does not have."""

    code = "unknown_action"


class ConfirmationRequired(InvalidInput):
    """A destructive command was given without the flag that says it is meant (e.g. ``--yes``)."""

    code = "confirmation_required"


# --- git -------------------------------------------------------------------


class GitError(PalotError):
    code = "git_error"


class DirtyCheckout(GitError):
    code = "dirty_checkout"


class ApplyConflict(GitError):
    code = "apply_conflict"


class UnmergedWork(GitError):
    code = "unmerged_work"


# --- OpenCode --------------------------------------------------------------


class OpenCodeError(PalotError):
    code = "opencode_error"


class OpenCodeNotInstalled(OpenCodeError):
    code = "opencode_not_installed"


class OpenCodeVersionMismatch(OpenCodeError):
    code = "opencode_version_mismatch"


class ServerUnavailable(OpenCodeError):
    """The OpenCode server cannot be reached (not started, crashed, wrong address)."""

    code = "server_unavailable"


class OpenCodeHTTPError(OpenCodeError):
    """OpenCode answered a request with an error status."""

    code = "opencode_http_error"

    def __init__(self, status: int, method: str, path: str, body: str, detail: str | None = None) -> None:
        self.status = status
        self.method = method
        self.path = path
        self.body = body  # the whole answer, for the log; ``detail`` is its one line for people
        hint = {
            401: "Palot's password for this server is wrong; run `palot down` then `palot up`",
            404: "the session or request no longer exists on the server",
        }.get(status)
        super().__init__(f"OpenCode answered {status} to {method} {path}: {detail or body[:300]}", hint)


class OpenCodeCommandFailed(OpenCodeError):
    """The OpenCode command line (``opencode export``/``import``) failed, timed out or cannot run here."""

    code = "opencode_command_failed"


class AbortTimedOut(OpenCodeError):
    """An agent's turn did not stop within the time given after an abort."""

    code = "abort_timed_out"


class SessionTransferFailed(OpenCodeError):
    """A conversation's export or import came out wrong (not a session, messages missing)."""

    code = "session_transfer_failed"


class StoreError(PalotError):
    code = "store_error"


# --- migration ---------------------------------------------------------------


class MigrationFailed(PalotError):
    """A move between environments failed and was rolled back: the agent is where it was."""

    code = "migration_failed"


class MigrationUnfinished(PalotError):
    """A move passed its commit point (the agent lives in the target) but its clean-up failed; the next
    start finishes it."""

    code = "migration_unfinished"


# --- environments (every tier) -------------------------------------------------


class SetupScriptFailed(PalotError):
    """An environment's setup script failed or ran too long."""

    code = "setup_script_failed"


class EnvironmentNotReady(PalotError):
    """A new environment's OpenCode server did not come up in time."""

    code = "environment_not_ready"


class EnvironmentCommandFailed(PalotError):
    """A command Palot ran inside an environment (git, the daemon's exec) failed."""

    code = "environment_command_failed"


class PullRequestFailed(PalotError):
    """The branch was pushed, but ``gh pr create`` failed or did not finish."""

    code = "pull_request_failed"


# --- tools Palot runs on this machine --------------------------------------------


class ToolMissing(PalotError):
    """A program Palot needs for this command is not installed (npm, mmdebstrap, the docker CLI)."""

    code = "tool_missing"


class ToolInstallFailed(PalotError):
    """Installing a tool or package Palot needs failed (ripgrep, the Worker's npm packages)."""

    code = "tool_install_failed"


class ImageBuildFailed(PalotError):
    """Building the agent image failed."""

    code = "image_build_failed"


# --- container engines and the cloud ------------------------------------------
# Defined here, with every other error, so a client of the service rebuilds each one by its code.


class EngineError(PalotError):
    """The container engine refused or failed a request (the docker SDK's exceptions end here)."""

    code = "engine_error"


class EngineUnavailable(EngineError):
    code = "engine_unavailable"


class PortInUse(EngineError):
    """A port the environment publishes is taken on this machine."""

    code = "port_in_use"


class ImageMissing(PalotError):
    code = "image_missing"


class CloudError(PalotError):
    """Palot's cloud Worker or its deployment failed."""

    code = "cloud_error"


class CloudNotConfigured(CloudError):
    code = "cloud_not_configured"


class CloudUnreachable(CloudError):
    code = "cloud_unreachable"


class CloudAuthFailed(CloudError):
    code = "cloud_auth_failed"


class CloudEnvironmentGone(CloudError):
    code = "cloud_environment_gone"


class CloudWorkerError(CloudError):
    """The Worker answered a request with an error status."""

    code = "cloud_worker_error"


class CloudDeployFailed(CloudError):
    """``palot cloud deploy`` could not publish the Worker (wrangler login, deploy, secret)."""

    code = "cloud_deploy_failed"


# --- the Palot service -------------------------------------------------------


class ServiceUnavailable(PalotError):
    """The Palot service could not be reached or started."""

    code = "service_unavailable"


class ServiceVersionMismatch(PalotError):
    """The running service is another Palot version than this client, and it is busy."""

    code = "service_version_mismatch"


class ServiceLogMissing(PalotError):
    """The Palot service has not written a log yet (it never ran in this home)."""

    code = "service_log_missing"


class ServiceAnswerInvalid(PalotError):
    """The service's answer does not match this client's API (a bug, or a half-upgraded install)."""

    code = "service_answer_invalid"


class InternalError(PalotError):
    """The service failed on a request (a bug): the trace is in its log."""

    code = "internal"


def error_for(code: str | None, message: str, fix: str | None) -> PalotError:
    """The error a service answer names by ``code``, rebuilt on the client side."""
    def walk(cls: type[PalotError]) -> list[type[PalotError]]:
        return [cls, *(c for sub in cls.__subclasses__() for c in walk(sub))]

    for cls in walk(PalotError):
        if cls.code == code:
            try:
                return cls(message, fix)
            except TypeError:
                break
    error = PalotError(message, fix)
    if code:
        error.code = code  # an error this client does not know by name keeps its code
    return error
