// An environment's record in its Durable Object's storage, and the status the Worker reports from it.

import { DAEMON_PORT } from "./config";
import type { Lost } from "./crash";
import type { Recipes } from "./durable";
import type { Sealed } from "./sealed";

export const RECORD_KEY = "palot-env";

export interface EnvRecord {
  id: string;
  password: string;
  created_at: number; // unix seconds
  started_at: number | null; // unix seconds of the latest start
  running_since: number | null; // unix milliseconds, null while stopped
  running_seconds: number; // finished runs only
  extra_env: Record<string, string>;
  credentials?: Sealed | null; // model-provider credentials, sealed; absent in records made before them
  durable?: Recipes | null; // Palot's save and restore commands (durable.ts); absent: nothing is saved
  paused?: boolean; // stopped by a pause: no request starts it, only /resume or /start
  stop_reason?: "stop" | "pause" | "sleep" | null; // why the container is not running (null: it exited)
  saved_at?: number | null; // unix seconds of the newest save
  save_error?: string | null; // why the newest attempt to save failed, if it did
  restored?: string | null; // what the latest start's restore did: "restored", "base" or "kept"
  restored_from?: number | null; // saved_at of the save the latest start restored (null: none was)
  snapshot_ms?: number | null; // unix milliseconds when the newest save began (what it holds is from then)
  changed_at?: number | null; // unix milliseconds of the latest change the Worker saw (crash.ts)
  stopped_unexpectedly_at?: number | null; // unix seconds: the container stopped without being asked (crash.ts)
  exit_code?: number | null; // its exit code, when the runtime gave one
  lost?: Lost | null; // what that stop lost, judged against the newest save (crash.ts)
}

/**
 * What a status calls the environment. A container being stopped for a sleep or a pause already says so: its
 * event streams end first, and whoever asks why must not hear "running".
 */
export function statusOf(r: EnvRecord, running: boolean): EnvStatus["status"] {
  if (r.paused) return "paused";
  if (r.stop_reason === "sleep") return "sleeping";
  return running ? "running" : "stopped";
}

export interface EnvStatus {
  id: string;
  status: "running" | "stopped" | "sleeping" | "paused";
  instance_type: string;
  created_at: number;
  started_at: number | null;
  running_seconds: number;
  credentials: "none" | "set" | "unreadable";
  durable: boolean;
  saved_at: number | null;
  save_error: string | null;
  restored: string | null;
  restored_from: number | null;
  stopped_unexpectedly_at: number | null;
  exit_code: number | null;
  lost: Lost | null;
}

export interface DestroyedEnv {
  id: string;
  status: "destroyed";
  running_seconds: number;
}

/** 24 random bytes, base64url: the credential for OpenCode and the daemon inside the container. */
export function newPassword(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The container's environment variables: the extra ones given at creation and those the Worker sets. */
export function envVarsOf(r: EnvRecord | null): Record<string, string> {
  if (!r) return {};
  return {
    ...r.extra_env,
    OPENCODE_SERVER_PASSWORD: r.password,
    PALOT_ENV_ID: r.id,
    PALOT_DAEMON_PORT: String(DAEMON_PORT),
    ...(r.credentials ? { PALOT_CREDENTIALS: "await" } : {}),
  };
}
