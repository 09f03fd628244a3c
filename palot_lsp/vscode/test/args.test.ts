// palot-lsp's command arguments from what a person picked, the diff editor's URIs, and finding palot-lsp.
import assert from "node:assert/strict";
import { test } from "node:test";

import { diffTitle, errorSentence, findServer, parseVersionUri, prArgs, replyArgs, serverEnv, spawnArgs, versionUri } from "../src/args";

test("a spawn's arguments carry what was picked and leave defaults to the service", () => {
  assert.deepEqual(spawnArgs({ prompt: "edit readme", environment: "worktree", permissionMode: "default" }), { prompt: "edit readme" });
  const range = { start: { line: 2, character: 0 }, end: { line: 5, character: 3 } };
  assert.deepEqual(spawnArgs({
    prompt: "fix this", uri: "file:///src/app/a.ts", range, environment: "container", model: "scripted/palot-scripted",
    permissionMode: "ask", title: "  Fix a.ts  ",
  }), {
    prompt: "fix this", uri: "file:///src/app/a.ts", range, environment: "container", model: "scripted/palot-scripted",
    permission_mode: "ask", title: "Fix a.ts",
  });
  const empty = { start: { line: 2, character: 4 }, end: { line: 2, character: 4 } };
  assert.deepEqual(spawnArgs({ prompt: "p", uri: "file:///f", range: empty }), { prompt: "p", uri: "file:///f" });
});

test("a reply names the request; only a rejection carries a note", () => {
  assert.deepEqual(replyArgs("ag_1", "per_1", "once", "ignored"), { agent: "ag_1", reply: "once", permission_id: "per_1" });
  assert.deepEqual(replyArgs("ag_1", "per_1", "reject", " not now "),
    { agent: "ag_1", reply: "reject", permission_id: "per_1", message: "not now" });
  assert.deepEqual(prArgs("ag_1", " ", ""), { agent: "ag_1" });
  assert.deepEqual(prArgs("ag_1", "Title", "main"), { agent: "ag_1", title: "Title", base: "main" });
});

test("a version URI names the agent, the file and the side, and reads back", () => {
  const uri = versionUri({ agent: "ag_1", path: "docs/read me.md", side: "base" });
  assert.deepEqual(uri, { scheme: "palot-agent", path: "/docs/read me.md", query: "agent=ag_1&side=base" });
  assert.deepEqual(parseVersionUri(uri.path, uri.query), { agent: "ag_1", path: "docs/read me.md", side: "base" });
  assert.equal(parseVersionUri("/x", "agent=ag_1&side=theirs"), undefined);
  assert.equal(diffTitle("README.md", "Edit the readme"), "README.md (base ↔ Edit the readme)");
});

test("palot-lsp is the setting, else a workspace .venv's, else the one on PATH", () => {
  const exists = (files: string[]) => (f: string) => files.includes(f);
  assert.equal(findServer({ setting: " /opt/palot-lsp ", folders: ["/w"], isExecutable: exists([]) }), "/opt/palot-lsp");
  assert.equal(findServer({ folders: ["/a", "/w"], pathEnv: "/usr/bin", isExecutable: exists(["/w/.venv/bin/palot-lsp", "/usr/bin/palot-lsp"]) }),
    "/w/.venv/bin/palot-lsp");
  assert.equal(findServer({ folders: ["/a"], pathEnv: "/x:/usr/bin", isExecutable: exists(["/usr/bin/palot-lsp"]) }), "/usr/bin/palot-lsp");
  assert.equal(findServer({ folders: [], pathEnv: "/x", isExecutable: exists([]) }), undefined);
  assert.deepEqual(serverEnv({ A: "1" }, " /home/p "), { A: "1", PALOT_HOME: "/home/p" });
  assert.deepEqual(serverEnv({ A: "1" }, ""), { A: "1" });
});

test("an error is one sentence with the fix, said once", () => {
  assert.equal(errorSentence("Applying README.md", { message: "the checkout is dirty", data: { fix: "commit or stash" } }),
    "Applying README.md failed: the checkout is dirty: commit or stash");
  assert.equal(errorSentence("Spawning", { message: "no model x — pick one of a, b", data: { fix: "pick one of a, b" } }),
    "Spawning failed: no model x — pick one of a, b");
});
