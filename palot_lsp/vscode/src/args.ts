// Arguments of palot-lsp's commands (one JSON object named by the api's fields, see palot_lsp/README.md),
// built from what a person picked; and where palot-lsp is. Pure: no `vscode` import.

import * as path from "node:path";

export const ENVIRONMENTS = ["worktree", "container", "cloud"] as const;
export const PERMISSION_MODES = ["default", "ask", "auto"] as const;
export const REPLIES = ["once", "always", "reject"] as const;
export type Reply = (typeof REPLIES)[number];

/** An LSP range: 0-based lines and characters. */
export interface Range {
  start: { line: number; character: number };
  end: { line: number; character: number };
}

export interface SpawnChoices {
  prompt: string;
  uri?: string; // the file the prompt is about
  range?: Range; // the selected lines of that file
  environment?: string;
  model?: string; // undefined: OpenCode's default
  permissionMode?: string;
  title?: string;
}

/** `palot.spawn`'s arguments: defaults are left out, so the service's own defaults apply. */
export function spawnArgs(c: SpawnChoices): Record<string, unknown> {
  const args: Record<string, unknown> = { prompt: c.prompt };
  if (c.uri) args.uri = c.uri;
  if (c.uri && c.range && !isEmpty(c.range)) args.range = c.range;
  if (c.environment && c.environment !== "worktree") args.environment = c.environment;
  if (c.model) args.model = c.model;
  if (c.permissionMode && c.permissionMode !== "default") args.permission_mode = c.permissionMode;
  if (c.title && c.title.trim()) args.title = c.title.trim();
  return args;
}

function isEmpty(r: Range): boolean {
  return r.start.line === r.end.line && r.start.character === r.end.character;
}

/** `palot.replyPermission`'s arguments; a rejection may carry a note to the agent. */
export function replyArgs(agent: string, permissionId: string, reply: Reply, message?: string): Record<string, unknown> {
  const args: Record<string, unknown> = { agent, reply, permission_id: permissionId };
  if (reply === "reject" && message && message.trim()) args.message = message.trim();
  return args;
}

/** `palot.createPr`'s arguments: only what the person gave. */
export function prArgs(agent: string, title?: string, base?: string): Record<string, unknown> {
  const args: Record<string, unknown> = { agent };
  if (title && title.trim()) args.title = title.trim();
  if (base && base.trim()) args.base = base.trim();
  return args;
}

// --- the diff editor's documents ---------------------------------------------------------------

export const SCHEME = "palot-agent";
export type Side = "base" | "agent";

/** The parts of a virtual document's URI: `palot-agent:/<path>?agent=<id>&side=<base|agent>`. */
export interface VersionRef {
  agent: string;
  path: string;
  side: Side;
}

export function versionUri(ref: VersionRef): { scheme: string; path: string; query: string } {
  return {
    scheme: SCHEME,
    path: "/" + ref.path,
    query: `agent=${encodeURIComponent(ref.agent)}&side=${ref.side}`,
  };
}

export function parseVersionUri(uriPath: string, query: string): VersionRef | undefined {
  const params = new URLSearchParams(query);
  const agent = params.get("agent");
  const side = params.get("side");
  if (!agent || (side !== "base" && side !== "agent") || !uriPath.startsWith("/")) return undefined;
  return { agent, path: uriPath.slice(1), side };
}

/** The diff editor's title: `README.md (base ↔ Fix the header)`. */
export function diffTitle(file: string, agentTitle: string): string {
  return `${file} (base ↔ ${agentTitle})`;
}

// --- palot-lsp --------------------------------------------------------------------------------

export interface ServerLookup {
  setting?: string; // palot.server.path
  folders: string[]; // the workspace folders' paths
  pathEnv?: string; // $PATH
  isExecutable: (file: string) => boolean;
}

/** Where palot-lsp is: the setting, else a workspace folder's `.venv`, else `$PATH`; undefined if nowhere. */
export function findServer(l: ServerLookup): string | undefined {
  if (l.setting && l.setting.trim()) return l.setting.trim();
  for (const folder of l.folders) {
    const candidate = path.join(folder, ".venv", "bin", "palot-lsp");
    if (l.isExecutable(candidate)) return candidate;
  }
  for (const dir of (l.pathEnv ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, "palot-lsp");
    if (l.isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** palot-lsp's environment: the editor's, with PALOT_HOME when the setting gives one. */
export function serverEnv(base: NodeJS.ProcessEnv, home?: string): NodeJS.ProcessEnv {
  return home && home.trim() ? { ...base, PALOT_HOME: home.trim() } : { ...base };
}

/** One sentence with the fix, from an LSP error (`message — fix`, or `data.fix`). */
export function errorSentence(what: string, error: unknown): string {
  const e = error as { message?: string; data?: { fix?: string } };
  const message = (e && e.message) || String(error);
  const fix = e && e.data && e.data.fix && !message.includes(e.data.fix) ? `: ${e.data.fix}` : "";
  return `${what} failed: ${message}${fix}`;
}
