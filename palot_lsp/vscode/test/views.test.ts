// The Agents view and the status bar from the api's agent views (pure parts of the extension).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  AgentView, agentContext, agentTree, canPause, canResume, counts, mergeAgent, pendingPermissions, statusBarText,
} from "../src/views";

function agent(id: string, over: Partial<AgentView> = {}): AgentView {
  return {
    id, title: `Agent ${id}`, status: "running", project_path: "/src/app", project_name: "app",
    environment: { type: "worktree", directory: `/data/${id}`, branch: `palot/${id}` },
    permissions: [], tokens: 0, cost: 0, created_at: 1, updated_at: 1, ...over,
  };
}

test("agents are grouped by project, newest first, with status icon, environment badge, tokens and cost", () => {
  const tree = agentTree([
    agent("ag_1", { created_at: 1, status: "completed", tokens: 12345, cost: 0.041 }),
    agent("ag_2", { created_at: 2, environment: { type: "container", directory: "/workspace" } }),
    agent("ag_3", { project_path: "/src/api", project_name: "api", status: "failed", error: "boom" }),
    agent("ag_4", { status: "archived" }),
  ]);
  assert.deepEqual(tree.map((p) => [p.label, p.description]), [["api", "1 agent"], ["app", "2 agents"]]);
  const [first, second] = tree[1].children;
  assert.deepEqual([first.key, second.key], ["ag_2", "ag_1"]);
  assert.equal(first.description, "running · container · 0 tokens · $0.00");
  assert.deepEqual(first.icon, { id: "sync~spin", color: "charts.green" });
  assert.equal(second.description, "completed · worktree · 12.3k tokens · $0.04");
  assert.deepEqual(second.icon, { id: "pass", color: "charts.blue" });
  assert.equal(first.contextValue, "agent status-running active");
  assert.equal(second.contextValue, "agent status-completed settled");
  assert.match(tree[0].children[0].tooltip ?? "", /error: boom/);
});

test("pending permissions are an agent's first children, for the inline approve and reject", () => {
  const waiting = agent("ag_w", {
    status: "waiting",
    permissions: [{ id: "per_1", permission: "bash", patterns: ["npm test"], summary: "bash: npm test" }],
  });
  const [project] = agentTree([waiting], new Map([["ag_w", [{ path: "a.ts", status: "modified", additions: 2, deletions: 1 }]]]));
  assert.equal(project.description, "1 agent, 1 waiting");
  const [row] = project.children;
  assert.equal(row.expanded, true);
  assert.equal(row.contextValue, "agent status-waiting settled asking");
  assert.deepEqual(row.children.map((c) => [c.kind, c.label, c.contextValue, c.permissionId ?? c.path]), [
    ["permission", "bash: npm test", "permission", "per_1"],
    ["file", "a.ts", "file", "a.ts"],
  ]);
  assert.equal(row.children[1].description, "+2 −1");
});

test("titles stay text: a title with markup is the label as written", () => {
  const [project] = agentTree([agent("ag_x", { title: "<b>**bold**</b> $(alert)" })]);
  assert.equal(project.children[0].label, "<b>**bold**</b> $(alert)");
  assert.ok((project.children[0].tooltip ?? "").startsWith("<b>**bold**</b> $(alert) (ag_x)"));
});

test("the status bar counts running and waiting agents", () => {
  const agents = [agent("a"), agent("b", { status: "provisioning" }), agent("c", { status: "waiting" }),
    agent("d", { status: "completed" })];
  assert.deepEqual(counts(agents), { running: 2, waiting: 1 });
  assert.equal(statusBarText(counts(agents)), "$(sync~spin) 2 running  $(bell-dot) 1 waiting");
  assert.equal(statusBarText({ running: 0, waiting: 0 }), "$(sync) 0 running  $(bell) 0 waiting");
});

test("a newer view replaces an agent, an older one is ignored, archived or removed agents leave", () => {
  const held = new Map<string, AgentView>();
  assert.equal(mergeAgent(held, "a", agent("a", { updated_at: 5 })), true);
  assert.equal(mergeAgent(held, "a", agent("a", { updated_at: 4, status: "paused" })), false);
  assert.equal(held.get("a")?.status, "running");
  assert.equal(mergeAgent(held, "a", agent("a", { updated_at: 6, status: "completed" })), true);
  assert.equal(held.get("a")?.status, "completed");
  assert.equal(mergeAgent(held, "a", agent("a", { updated_at: 7, status: "archived" })), true);
  assert.equal(held.has("a"), false);
  mergeAgent(held, "b", agent("b"));
  assert.equal(mergeAgent(held, "b", null), true);
  assert.equal(held.size, 0);
});

test("the inbox lists every agent's pending requests, the longest waiting first", () => {
  const p = (id: string) => ({ id, permission: "edit", patterns: [id], summary: `edit: ${id}` });
  const agents = [agent("new", { updated_at: 9, permissions: [p("x")] }), agent("old", { updated_at: 3, permissions: [p("y"), p("z")] })];
  assert.deepEqual(pendingPermissions(agents).map((i) => `${i.agent.id}/${i.permission.id}`), ["old/y", "old/z", "new/x"]);
});

test("only cloud agents can be paused, and only paused ones resumed; the row's menu follows", () => {
  const cloud = (status: AgentView["status"]) =>
    agent("c", { status, environment: { type: "cloud", directory: "/workspace", branch: "palot/c" } });
  assert.ok(canPause(cloud("running")) && canPause(cloud("completed")) && !canResume(cloud("running")));
  assert.ok(canResume(cloud("paused")) && !canPause(cloud("paused")));
  assert.ok(!canPause(cloud("migrating")) && !canPause(cloud("archived")));
  assert.ok(!canPause(agent("w")) && !canResume(agent("w", { status: "paused" })));  // a worktree agent
  assert.match(agentContext(cloud("completed")), /\bpausable\b/);
  assert.match(agentContext(cloud("paused")), /\bresumable\b/);
  assert.doesNotMatch(agentContext(agent("w")), /pausable|resumable/);
});
