// The environment daemon (palot-envd, port 8081) as the Durable Object calls it: health, the model
// credentials, commands and files. Every request carries the environment's own basic-auth password; the
// container is reached through the Container class's containerFetch, which this module is given.

import { DAEMON_PORT } from "./config";

type ContainerFetch = (request: Request, port: number) => Promise<Response>;

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class Daemon {
  constructor(
    private readonly fetcher: ContainerFetch,
    private readonly password: string,
  ) {}

  private async call(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set("authorization", "Basic " + btoa("opencode:" + this.password));
    return this.fetcher(new Request(`http://container${path}`, { ...init, headers }), DAEMON_PORT);
  }

  private async checked(what: string, path: string, init: RequestInit = {}): Promise<Response> {
    const response = await this.call(path, init);
    if (!response.ok) {
      const text = (await response.text()).slice(0, 300);
      throw new Error(`the environment daemon answered ${response.status} to ${what}: ${text}`);
    }
    return response;
  }

  async health(): Promise<{ credentials?: string; opencode?: boolean }> {
    return (await (await this.checked("/health", "/health")).json()) as { credentials?: string; opencode?: boolean };
  }

  /** PUT them to the daemon, which restarts OpenCode with them and answers once it listens. */
  async deliverCredentials(values: Record<string, string>): Promise<void> {
    const body = JSON.stringify({ env: values });
    const response = await this.checked("the credentials", "/credentials", {
      method: "PUT",
      body,
      headers: { "content-type": "application/json" },
    });
    await response.body?.cancel();
  }

  /** Run argv to completion in the container (cwd /workspace). */
  async exec(argv: string[], timeoutSeconds: number): Promise<ExecResult> {
    const body = JSON.stringify({ argv, timeout: timeoutSeconds });
    const response = await this.checked("/exec", "/exec", { method: "POST", body, headers: { "content-type": "application/json" } });
    return (await response.json()) as ExecResult;
  }

  /** A file's bytes, or null when it does not exist. */
  async getFile(path: string): Promise<ArrayBuffer | null> {
    const response = await this.call(`/files?path=${encodeURIComponent(path)}`);
    if (response.status === 404) {
      await response.body?.cancel();
      return null;
    }
    if (!response.ok) throw new Error(`the environment daemon answered ${response.status} to GET ${path}`);
    return response.arrayBuffer();
  }

  async putFile(path: string, data: ArrayBuffer | ReadableStream): Promise<void> {
    const response = await this.checked(`PUT ${path}`, `/files?path=${encodeURIComponent(path)}`, { method: "PUT", body: data });
    await response.body?.cancel();
  }
}
