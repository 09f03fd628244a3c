// The api's views as palot-lsp sends them (palot.api: Agent, PermissionView, FileChange), and what the
// extension shows of them: pure, no `vscode` import, so node's test runner checks it.

export type AgentStatus =
  | "provisioning" | "running" | "waiting" | "paused" | "completed" | "failed" | "migrating" | "archived";

export interface PermissionView {
  id: string;
  permission: string;
  patterns: string[];
  summary: string;
}

export interface EnvironmentView {
  type: string;
  directory: string;
  branch?: string | null;
  host_path?: string | null;
}

export interface AgentView {
  id: string;
  title: string;
  status: AgentStatus;
  project_path: string;
  project_name: string;
  environment: EnvironmentView;
  permissions: PermissionView[];
  tokens: number;
  cost: number;
  environment_cost?: number;
  error?: string | null;
  pause_reason?: string | null;
  notice?: string | null;
  model?: string | null;
  created_at: number;
  updated_at: number;
}

export interface FileChange {
  path: string;
  status: string;
  additions: number;
  deletions: number;
  binary?: boolean;
}

/** An icon of VS Code's codicon font, with a theme colour. */
export interface Icon {
  id: string;
  color?: string;
}

/** One row of the Agents view, before it becomes a TreeItem. */
export interface Node {
  kind: "project" | "agent" | "permission" | "file";
  key: string;
  label: string;
  description?: string;
  tooltip?: string;
  icon: Icon;
  contextValue: string;
  agentId?: string;
  permissionId?: string;
  path?: string;
  expanded?: boolean;
  children: Node[];
}

export const STATUS_ICONS: Record<AgentStatus, Icon> = {
  provisioning: { id: "loading~spin", color: "charts.blue" },
  running: { id: "sync~spin", color: "charts.green" },
  waiting: { id: "bell-dot", color: "charts.yellow" },
  paused: { id: "debug-pause", color: "disabledForeground" },
  completed: { id: "pass", color: "charts.blue" },
  failed: { id: "error", color: "charts.red" },
  migrating: { id: "arrow-swap", color: "charts.purple" },
  archived: { id: "archive", color: "disabledForeground" },
};

/** Statuses in which an agent is working: it can be aborted, not retried. */
export const ACTIVE: ReadonlySet<AgentStatus> = new Set(["provisioning", "running", "migrating"]);

/** `12.3k tokens`, `$0.04`: how much an agent used. */
export function usage(agent: AgentView): string {
  const tokens = agent.tokens >= 1000 ? `${(agent.tokens / 1000).toFixed(1)}k` : `${agent.tokens}`;
  const cost = agent.cost + (agent.environment_cost ?? 0);
  return `${tokens} tokens · $${cost.toFixed(2)}`;
}

/** Plain text (never Markdown): what a hover on an agent says. */
export function agentTooltip(agent: AgentView): string {
  const lines = [
    `${agent.title} (${agent.id})`,
    `${agent.status} · ${agent.environment.type} · ${agent.environment.branch ?? "no branch"}`,
    usage(agent),
  ];
  if (agent.model) lines.push(`model ${agent.model}`);
  if (agent.error) lines.push(`error: ${agent.error}`);
  if (agent.pause_reason) lines.push(`paused: ${agent.pause_reason}`);
  if (agent.notice && agent.notice !== agent.error) lines.push(`note: ${agent.notice}`);
  for (const p of agent.permissions) lines.push(`waits for you: ${p.summary}`);
  return lines.join("\n");
}

/** The context value menus match on: `agent` plus its status and what it allows. */
/** A cloud agent can be paused (its work saved, its container stopped) unless it is paused, moving or archived. */
export function canPause(agent: AgentView): boolean {
  return agent.environment.type === "cloud" && !["paused", "migrating", "archived"].includes(agent.status);
}

/** A paused cloud agent can be resumed (the service says so if it was paused for another reason, e.g. a budget). */
export function canResume(agent: AgentView): boolean {
  return agent.environment.type === "cloud" && agent.status === "paused";
}

export function agentContext(agent: AgentView): string {
  const flags = [`agent`, `status-${agent.status}`, ACTIVE.has(agent.status) ? "active" : "settled"];
  if (agent.permissions.length) flags.push("asking");
  if (canPause(agent)) flags.push("pausable");
  if (canResume(agent)) flags.push("resumable");
  return flags.join(" ");
}

/** An agent's row; its children are its pending permissions, then the files it changed (when known). */
export function agentNode(agent: AgentView, files?: FileChange[]): Node {
  const permissions: Node[] = agent.permissions.map((p) => ({
    kind: "permission",
    key: `${agent.id}/permission/${p.id}`,
    label: p.summary,
    description: "waits for you",
    tooltip: `${agent.title} asks: ${p.summary}`,
    icon: { id: "question", color: "charts.yellow" },
    contextValue: "permission",
    agentId: agent.id,
    permissionId: p.id,
    children: [],
  }));
  const changed: Node[] = (files ?? []).map((f) => ({
    kind: "file",
    key: `${agent.id}/file/${f.path}`,
    label: f.path,
    description: f.binary ? `${f.status}, binary` : `+${f.additions} −${f.deletions}`,
    tooltip: `${f.path}: ${f.status} by ${agent.title}`,
    icon: { id: f.status === "added" ? "diff-added" : f.status === "deleted" ? "diff-removed" : "diff-modified" },
    contextValue: f.binary || f.status === "deleted" ? "file binary" : "file",
    agentId: agent.id,
    path: f.path,
    children: [],
  }));
  return {
    kind: "agent",
    key: agent.id,
    label: agent.title,
    description: `${agent.status} · ${agent.environment.type} · ${usage(agent)}`,
    tooltip: agentTooltip(agent),
    icon: STATUS_ICONS[agent.status] ?? { id: "circle-outline" },
    contextValue: agentContext(agent),
    agentId: agent.id,
    expanded: agent.permissions.length > 0,
    children: [...permissions, ...changed],
  };
}

/** The Agents view: agents grouped by project (projects by name), newest agent first in each. */
export function agentTree(agents: Iterable<AgentView>, files: ReadonlyMap<string, FileChange[]> = new Map()): Node[] {
  const byProject = new Map<string, AgentView[]>();
  for (const agent of agents) {
    if (agent.status === "archived") continue;
    const list = byProject.get(agent.project_path) ?? [];
    list.push(agent);
    byProject.set(agent.project_path, list);
  }
  return [...byProject.entries()]
    .sort(([, a], [, b]) => a[0].project_name.localeCompare(b[0].project_name))
    .map(([path, list]) => {
      list.sort((a, b) => b.created_at - a.created_at || a.id.localeCompare(b.id));
      const waiting = list.filter((a) => a.status === "waiting").length;
      return {
        kind: "project" as const,
        key: `project:${path}`,
        label: list[0].project_name,
        description: `${list.length} agent${list.length === 1 ? "" : "s"}${waiting ? `, ${waiting} waiting` : ""}`,
        tooltip: path,
        icon: { id: "repo" },
        contextValue: "project",
        expanded: true,
        children: list.map((a) => agentNode(a, files.get(a.id))),
      };
    });
}

/** How many agents are running and how many wait for a person. */
export function counts(agents: Iterable<AgentView>): { running: number; waiting: number } {
  let running = 0;
  let waiting = 0;
  for (const a of agents) {
    if (ACTIVE.has(a.status)) running++;
    else if (a.status === "waiting") waiting++;
  }
  return { running, waiting };
}

/** The status bar's text (codicons in `$(…)`). */
export function statusBarText(c: { running: number; waiting: number }): string {
  return `$(sync${c.running ? "~spin" : ""}) ${c.running} running  $(bell${c.waiting ? "-dot" : ""}) ${c.waiting} waiting`;
}

/** Every pending permission of every agent, the agent's oldest request first. */
export function pendingPermissions(agents: Iterable<AgentView>): { agent: AgentView; permission: PermissionView }[] {
  const out: { agent: AgentView; permission: PermissionView }[] = [];
  for (const agent of agents) for (const permission of agent.permissions) out.push({ agent, permission });
  return out.sort((a, b) => a.agent.updated_at - b.agent.updated_at);
}

/** Take in an agent's new view; an older view than the one held is ignored. Returns whether it changed. */
export function mergeAgent(agents: Map<string, AgentView>, id: string, view: AgentView | null): boolean {
  const held = agents.get(id);
  if (view === null || view.status === "archived") return agents.delete(id);
  if (held && view.updated_at < held.updated_at) return false;
  agents.set(id, view);
  return true;
}
