// Palot's cloud-tier Worker: environments (one container each) behind one bearer token.
//
//   GET    /health                       Worker settings
//   GET    /envs                         {"envs": [status, ...]}
//   POST   /envs                         {"id", "env"?} -> 201 status (409 if the id exists)
//   GET    /envs/<id>                    status
//   POST   /envs/<id>/stop | /start      status
//   PUT    /envs/<id>/credentials        {"env": {...}} -> status (sealed in the object, sent to the daemon)
//   DELETE /envs/<id>/credentials        status (forgotten)
//   PUT    /envs/<id>/durable            {"save": argv, "restore": argv} -> status (Palot's save commands)
//   PUT    /envs/<id>/base               the base bundle (raw body), kept in R2 for restores (bundle route only)
//   POST   /envs/<id>/save | /pause | /resume   status (save now; save and stop; start and restore)
//   DELETE /envs/<id>                    {"id", "status": "destroyed", "running_seconds"}
//   ANY    /envs/<id>/opencode/<rest>    proxied to OpenCode (container port 8080) as /<rest>
//   ANY    /envs/<id>/daemon/<rest>      proxied to Palot's environment daemon (port 8081)
//
// Every request needs `Authorization: Bearer <PALOT_TOKEN>`; proxied requests reach the
// container with that header replaced by the environment's own basic-auth credential.
// Paths are routed as URL parsing leaves them: dot segments ("/envs/a/../b") are already resolved
// (by workerd and by `new URL`) before any id is read, and an id is never percent-decoded.

import { checkBearer } from "./auth";
import { ConfigError, ENV_ID, ENV_NAME, RESERVED_ENV, TARGET_HEADER, settings } from "./config";
import type { Env } from "./config";
import { NoBucket, NotDurable, saveKeys } from "./durable";
import { error, json } from "./http";
import { registry } from "./registry";

export { AgentContainer } from "./container";
export { EnvRegistry } from "./registry";

const MAX_CREATE_BODY = 64 * 1024;

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    try {
      return await handle(request, env);
    } catch (e) {
      if (e instanceof ConfigError) {
        return error(500, `the Worker is misconfigured: ${e.message}`, "fix [vars] in wrangler.toml and deploy again");
      }
      console.error(`palot: ${request.method} ${new URL(request.url).pathname} failed: ${e instanceof Error ? e.message : String(e)}`);
      return error(500, `the Worker failed: ${e instanceof Error ? e.message : String(e)}`, "retry; if it persists, check `npx wrangler tail palot`");
    }
  },
} satisfies ExportedHandler<Env>;

async function handle(request: Request, env: Env): Promise<Response> {
  const denied = await checkBearer(request, env.PALOT_TOKEN);
  if (denied) return denied;
  const cfg = settings(env);
  const path = new URL(request.url).pathname;

  if (path === "/health") {
    if (request.method !== "GET") return methodNotAllowed("GET");
    return json(200, {
      ok: true,
      worker: "palot",
      version: 2, // 2: durable workspaces (PUT /durable, /base; POST /save, /pause, /resume)
      instance_type: cfg.instanceType,
      sleep_after: cfg.sleepAfter,
      enable_internet: cfg.enableInternet,
    });
  }
  if (path === "/envs") {
    if (request.method === "GET") return listEnvs(env);
    if (request.method === "POST") return createEnv(request, env);
    return methodNotAllowed("GET, POST");
  }
  const match = /^\/envs\/([^/]*)(?:\/(.*))?$/.exec(path);
  if (!match) return notFound(path);
  const [, id, rest] = match;
  if (!ENV_ID.test(id)) return badId(id);
  const stub = env.AGENT.get(env.AGENT.idFromName(id));

  if (rest === undefined) {
    if (request.method === "GET") return found(id, await stub.envStatus());
    if (request.method === "DELETE") {
      const gone = await stub.envDestroy();
      if (!gone) return unknownEnv(id);
      await stub.reset().catch(() => undefined); // fails by design: the object resets itself
      await registry(env).remove(id);
      return json(200, gone);
    }
    return methodNotAllowed("GET, DELETE");
  }
  if (rest === "credentials") {
    if (request.method === "DELETE") return found(id, await stub.envSetCredentials(null));
    if (request.method !== "PUT") return methodNotAllowed("PUT, DELETE");
    const parsed = await parseBody(request, 'send a JSON object like {"env": {"ANTHROPIC_API_KEY": "..."}}', ["env"]);
    if (parsed instanceof Response) return parsed;
    const values = parseVars(parsed.env ?? {}, "env");
    if (values instanceof Response) return values;
    return found(id, await stub.envSetCredentials(Object.keys(values).length ? values : null));
  }
  if (rest === "stop" || rest === "start" || rest === "resume") {
    if (request.method !== "POST") return methodNotAllowed("POST");
    return found(id, await (rest === "stop" ? stub.envStop() : stub.envStart()));
  }
  if (rest === "save" || rest === "pause") {
    if (request.method !== "POST") return methodNotAllowed("POST");
    try {
      return found(id, await (rest === "save" ? stub.envSave() : stub.envPause()));
    } catch (e) {
      return saveFailed(id, rest, e);
    }
  }
  if (rest === "durable") {
    if (request.method !== "PUT") return methodNotAllowed("PUT");
    const fix = 'send {"save": ["argv", ...], "restore": ["argv", ...]}';
    const parsed = await parseBody(request, fix, ["save", "restore"]);
    if (parsed instanceof Response) return parsed;
    const { save, restore } = parsed;
    if (!isArgv(save) || !isArgv(restore)) return error(400, '"save" and "restore" must be non-empty lists of strings', fix);
    return found(id, await stub.envSetDurable({ save, restore }));
  }
  if (rest === "base") {
    if (request.method !== "PUT") return methodNotAllowed("PUT");
    if (!env.SAVES) return saveFailed(id, "store the base bundle", new NoBucket("the Worker has no SAVES bucket binding"));
    if (!(await stub.envStatus())) return unknownEnv(id);
    await env.SAVES.put(saveKeys(id).base, await request.arrayBuffer());
    return found(id, await stub.envStatus());
  }
  const proxied = /^(opencode|daemon)(\/.*)?$/.exec(rest);
  if (!proxied) return notFound(path);
  const [, target, upstreamPath] = proxied;
  const headers = new Headers(request.headers);
  headers.delete("authorization"); // the bearer token never reaches the container
  headers.delete("cf-container-target-port");
  headers.set(TARGET_HEADER, target);
  // workerd asks the container for gzip when the client named no encoding; the reply is passed on
  // as it is, so ask for what the client accepts: nothing named means identity.
  if (!headers.has("accept-encoding")) headers.set("accept-encoding", "identity");
  const forwarded = new Request(`http://container${upstreamPath ?? "/"}${new URL(request.url).search}`, {
    method: request.method,
    headers,
    body: request.body,
    redirect: "manual",
    signal: request.signal,
  });
  return stub.fetch(forwarded); // streamed as it comes (SSE), WebSocket upgrades included
}

async function listEnvs(env: Env): Promise<Response> {
  const index = registry(env);
  const entries = await index.list();
  const statuses = await Promise.all(
    entries.map(async ({ id }) => {
      const status = await env.AGENT.get(env.AGENT.idFromName(id)).envStatus();
      if (!status) await index.remove(id); // the index outlived a half-finished delete
      return status;
    }),
  );
  const envs = statuses.filter((s) => s !== null).sort((a, b) => a.created_at - b.created_at || a.id.localeCompare(b.id));
  return json(200, { envs });
}

async function createEnv(request: Request, env: Env): Promise<Response> {
  const parsed = await parseCreate(request);
  if (parsed instanceof Response) return parsed;
  const { id, extraEnv, credentials } = parsed;
  // Index first, so an environment can never exist unlisted; GET /envs drops index entries whose
  // environment does not exist.
  await registry(env).add(id, Math.floor(Date.now() / 1000));
  const stub = env.AGENT.get(env.AGENT.idFromName(id));
  let status;
  try {
    status = await stub.envCreate(id, extraEnv, credentials);
  } catch (e) {
    return error(
      500,
      `environment ${id} was created but its container did not start: ${e instanceof Error ? e.message : String(e)}`,
      `retry with POST /envs/${id}/start, or remove it with DELETE /envs/${id}`,
    );
  }
  if (!status) return error(409, `environment ${id} already exists`, "pick another id, or DELETE /envs/" + id + " first");
  return json(201, status);
}

type Create = { id: string; extraEnv: Record<string, string>; credentials: Record<string, string> | null };

async function parseCreate(request: Request): Promise<Create | Response> {
  const fix = 'send a JSON object like {"id": "my-env", "env": {"NAME": "value"}}';
  const body = await parseBody(request, fix, ["id", "env", "credentials"]);
  if (body instanceof Response) return body;
  const { id, env: extra, credentials } = body;
  if (typeof id !== "string") return error(400, 'the field "id" is missing or not a string', fix);
  if (!ENV_ID.test(id)) return badId(id);
  const extraEnv = parseVars(extra ?? {}, "env");
  if (extraEnv instanceof Response) return extraEnv;
  const secrets = parseVars(credentials ?? {}, "credentials");
  if (secrets instanceof Response) return secrets;
  return { id, extraEnv, credentials: Object.keys(secrets).length ? secrets : null };
}

/** A JSON object body of at most MAX_CREATE_BODY bytes with only the named fields. */
async function parseBody(request: Request, fix: string, fields: string[]): Promise<Record<string, unknown> | Response> {
  const text = await request.text();
  if (text.length > MAX_CREATE_BODY) return error(400, "the request body is too large", fix);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return error(400, "the request body is not valid JSON", fix);
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) return error(400, "the request body is not a JSON object", fix);
  const unknownKeys = Object.keys(body).filter((key) => !fields.includes(key));
  if (unknownKeys.length) return error(400, `unknown field(s): ${unknownKeys.join(", ")}`, fix);
  return body as Record<string, unknown>;
}

/** Environment variables (names and string values checked; reserved names refused). Values are never echoed. */
function parseVars(value: unknown, field: string): Record<string, string> | Response {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return error(400, `the field "${field}" is not a JSON object`, `give "${field}" as {"NAME": "value"}`);
  const vars: Record<string, string> = {};
  for (const [name, item] of Object.entries(value)) {
    if (!ENV_NAME.test(name)) {
      return error(400, `environment variable name ${JSON.stringify(name.slice(0, 80))} is not valid`, "use names like MY_VAR (letters, digits and _; not starting with a digit)");
    }
    if (RESERVED_ENV.includes(name)) {
      return error(400, `environment variable ${name} is set by the Worker itself`, `remove ${name} from "${field}" (reserved: ${RESERVED_ENV.join(", ")})`);
    }
    if (typeof item !== "string") return error(400, `the value of ${name} is not a string`, "give every value as a JSON string");
    vars[name] = item;
  }
  return vars;
}

function isArgv(value: unknown): value is string[] {
  return Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === "string");
}

function saveFailed(id: string, what: string, e: unknown): Response {
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof NotDurable || message.includes("has no save commands")) {
    return error(409, `cannot ${what} environment ${id}: ${message}`, `give it save and restore commands first (PUT /envs/${id}/durable: Palot does at provision); an agent made by an older Palot cannot be paused: archive it instead`);
  }
  if (e instanceof NoBucket || message.includes("no SAVES bucket")) {
    return error(500, `cannot ${what} environment ${id}: ${message}`, "add the [[r2_buckets]] binding SAVES to wrangler.toml (palot cloud deploy does) and deploy again");
  }
  return error(500, `cannot ${what} environment ${id}: ${message}`, `the environment is unchanged; retry, or see \`npx wrangler tail palot\``);
}

function found<T>(id: string, value: T | null): Response {
  return value ? json(200, value) : unknownEnv(id);
}

function unknownEnv(id: string): Response {
  return error(404, `no environment ${id}`, "create it with POST /envs, or list them with GET /envs");
}

function badId(id: string): Response {
  return error(
    400,
    `${JSON.stringify(id.slice(0, 80))} is not a valid environment id`,
    "use 1-63 characters: lower-case letters, digits, '-' and '_', starting with a letter or digit",
  );
}

function notFound(path: string): Response {
  return error(404, `no route ${path.slice(0, 200)}`, "see images/cloudflare/README.md for the API (GET /health, /envs, /envs/<id>, /envs/<id>/opencode/...)");
}

function methodNotAllowed(allow: string): Response {
  return error(405, "method not allowed here", `use ${allow}`, { allow });
}

