// The Worker's settings ([vars] in wrangler.toml) and the bindings it needs.

import type { AgentContainer } from "./container";
import type { EnvRegistry } from "./registry";

export interface Env {
  /** Secret (`wrangler secret put PALOT_TOKEN`): the bearer token every request must carry. */
  PALOT_TOKEN?: string;
  /** How long an environment's container may sit idle before it is stopped, e.g. "30m". */
  SLEEP_AFTER?: string;
  /** "true" or "false": whether containers may reach the internet. */
  ENABLE_INTERNET?: string;
  /** The containers' instance_type, reported by /health and in status objects. */
  INSTANCE_TYPE?: string;
  /** How often a running environment's work is saved to SAVES, e.g. "5m". */
  SAVE_EVERY?: string;
  /** R2 bucket of environments' saved work (durable.ts); without it nothing is saved or paused. */
  SAVES?: R2Bucket;
  AGENT: DurableObjectNamespace<AgentContainer>;
  REGISTRY: DurableObjectNamespace<EnvRegistry>;
}

export interface Settings {
  sleepAfter: string;
  enableInternet: boolean;
  instanceType: string;
  saveEvery: number; // seconds
}

export class ConfigError extends Error {}

const DURATION = /^([1-9][0-9]*)([smh])$/;

function duration(name: string, value: string): string {
  if (!DURATION.test(value)) throw new ConfigError(`${name} must look like "30s", "30m" or "2h", not ${JSON.stringify(value)}`);
  return value;
}

function seconds(value: string): number {
  const [, n, unit] = DURATION.exec(value) ?? [];
  return Number(n) * (unit === "h" ? 3600 : unit === "m" ? 60 : 1);
}

export function settings(env: Env): Settings {
  const sleepAfter = duration("SLEEP_AFTER", env.SLEEP_AFTER ?? "30m");
  const saveEvery = seconds(duration("SAVE_EVERY", env.SAVE_EVERY ?? "5m"));
  const internet = env.ENABLE_INTERNET ?? "true";
  if (internet !== "true" && internet !== "false") {
    throw new ConfigError(`ENABLE_INTERNET must be "true" or "false", not ${JSON.stringify(internet)}`);
  }
  return { sleepAfter, enableInternet: internet === "true", instanceType: env.INSTANCE_TYPE ?? "unknown", saveEvery };
}

/** Environment ids: lower-case, no separators that could change the route, no escapes. */
export const ENV_ID = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** Names of extra environment variables given at creation. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/; // npm_config_* and friends are lower case
/** Variables the Worker sets itself; creation may not override them. */
export const RESERVED_ENV = ["OPENCODE_SERVER_PASSWORD", "PALOT_ENV_ID", "PALOT_DAEMON_PORT", "PALOT_CREDENTIALS"];

export const OPENCODE_PORT = 8080;
export const DAEMON_PORT = 8081;
/** Internal header from the Worker to an AgentContainer: which port a proxied request is for. */
export const TARGET_HEADER = "x-palot-target";
