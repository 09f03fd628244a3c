// Durable workspaces: an environment's work saved outside its container, in the SAVES R2 bucket, and put
// back when a fresh container starts (a container's disk does not survive a stop, a sleep or a crash).
//
// What a save holds is Palot's business, not the Worker's: Palot gives each environment two commands
// (PUT /envs/<id>/durable), run through the environment daemon. The save command writes one file (a tar of
// the git snapshot bundle of the agent's commits and uncommitted files, and OpenCode's session exports) at
// the path the Worker appends to it; the restore command finds the files the Worker put in the folder it
// appends, and leaves a workspace that is already there alone. The base bundle (the project up to the
// agent's base commit) is stored once, at provision (PUT /envs/<id>/base), unless the environment clones the
// project's remote instead (Palot's remote route: the URL is in the restore command, and there is no bundle).
//
// R2 keys: envs/<id>/base.bundle (the bundle route only) and envs/<id>/save.tar (the newest save only).

import type { Daemon } from "./daemon";

export interface Recipes {
  save: string[];
  restore: string[];
}

/** The save command's exit status when there is nothing to save yet (no workspace in place). */
const NOTHING_YET = 3;
const SAVE_FILE = "/run/palot/save.tar";
const RESTORE_DIR = "/run/palot/restore";
const TIMEOUT_SECONDS = 600;

export function saveKeys(id: string): { base: string; save: string } {
  return { base: `envs/${id}/base.bundle`, save: `envs/${id}/save.tar` };
}

export class NoBucket extends Error {}
/** The environment has no save commands (Palot gives them at provision; older environments lack them). */
export class NotDurable extends Error {}

export function bucketOf(bucket: R2Bucket | undefined): R2Bucket {
  if (!bucket) throw new NoBucket("the Worker has no SAVES bucket binding");
  return bucket;
}

/** Run the save command and keep its file in the bucket; false when there was nothing to save yet. */
export async function saveWork(daemon: Daemon, bucket: R2Bucket, id: string, recipes: Recipes): Promise<boolean> {
  const result = await daemon.exec([...recipes.save, SAVE_FILE], TIMEOUT_SECONDS);
  if (result.code === NOTHING_YET) return false;
  if (result.code !== 0) throw new Error(`the save command failed (exit ${result.code}): ${(result.stderr || result.stdout).slice(-800)}`);
  const data = await daemon.getFile(SAVE_FILE);
  if (!data) throw new Error(`the save command left no ${SAVE_FILE}`);
  await bucket.put(saveKeys(id).save, data);
  return true;
}

/**
 * Put the base bundle (if one is stored) and the newest save into a container and run the restore command.
 * Returns what the command printed: "restored", "base" (no save yet: the project at its base) or "kept"
 * (the workspace was still there).
 */
export async function restoreWork(daemon: Daemon, bucket: R2Bucket, id: string, recipes: Recipes): Promise<string> {
  const keys = saveKeys(id);
  const base = await bucket.get(keys.base);
  // None on the remote route: the restore command clones the project's remote, and says so when it cannot.
  if (base) await daemon.putFile(`${RESTORE_DIR}/base.bundle`, await base.arrayBuffer());
  const saved = await bucket.get(keys.save);
  if (saved) await daemon.putFile(`${RESTORE_DIR}/save.tar`, await saved.arrayBuffer());
  const result = await daemon.exec([...recipes.restore, RESTORE_DIR], TIMEOUT_SECONDS);
  if (result.code !== 0) throw new Error(`the restore command failed (exit ${result.code}): ${(result.stderr || result.stdout).slice(-800)}`);
  return result.stdout.trim().split("\n").pop() ?? "";
}

export async function forget(bucket: R2Bucket | undefined, id: string): Promise<void> {
  if (!bucket) return;
  const keys = saveKeys(id);
  await bucket.delete([keys.base, keys.save]);
}
