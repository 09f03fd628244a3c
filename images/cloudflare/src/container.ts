// AgentContainer: one Palot environment = one Durable Object = one container.
//
// The object's own storage holds the environment's record: the OpenCode/daemon password (made
// here, never logged, never returned), creation and start times, the running time accumulated
// over past runs, the extra environment variables given at creation, and the model-provider
// credentials sealed (sealed.ts: never stored in clear). Requests reach the container only through
// this object, so the password never leaves Cloudflare. Credentials reach the container through its
// environment daemon (PUT /credentials) after every start, before OpenCode runs: the daemon holds them
// in memory only, so a restarted container gets them again from here. The environment's work is saved to
// R2 (durable.ts) every SAVE_EVERY, before it sleeps and when it is paused, and restored at every start,
// before any proxied request goes in. A container that stops without being asked is noted (crash.ts).

import { Container } from "@cloudflare/containers";
import type { StopParams } from "@cloudflare/containers";
import { DAEMON_PORT, OPENCODE_PORT, TARGET_HEADER, settings } from "./config";
import type { Env } from "./config";
import { forgetUnexpectedStop, mayChange, noteChange, noteExitCode, noteRunEnded, noteSaved, unexpectedStopOf } from "./crash";
import { Daemon } from "./daemon";
import { NotDurable, bucketOf, forget, restoreWork, saveWork } from "./durable";
import type { Recipes } from "./durable";
import { error } from "./http";
import { RECORD_KEY, envVarsOf, newPassword, statusOf } from "./record";
import type { DestroyedEnv, EnvRecord, EnvStatus } from "./record";
export type { DestroyedEnv, EnvStatus } from "./record";
import { EVENT_PATHS, EventStreams, openCodeBusy, quietFetch } from "./quiet";
import { seal, unseal } from "./sealed";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * How long a start may take until the port answers. @cloudflare/containers 0.3.7 gives 8 s to
 * "get an instance" and recognises a not-yet-listening port by the message "the container is not
 * listening", but workerd (1.20260426) says "Container is not listening to port N": so the 8 s
 * budget silently includes OpenCode's own start (about 7 s, more on a cold image) and a slow start
 * gets the container killed. One explicit budget for both phases avoids that.
 */
const START_BUDGET = { instanceGetTimeoutMS: 60_000, portReadyTimeoutMS: 60_000 };

export class AgentContainer extends Container<Env> {
  private record: EnvRecord | null = null;
  /** running_since of the run whose daemon has the credentials (in memory: a new object asks the daemon). */
  private deliveredFor: number | null = null;
  private readying: Promise<void> | null = null;
  /** running_since of the run whose workspace was restored (or made by Palot); in memory, like deliveredFor. */
  private restoredFor: number | null = null;
  private saving: Promise<boolean> | null = null;
  private streams = new EventStreams();

  constructor(ctx: DurableObjectState<{}>, env: Env) {
    const s = settings(env);
    super(ctx, env, { defaultPort: OPENCODE_PORT, sleepAfter: s.sleepAfter, enableInternet: s.enableInternet });
    // Load the record before any request or alarm is delivered, so a container started by the
    // library itself (a proxied request waking a sleeping environment) gets the right env vars.
    ctx.blockConcurrencyWhile(async () => {
      this.record = (await ctx.storage.get<EnvRecord>(RECORD_KEY)) ?? null;
      this.applyEnvVars();
    });
  }

  // --- RPC from the Worker -------------------------------------------------------------------

  /** Create the environment and start its container; null when the id already exists. */
  async envCreate(
    id: string,
    extraEnv: Record<string, string>,
    credentials: Record<string, string> | null = null,
  ): Promise<EnvStatus | null> {
    if (this.record) return null;
    this.record = {
      id,
      password: newPassword(),
      created_at: Math.floor(Date.now() / 1000),
      started_at: null,
      running_since: null,
      running_seconds: 0,
      extra_env: extraEnv,
      credentials: credentials ? await seal(this.secret(), id, credentials) : null,
    };
    await this.save();
    this.applyEnvVars();
    await this.ready();
    return this.envStatus();
  }

  /**
   * Replace (or, with null, forget) the environment's model-provider credentials. A running container gets
   * them at once (its OpenCode restarts with them); a stopped one at its next start.
   */
  async envSetCredentials(credentials: Record<string, string> | null): Promise<EnvStatus | null> {
    const r = this.record;
    if (!r) return null;
    r.credentials = credentials ? await seal(this.secret(), r.id, credentials) : null;
    await this.save();
    this.applyEnvVars();
    if (this.running()) {
      await this.daemon().deliverCredentials(credentials ?? {});
      this.deliveredFor = r.running_since;
    }
    return this.envStatus();
  }

  async envStatus(): Promise<EnvStatus | null> {
    const r = this.record;
    if (!r) return null;
    const running = this.running();
    if (!running && r.running_since !== null) await this.settle(); // exited, onStop not run yet
    const current = r.running_since !== null ? (Date.now() - r.running_since) / 1000 : 0;
    return {
      id: r.id,
      status: statusOf(r, running),
      instance_type: settings(this.env).instanceType,
      created_at: r.created_at,
      started_at: r.started_at,
      running_seconds: Math.round((r.running_seconds + current) * 1000) / 1000,
      credentials: !r.credentials ? "none" : (await unseal(this.secret(), r.id, r.credentials)) ? "set" : "unreadable",
      durable: !!r.durable,
      saved_at: r.saved_at ?? null,
      save_error: r.save_error ?? null,
      restored: r.restored ?? null,
      ...unexpectedStopOf(r),
    };
  }

  /** Stop the container (SIGTERM, SIGKILL after 15 s). The record and password are kept. */
  async envStop(): Promise<EnvStatus | null> {
    if (!this.record) return null;
    await this.halt("stop");
    return this.envStatus();
  }

  /** Stop the container, saying why (kept in the record until the next start). */
  private async halt(reason: "stop" | "pause" | "sleep"): Promise<void> {
    const r = this.record;
    if (!r) return;
    r.stop_reason = reason;
    forgetUnexpectedStop(r);
    await this.save();
    this.streams.endAll(`the environment is stopping (${reason})`);
    if (this.running()) {
      await this.stop("SIGTERM");
      if (!(await this.waitStopped(15_000))) {
        await this.destroy();
        await this.waitStopped(10_000);
      }
    }
    await this.stop(); // not running any more: this runs the library's pending onStop
    await this.settle();
  }

  /** Start the container (a paused environment too: start is resume), restoring the newest save. */
  async envStart(): Promise<EnvStatus | null> {
    const r = this.record;
    if (!r) return null;
    if (r.paused) {
      r.paused = false;
      await this.save();
    }
    if (!this.running()) await this.settle();
    await this.ready();
    return this.envStatus();
  }

  /** Palot's save and restore commands (durable.ts); the running workspace counts as restored. */
  async envSetDurable(recipes: Recipes): Promise<EnvStatus | null> {
    const r = this.record;
    if (!r) return null;
    r.durable = recipes;
    await this.save();
    if (this.running()) this.restoredFor = r.running_since;
    this.scheduleSaves();
    return this.envStatus();
  }

  /** Save the environment's work now. Errors (no recipe, no bucket, a failed save) throw with the reason. */
  async envSave(): Promise<EnvStatus | null> {
    if (!this.record) return null;
    await this.saveNow();
    return this.envStatus();
  }

  /** Save, then stop the container until /resume (or /start). A save that fails leaves it running. */
  async envPause(): Promise<EnvStatus | null> {
    const r = this.record;
    if (!r) return null;
    if (this.running()) await this.saveNow();
    else if (!r.durable) throw new NotDurable(`environment ${r.id} has no save commands`);
    r.paused = true;
    await this.save();
    await this.halt("pause");
    return this.envStatus();
  }

  /** Kill the container and forget the environment: storage is wiped. null when unknown. */
  async envDestroy(): Promise<DestroyedEnv | null> {
    const r = this.record;
    if (!r) return null;
    if (this.running()) {
      await this.destroy();
      await this.waitStopped(15_000);
    }
    await this.settle();
    const result: DestroyedEnv = { id: r.id, status: "destroyed", running_seconds: Math.round(r.running_seconds * 1000) / 1000 };
    this.record = null;
    this.envVars = {};
    await forget(this.env.SAVES, r.id);
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    return result;
  }

  /**
   * Drop this in-memory instance after envDestroy (called as a separate RPC, which fails by design):
   * deleteAll also removed the library's schedule table, so a later environment with the same id
   * must start from a fresh object.
   */
  async reset(): Promise<void> {
    if (this.record === null) this.ctx.abort("environment destroyed");
  }

  // --- proxy ---------------------------------------------------------------------------------

  /**
   * A request proxied by the Worker: the Worker already checked the bearer token and rewrote the
   * URL to the container's path; here the Authorization header becomes the environment's own
   * basic-auth credential and the request goes to OpenCode (8080) or the daemon (8081).
   * The library starts a stopped container first, and streams the response (SSE, WebSocket).
   */
  override async fetch(request: Request): Promise<Response> {
    const r = this.record;
    if (!r) return error(404, "no such environment", "create it with POST /envs, or list them with GET /envs");
    if (r.paused) return error(409, `environment ${r.id} is paused`, `resume it first: POST /envs/${r.id}/resume (palot agents resume AGENT)`);
    const port = request.headers.get(TARGET_HEADER) === "daemon" ? DAEMON_PORT : OPENCODE_PORT;
    const events = port === OPENCODE_PORT && EVENT_PATHS.includes(new URL(request.url).pathname);
    // An event stream neither wakes a sleeping environment nor keeps one awake: Palot listens to every
    // agent all the time, and its client reconnects (and catches up) once something else woke it.
    if (events && !this.running()) return error(503, `environment ${r.id} is sleeping`, "it wakes on the next other request");
    try {
      // A stopped or sleeping environment wakes up here (containerFetch would too, on a shorter budget,
      // and without the credentials).
      await this.ready(request.signal);
    } catch (e) {
      return error(
        503,
        `environment ${r.id} did not start: ${e instanceof Error ? e.message : String(e)}`,
        `retry; if it persists, POST /envs/${r.id}/stop then /start, or check the image's entrypoint`,
      );
    }
    const headers = new Headers(request.headers);
    headers.delete(TARGET_HEADER);
    headers.set("authorization", "Basic " + btoa("opencode:" + r.password));
    if (!events && mayChange(request) && noteChange(r)) await this.save();
    const upstream = new Request(request.url, {
      method: request.method,
      headers,
      body: request.body,
      redirect: "manual",
      signal: request.signal,
    });
    if (events) return this.streams.pass(await this.direct(upstream, port));
    return this.containerFetch(upstream, port);
  }

  // --- lifecycle hooks -----------------------------------------------------------------------

  override async onStart(): Promise<void> {
    const r = this.record;
    if (!r || r.running_since !== null) return;
    r.running_since = Date.now();
    r.started_at = Math.floor(r.running_since / 1000);
    r.stop_reason = null;
    await this.save();
    this.scheduleSaves();
  }

  /** Idle for SLEEP_AFTER: save (best effort: the periodic save is the safety net), then sleep. */
  override async onActivityExpired(): Promise<void> {
    if (!this.running()) return;
    // An agent's turn makes no requests through here, but it is not idle.
    if (await openCodeBusy((request, port) => this.direct(request, port), this.record?.password ?? "")) return;
    try {
      await this.saveNow();
    } catch (e) {
      console.error(`palot: the save before sleeping failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    await this.halt("sleep");
  }

  /** The periodic save (a schedule of the Container class): every SAVE_EVERY while the container runs. */
  async periodicSave(): Promise<void> {
    if (!this.running() || !this.record?.durable) return;
    try {
      await this.saveNow();
    } catch (e) {
      console.error(`palot: the periodic save failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.scheduleSaves();
  }

  override async onStop(params: StopParams): Promise<void> {
    await this.settle();
    if (this.record && noteExitCode(this.record, params.exitCode)) await this.save();
  }

  override onError(err: unknown): unknown {
    // The library's default logs the whole error object; a message is enough and safer.
    console.error(`palot: container error: ${err instanceof Error ? err.message : String(err)}`);
    throw err;
  }

  override async alarm(alarmProps?: AlarmInvocationInfo): Promise<void> {
    if (this.record === null) {
      // An object touched for an unknown or destroyed id: leave nothing behind.
      await this.ctx.storage.deleteAlarm();
      await this.ctx.storage.deleteAll();
      return;
    }
    await super.alarm(alarmProps);
  }

  // --- helpers -------------------------------------------------------------------------------

  private running(): boolean {
    return this.ctx.container?.running ?? false;
  }

  private secret(): string {
    return this.env.PALOT_TOKEN ?? ""; // the Worker refuses every request without it before reaching here
  }

  /**
   * Start the container if it is not running, and make sure its daemon has the credentials. One at a time:
   * concurrent requests to a waking environment share the start (and OpenCode is started once).
   */
  private async ready(abort?: AbortSignal): Promise<void> {
    if (!this.readying) {
      this.readying = this.startAndDeliver(abort).finally(() => {
        this.readying = null;
      });
    }
    return this.readying;
  }

  private async startAndDeliver(abort?: AbortSignal): Promise<void> {
    const r = this.record;
    if (!r) return;
    if (!this.running() || (await this.getState()).status !== "healthy") {
      // With credentials the daemon holds OpenCode back until they arrive: wait for the daemon's port.
      const port = r.credentials ? DAEMON_PORT : OPENCODE_PORT;
      await this.startAndWaitForPorts({ ports: port, cancellationOptions: { ...START_BUDGET, abort } });
      this.deliveredFor = null;
    }
    if (r.credentials && this.deliveredFor !== r.running_since) {
      if ((await this.daemon().health()).credentials !== "set") {
        const values = await unseal(this.secret(), r.id, r.credentials);
        if (!values) console.error(`palot: the credentials of ${r.id} cannot be opened (PALOT_TOKEN changed?); starting without`);
        await this.daemon().deliverCredentials(values ?? {});
      }
      this.deliveredFor = r.running_since;
    }
    if (r.durable && this.restoredFor !== r.running_since) {
      // Before any request reaches OpenCode: the restore command leaves a workspace still there alone.
      r.restored = await restoreWork(this.daemon(), bucketOf(this.env.SAVES), r.id, r.durable);
      r.restored_from = r.restored === "restored" ? (r.saved_at ?? null) : null;
      this.restoredFor = r.running_since;
      await this.save();
    }
  }

  /** Palot's own daemon calls (saves, credentials): they are not activity, so they never keep it awake. */
  private daemon(): Daemon {
    return new Daemon((request, port) => this.direct(request, port), this.record?.password ?? "");
  }

  private direct(request: Request, port: number): Promise<Response> {
    return quietFetch(this.ctx.container, request, port);
  }

  /** One save at a time; a save asked for during another waits for it and then runs (it must see now's work). */
  private async saveNow(): Promise<boolean> {
    const r = this.record;
    if (!r) return false;
    if (!r.durable) throw new NotDurable(`environment ${r.id} has no save commands`);
    while (this.saving) await this.saving.catch(() => undefined);
    if (!this.running()) return false;
    if (this.restoredFor !== r.running_since) await this.ready(); // a new object: the restore says "kept"
    const recipes = r.durable;
    const started = Date.now();
    const busy = openCodeBusy((request, port) => this.direct(request, port), r.password);
    this.saving = saveWork(this.daemon(), bucketOf(this.env.SAVES), r.id, recipes).finally(() => {
      this.saving = null;
    });
    try {
      const saved = await this.saving;
      if (saved) noteSaved(r, started, await busy);
      r.save_error = null;
      return saved;
    } catch (e) {
      r.save_error = e instanceof Error ? e.message : String(e);
      throw e;
    } finally {
      await this.save();
    }
  }

  private scheduleSaves(): void {
    if (!this.record?.durable) return;
    this.deleteSchedules("periodicSave");
    void this.schedule(settings(this.env).saveEvery, "periodicSave");
  }

  private applyEnvVars(): void {
    this.envVars = envVarsOf(this.record);
  }

  /** Add the current run (if any) to the accumulated running time; a run nobody asked to end ended unexpectedly. */
  private async settle(): Promise<void> {
    const r = this.record;
    if (!r || r.running_since === null) return;
    r.running_seconds += Math.max(0, Date.now() - r.running_since) / 1000;
    r.running_since = null;
    noteRunEnded(r, await this.getState());
    this.streams.endAll("the container stopped"); // a stopped container's streams would hang, not end
    await this.save();
  }

  private async save(): Promise<void> {
    if (this.record) await this.ctx.storage.put(RECORD_KEY, this.record);
  }

  private async waitStopped(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.running()) {
      if (Date.now() > deadline) return false;
      await sleep(100);
    }
    return true;
  }
}
