// EnvRegistry: the list of environment ids (one instance, named "all"), so GET /envs can list
// them. Each environment's own AgentContainer is the source of truth; this is only an index.

import { DurableObject } from "cloudflare:workers";
import type { Env } from "./config";

const PREFIX = "env:";

export class EnvRegistry extends DurableObject<Env> {
  async add(id: string, createdAt: number): Promise<void> {
    if ((await this.ctx.storage.get(PREFIX + id)) === undefined) await this.ctx.storage.put(PREFIX + id, createdAt);
  }

  async remove(id: string): Promise<void> {
    await this.ctx.storage.delete(PREFIX + id);
  }

  async list(): Promise<{ id: string; created_at: number }[]> {
    const entries = await this.ctx.storage.list<number>({ prefix: PREFIX });
    return [...entries].map(([key, createdAt]) => ({ id: key.slice(PREFIX.length), created_at: createdAt }));
  }
}

export function registry(env: Env): DurableObjectStub<EnvRegistry> {
  return env.REGISTRY.get(env.REGISTRY.idFromName("all"));
}
