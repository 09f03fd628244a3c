// Requests to a container that are not activity: they neither wake a sleeping environment nor keep one
// awake (the Container class's containerFetch renews the sleep timeout on every request). Palot's event
// streams (it listens to every agent all the time), the Durable Object's own daemon calls (saves,
// credentials) and its check whether OpenCode is in a turn go this way.

import { OPENCODE_PORT } from "./config";

/** OpenCode's event streams (SSE). */
export const EVENT_PATHS = ["/global/event", "/event"];
const WORKSPACE = "/workspace";

/** A request to a running container, not counted as activity. */
export async function quietFetch(container: Container | undefined, request: Request, port: number): Promise<Response> {
  if (!container?.running) throw new Error("the container is not running");
  return container.getTcpPort(port).fetch(request.url, request);
}

/** Open event streams, all ended when the container halts (a stopped container's stream would just hang). */
export class EventStreams {
  private open = new Set<AbortController>();

  /** The stream's response, passed on until :meth:`endAll`. */
  pass(response: Response): Response {
    if (!response.body) return response;
    const { readable, writable } = new IdentityTransformStream();
    const end = new AbortController();
    this.open.add(end);
    response.body
      .pipeTo(writable, { signal: end.signal })
      .catch(() => undefined)
      .finally(() => this.open.delete(end));
    return new Response(readable, response);
  }

  endAll(reason: string): void {
    for (const end of this.open) end.abort(reason);
  }
}

/** Whether a session of OpenCode's is in a turn (busy or retrying); false when it cannot tell. */
export async function openCodeBusy(fetcher: (request: Request, port: number) => Promise<Response>, password: string): Promise<boolean> {
  try {
    const headers = { authorization: "Basic " + btoa("opencode:" + password) };
    const response = await fetcher(new Request(`http://container/session/status?directory=${WORKSPACE}`, { headers }), OPENCODE_PORT);
    if (!response.ok) return false;
    const statuses = (await response.json()) as Record<string, { type?: string }>;
    return Object.values(statuses).some((status) => status.type !== "idle");
  } catch {
    return false;
  }
}
