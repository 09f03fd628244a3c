// The Palot extension: a client of palot-lsp. Every action is one of palot-lsp's commands
// (workspace/executeCommand); this file only asks the person (quick picks, input boxes) and shows what the
// language server answers (the Agents view, the status bar, the diff editor). No business logic lives here.

import * as fs from "node:fs";
import * as vscode from "vscode";
import {
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  TransportKind,
} from "vscode-languageclient/node";

import {
  ENVIRONMENTS,
  PERMISSION_MODES,
  REPLIES,
  Reply,
  SCHEME,
  diffTitle,
  errorSentence,
  findServer,
  parseVersionUri,
  prArgs,
  replyArgs,
  serverEnv,
  spawnArgs,
  versionUri,
} from "./args";
import {
  ACTIVE,
  AgentView,
  FileChange,
  Node,
  agentTree,
  canPause,
  canResume,
  counts,
  mergeAgent,
  pendingPermissions,
  statusBarText,
} from "./views";

let client: LanguageClient | undefined;

/** palot-lsp's command, with the arguments as one object; an error is said in one sentence with the fix. */
async function run<T = unknown>(command: string, args: Record<string, unknown> = {}, what?: string): Promise<T | undefined> {
  if (!client) {
    void vscode.window.showErrorMessage("Palot is not running: check the Palot output for why, then run “Palot: Restart”.");
    return undefined;
  }
  try {
    return (await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [args] })) as T;
  } catch (e) {
    void vscode.window.showErrorMessage(errorSentence(what ?? command, e));
    return undefined;
  }
}

// --- the agents, kept current from palot-lsp's palot/agent notifications ------------------------------

class Agents {
  readonly views = new Map<string, AgentView>();
  readonly files = new Map<string, FileChange[]>(); // agent id → the files it changed (read when shown)
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;

  async load(): Promise<void> {
    const listed = await run<AgentView[]>("palot.list", { quiet: true }, "Listing agents");
    if (!listed) return;
    this.views.clear();
    for (const agent of listed) mergeAgent(this.views, agent.id, agent);
    this.files.clear();
    this.changed.fire();
  }

  take(id: string, view: AgentView | null): void {
    const before = this.views.get(id);
    if (mergeAgent(this.views, id, view)) {
      if (!view || before?.status !== view.status || before?.updated_at !== view.updated_at) this.files.delete(id);
      this.changed.fire();
    }
  }

  async readFiles(id: string): Promise<FileChange[]> {
    const known = this.files.get(id);
    if (known) return known;
    const diff = await run<{ files: FileChange[] }>("palot.showDiff", { agent: id, show: false }, "Reading the agent's changes");
    const files = diff?.files ?? [];
    this.files.set(id, files);
    return files;
  }
}

// --- the Agents view -----------------------------------------------------------------------------

class AgentsTree implements vscode.TreeDataProvider<Node> {
  private readonly changed = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.changed.event;

  constructor(private readonly agents: Agents) {
    agents.onDidChange(() => this.changed.fire(undefined));
  }

  async getChildren(node?: Node): Promise<Node[]> {
    if (!node) return agentTree(this.agents.views.values(), this.agents.files);
    if (node.kind === "agent" && node.agentId && !this.agents.files.has(node.agentId)) {
      await this.agents.readFiles(node.agentId);
      const agent = this.agents.views.get(node.agentId);
      const fresh = agent && agentTree([agent], this.agents.files)[0]?.children[0];
      return fresh ? fresh.children : [];
    }
    return node.children;
  }

  getTreeItem(node: Node): vscode.TreeItem {
    const collapsible =
      node.kind === "project"
        ? vscode.TreeItemCollapsibleState.Expanded
        : node.kind === "agent"
          ? node.expanded
            ? vscode.TreeItemCollapsibleState.Expanded
            : vscode.TreeItemCollapsibleState.Collapsed
          : vscode.TreeItemCollapsibleState.None;
    const item = new vscode.TreeItem(node.label, collapsible);
    item.id = node.key;
    item.description = node.description;
    item.tooltip = node.tooltip; // a plain string: titles are shown as written, never as Markdown
    item.contextValue = node.contextValue;
    item.iconPath = new vscode.ThemeIcon(node.icon.id, node.icon.color ? new vscode.ThemeColor(node.icon.color) : undefined);
    if (node.kind === "file" && node.agentId && node.path && node.contextValue === "file") {
      item.command = { title: "Open the agent's change", command: "palot.ui.openFileDiff", arguments: [node] };
    }
    return item;
  }
}

// --- the diff editor: base ↔ agent, one file, from palot.fileVersions -------------------------------

class Versions implements vscode.TextDocumentContentProvider {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const ref = parseVersionUri(uri.path, uri.query);
    if (!ref) return "";
    const versions = await run<{ base: string; text: string }>("palot.fileVersions", { agent: ref.agent, path: ref.path },
      `Reading ${ref.path}`);
    if (!versions) return "";
    return ref.side === "base" ? versions.base : versions.text;
  }

  refresh(uri: vscode.Uri): void {
    this.changed.fire(uri);
  }
}

function sideUri(agent: string, path: string, side: "base" | "agent"): vscode.Uri {
  return vscode.Uri.from(versionUri({ agent, path, side }));
}

async function openFileDiff(agents: Agents, agentId: string, path: string): Promise<void> {
  const title = agents.views.get(agentId)?.title ?? agentId;
  await vscode.commands.executeCommand("vscode.diff", sideUri(agentId, path, "base"), sideUri(agentId, path, "agent"),
    diffTitle(path, title), { preview: false });
}

// --- asking the person ----------------------------------------------------------------------------

interface AgentPick extends vscode.QuickPickItem {
  agent: AgentView;
}

/** The agent a command is for: the tree row it was run on, else a pick (only agents `fits` allows). */
async function pickAgent(agents: Agents, node: Node | undefined, placeHolder: string,
  fits: (a: AgentView) => boolean = () => true): Promise<AgentView | undefined> {
  if (node?.agentId) return agents.views.get(node.agentId);
  const items: AgentPick[] = [...agents.views.values()].filter(fits)
    .sort((a, b) => b.created_at - a.created_at)
    .map((agent) => ({ label: agent.title, description: `${agent.status} · ${agent.environment.type}`,
      detail: `${agent.id} · ${agent.project_name} · ${agent.environment.branch ?? ""}`, agent }));
  if (!items.length) {
    void vscode.window.showInformationMessage("No Palot agent fits: spawn one with “Palot: Spawn Agent”.");
    return undefined;
  }
  return (await vscode.window.showQuickPick(items, { placeHolder, matchOnDetail: true }))?.agent;
}

async function pickOne<T extends string>(choices: readonly T[], placeHolder: string,
  describe: Partial<Record<T, string>> = {}): Promise<T | undefined> {
  const picked = await vscode.window.showQuickPick(
    choices.map((c) => ({ label: c, description: describe[c] })), { placeHolder });
  return picked?.label as T | undefined;
}

/** A quick pick shown at once (busy) whose items arrive from palot-lsp; the picked label. */
function pickLoading(placeholder: string, first: string[], load: () => Promise<string[]>): Promise<string | undefined> {
  const pick = vscode.window.createQuickPick();
  pick.placeholder = placeholder;
  pick.ignoreFocusOut = true;
  pick.items = first.map((label) => ({ label }));
  pick.busy = true;
  void load().then((labels) => {
    pick.items = labels.map((label) => ({ label }));
    pick.busy = false;
  });
  return new Promise((resolve) => {
    pick.onDidAccept(() => {
      resolve(pick.selectedItems[0]?.label);
      pick.hide();
    });
    pick.onDidHide(() => {
      resolve(undefined);
      pick.dispose();
    });
    pick.show();
  });
}

async function spawn(): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  const fromFile = editor && editor.document.uri.scheme === "file" ? editor : undefined;
  const selection = fromFile && !fromFile.selection.isEmpty ? fromFile.selection : undefined;
  const prompt = await vscode.window.showInputBox({
    title: "Palot: Spawn Agent (1/4)",
    prompt: selection ? "What should the agent do with the selected lines?"
      : fromFile ? `What should the agent do? (it is told about ${vscode.workspace.asRelativePath(fromFile.document.uri)})`
        : "What should the agent work on?",
    placeHolder: "e.g. Add input validation to the signup form",
    ignoreFocusOut: true,
    validateInput: (v) => (v.trim() ? undefined : "Say what the agent should work on."),
  });
  if (!prompt) return;
  const environment = await pickOne(ENVIRONMENTS, "Palot: Spawn Agent (2/4) — where it runs", {
    worktree: "a git worktree on its own branch (default)", container: "its own container", cloud: "a Cloudflare Container",
  });
  if (!environment) return;
  const DEFAULT_MODEL = "OpenCode's default model";
  const model = await pickLoading("Palot: Spawn Agent (3/4) — the model", [DEFAULT_MODEL],
    async () => [DEFAULT_MODEL, ...((await run<string[]>("palot.models", {}, "Listing models")) ?? [])]);
  if (!model) return;
  const permissionMode = await pickOne(PERMISSION_MODES, "Palot: Spawn Agent (4/4) — permissions", {
    default: "OpenCode's rules (default)", ask: "ask before every edit and command", auto: "allow everything",
  });
  if (!permissionMode) return;
  const args = spawnArgs({
    prompt, environment, permissionMode, model: model === DEFAULT_MODEL ? undefined : model,
    uri: fromFile?.document.uri.toString(),
    range: selection && {
      start: { line: selection.start.line, character: selection.start.character },
      end: { line: selection.end.line, character: selection.end.character },
    },
  });
  await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: "Spawning a Palot agent" },
    () => run("palot.spawn", args, "Spawning the agent"));
}

const REPLY_LABELS: Record<Reply, string> = { once: "Allow once", always: "Allow always", reject: "Reject" };

async function reply(agents: Agents, node: Node | undefined, given?: Reply): Promise<void> {
  let agentId = node?.agentId;
  let permissionId = node?.permissionId;
  if (!agentId || !permissionId) {
    const pending = pendingPermissions(agents.views.values()).filter((p) => !agentId || p.agent.id === agentId);
    if (!pending.length) {
      void vscode.window.showInformationMessage("Nothing is waiting for you.");
      return;
    }
    const picked = await vscode.window.showQuickPick(pending.map((p) => ({
      label: p.permission.summary, description: p.agent.title, detail: p.agent.id, p,
    })), { placeHolder: "Which request?" });
    if (!picked) return;
    agentId = picked.p.agent.id;
    permissionId = picked.p.permission.id;
  }
  const answer = given ?? (await vscode.window.showQuickPick(REPLIES.map((r) => ({ label: REPLY_LABELS[r], r })),
    { placeHolder: "Your answer" }))?.r;
  if (!answer) return;
  const note = answer === "reject" && !given
    ? await vscode.window.showInputBox({ prompt: "A note to the agent (optional)", ignoreFocusOut: true }) : undefined;
  await run("palot.replyPermission", replyArgs(agentId, permissionId, answer, note), "Answering the request");
}

async function inbox(agents: Agents): Promise<void> {
  if (pendingPermissions(agents.views.values()).length) return reply(agents, undefined);
  await vscode.commands.executeCommand("palot.agents.focus");
}

async function openChange(agents: Agents, node: Node | undefined): Promise<void> {
  const agent = await pickAgent(agents, node, "Whose changes?");
  if (!agent) return;
  const files = (await agents.readFiles(agent.id)).filter((f) => !f.binary && f.status !== "deleted");
  if (!files.length) {
    void vscode.window.showInformationMessage(`Agent ${agent.title} has not changed a text file yet: wait for it, or prompt it.`);
    return;
  }
  const file = files.length === 1 ? files[0] : (await vscode.window.showQuickPick(
    files.map((f) => ({ label: f.path, description: `+${f.additions} −${f.deletions}`, f })), { placeHolder: "Which file?" }))?.f;
  if (file) await openFileDiff(agents, agent.id, file.path);
}

async function applyFile(versions: Versions, uri?: vscode.Uri): Promise<void> {
  const target = uri ?? vscode.window.activeTextEditor?.document.uri;
  const ref = target && target.scheme === SCHEME ? parseVersionUri(target.path, target.query) : undefined;
  if (!ref) {
    void vscode.window.showErrorMessage("Apply this file works in an agent's diff: open one from the Agents view first.");
    return;
  }
  const done = await run("palot.apply", { agent: ref.agent, path: ref.path }, `Applying ${ref.path}`);
  if (done) versions.refresh(sideUri(ref.agent, ref.path, "base"));
}

// --- activation ------------------------------------------------------------------------------------

function startClient(context: vscode.ExtensionContext, agents: Agents, output: vscode.OutputChannel): LanguageClient | undefined {
  const config = vscode.workspace.getConfiguration("palot");
  const command = findServer({
    setting: config.get<string>("server.path"),
    folders: (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath),
    pathEnv: process.env.PATH,
    isExecutable: (file) => {
      try {
        fs.accessSync(file, fs.constants.X_OK);
        return fs.statSync(file).isFile();
      } catch {
        return false;
      }
    },
  });
  if (!command) {
    output.appendLine(`palot-lsp is not in palot.server.path, a workspace folder's .venv/bin, or PATH (${process.env.PATH ?? ""})`);
    void vscode.window.showErrorMessage(
      "Palot could not find palot-lsp: install Palot (pip install palot, or make setup in its repository) or set “palot.server.path”.");
    return undefined;
  }
  const options = { env: serverEnv(process.env, config.get<string>("home")) };
  output.appendLine(`starting ${command}${options.env.PALOT_HOME ? ` (PALOT_HOME ${options.env.PALOT_HOME})` : ""}`);
  const serverOptions: ServerOptions = {
    run: { command, transport: TransportKind.stdio, options },
    debug: { command, transport: TransportKind.stdio, options },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: "file" }],
    outputChannel: output,
    initializationOptions: { agentEvents: true },
  };
  const lc = new LanguageClient("palot", "Palot", serverOptions, clientOptions);
  context.subscriptions.push(lc.onNotification("palot/agent", (p: { id: string; agent: AgentView | null }) => agents.take(p.id, p.agent)));
  lc.start().then(() => agents.load(), (e) => {
    void vscode.window.showErrorMessage(`Palot could not start palot-lsp (${command}): ${e?.message ?? e}; see the Palot output.`);
  });
  return lc;
}

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel("Palot");
  const agents = new Agents();
  const tree = new AgentsTree(agents);
  const versions = new Versions();
  const status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 50);
  status.name = "Palot agents";
  status.command = "palot.ui.inbox";
  status.tooltip = "Palot: running and waiting agents — click to answer what waits for you";
  const showCounts = () => {
    status.text = statusBarText(counts(agents.views.values()));
    status.show();
  };
  showCounts();
  agents.onDidChange(showCounts);

  const view = vscode.window.createTreeView("palot.agents", { treeDataProvider: tree, showCollapseAll: true });
  client = startClient(context, agents, output);

  const agentCommand = (id: string, placeHolder: string, fits: (a: AgentView) => boolean,
    act: (agent: AgentView) => Promise<unknown>) =>
    vscode.commands.registerCommand(id, async (node?: Node) => {
      const agent = await pickAgent(agents, node, placeHolder, fits);
      if (agent) await act(agent);
    });

  context.subscriptions.push(
    output, status, view,
    vscode.workspace.registerTextDocumentContentProvider(SCHEME, versions),
    vscode.commands.registerCommand("palot.ui.spawn", spawn),
    agentCommand("palot.ui.prompt", "Which agent do you want to tell something?", (a) => a.status !== "migrating",
      async (agent) => {
        const text = await vscode.window.showInputBox({ prompt: `Tell ${agent.title}:`, ignoreFocusOut: true,
          validateInput: (v) => (v.trim() ? undefined : "Say something to the agent.") });
        if (text) await run("palot.prompt", { agent: agent.id, text }, "Prompting the agent");
      }),
    agentCommand("palot.ui.abort", "Which agent should stop?", (a) => ACTIVE.has(a.status),
      (agent) => run("palot.abort", { agent: agent.id }, "Aborting the agent")),
    vscode.commands.registerCommand("palot.ui.reply", (node?: Node) => reply(agents, node)),
    vscode.commands.registerCommand("palot.ui.approve", (node?: Node) => reply(agents, node, "once")),
    vscode.commands.registerCommand("palot.ui.reject", (node?: Node) => reply(agents, node, "reject")),
    vscode.commands.registerCommand("palot.ui.inbox", () => inbox(agents)),
    vscode.commands.registerCommand("palot.ui.openChange", (node?: Node) => openChange(agents, node)),
    vscode.commands.registerCommand("palot.ui.openFileDiff", (node: Node) =>
      node?.agentId && node.path ? openFileDiff(agents, node.agentId, node.path) : openChange(agents, undefined)),
    vscode.commands.registerCommand("palot.ui.applyFile", (uri?: vscode.Uri) => applyFile(versions, uri)),
    agentCommand("palot.ui.apply", "Whose changes go to your checkout?", (a) => !ACTIVE.has(a.status),
      (agent) => run("palot.apply", { agent: agent.id }, "Applying the agent's changes")),
    agentCommand("palot.ui.archive", "Which agent to archive (its branch is kept)?", () => true,
      (agent) => run("palot.archive", { agent: agent.id }, "Archiving the agent")),
    agentCommand("palot.ui.destroy", "Which agent to destroy?", () => true, async (agent) => {
      const sure = await vscode.window.showWarningMessage(
        `Destroy ${agent.title}? Its environment and its branch ${agent.environment.branch ?? ""} are removed.`,
        { modal: true }, "Destroy", "Destroy even unmerged work");
      if (sure) await run("palot.destroy", { agent: agent.id, force: sure !== "Destroy" }, "Destroying the agent");
    }),
    agentCommand("palot.ui.createPr", "Which agent's branch becomes a pull request?", (a) => !ACTIVE.has(a.status),
      async (agent) => {
        const title = await vscode.window.showInputBox({ prompt: "The pull request's title", value: agent.title, ignoreFocusOut: true });
        if (title !== undefined) await run("palot.createPr", prArgs(agent.id, title), "Creating the pull request");
      }),
    agentCommand("palot.ui.move", "Which agent to move?", (a) => a.status !== "migrating", async (agent) => {
      const target = await pickOne(ENVIRONMENTS.filter((e) => e !== agent.environment.type), `Move ${agent.title} to`);
      if (target) {
        await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Moving ${agent.title}` },
          () => run("palot.move", { agent: agent.id, target }, "Moving the agent"));
      }
    }),
    agentCommand("palot.ui.retry", "Which agent to retry?", (a) => !ACTIVE.has(a.status) && a.status !== "waiting",
      (agent) => run("palot.retry", { agent: agent.id }, "Retrying the agent")),
    vscode.commands.registerCommand("palot.ui.templates", () => run("palot.templates", {}, "Listing templates")),
    vscode.commands.registerCommand("palot.ui.settings", () => run("palot.settings", { open: true }, "Opening Palot's settings")),
    vscode.commands.registerCommand("palot.ui.refresh", () => agents.load()),
    vscode.commands.registerCommand("palot.ui.restart", async () => {
      await client?.stop().catch(() => undefined);
      client = startClient(context, agents, output);
    }),
  );
}

export async function deactivate(): Promise<void> {
  await client?.stop();
  client = undefined;
}
