// Unexpected stops: a container that stopped without the Worker asking (killed, crashed, out of memory, a host
// restart), and what that lost. Every stop the Worker asks for (stop, sleep, pause, destroy) sets the record's
// stop_reason first, so a run that ends with none set was not asked to end.
//
// What was lost is judged against the newest save: the Worker sees the environment change only through the
// requests it proxies (anything but a read or an event stream) and through an OpenCode turn found running when a
// save starts (the turn goes on after it). "nothing" therefore means nothing the Worker saw; work a background
// process did on its own is invisible to it.

import type { State } from "@cloudflare/containers";
import type { EnvRecord, EnvStatus } from "./record";

/** "since_save": the environment changed after the newest save; "everything": there was no save to restore. */
export type Lost = "nothing" | "since_save" | "everything" | "unknown";

/** Whether a proxied request may change the environment (reads and event streams do not). */
export function mayChange(request: Request): boolean {
  return !["GET", "HEAD", "OPTIONS"].includes(request.method);
}

/**
 * Note a change to the environment at `at` (unix ms). True when the record must be stored now: the first change
 * after the newest save decides what a crash loses, later ones only repeat it (they are stored with the next put).
 */
export function noteChange(r: EnvRecord, at: number = Date.now()): boolean {
  const first = (r.changed_at ?? 0) <= (r.snapshot_ms ?? 0);
  r.changed_at = at;
  return first;
}

/**
 * A save that began at `started` (unix ms) is in the bucket. A turn that was running then went on after it: that is
 * a change a crash would lose.
 */
export function noteSaved(r: EnvRecord, started: number, turnRunning: boolean): void {
  r.saved_at = Math.floor(Date.now() / 1000);
  r.snapshot_ms = started;
  if (turnRunning) noteChange(r);
}

/** A run just ended: unless a stop was asked for, note the unexpected stop (the exit code, if the library has it). */
export function noteRunEnded(r: EnvRecord, state: State, at: number = Date.now()): void {
  if (r.stop_reason || r.paused) return;
  r.stopped_unexpectedly_at = Math.floor(at / 1000);
  r.exit_code = state.status === "stopped_with_code" ? (state.exitCode ?? null) : null;
  r.lost = lostSinceSave(r);
}

/** onStop's exit code for an unexpected stop noticed before the runtime had it; true when it was new. */
export function noteExitCode(r: EnvRecord, exitCode: number): boolean {
  if (!r.stopped_unexpectedly_at || r.exit_code != null || !exitCode) return false;
  r.exit_code = exitCode;
  return true;
}

/** A stop the Worker asked for: the last unexpected one is history. */
export function forgetUnexpectedStop(r: EnvRecord): void {
  r.stopped_unexpectedly_at = null;
  r.exit_code = null;
  r.lost = null;
}

/** The status's fields about the latest start's restore and the latest unexpected stop. */
export function unexpectedStopOf(r: EnvRecord): Pick<EnvStatus, "restored_from" | "stopped_unexpectedly_at" | "exit_code" | "lost"> {
  return {
    restored_from: r.restored_from ?? null,
    stopped_unexpectedly_at: r.stopped_unexpectedly_at ?? null,
    exit_code: r.exit_code ?? null,
    lost: r.lost ?? null,
  };
}

function lostSinceSave(r: EnvRecord): Lost {
  if (!r.durable || r.saved_at == null) return "everything";
  if (r.snapshot_ms == null) return "unknown"; // saved by a Worker that did not track changes
  return (r.changed_at ?? 0) > r.snapshot_ms ? "since_save" : "nothing";
}
