// JSON responses. Every error names the problem and the fix, so Palot (or a person with curl)
// can show it as it is.

export function json(status: number, body: unknown, headers?: HeadersInit): Response {
  const h = new Headers(headers);
  h.set("content-type", "application/json; charset=utf-8");
  h.set("cache-control", "no-store");
  return new Response(JSON.stringify(body), { status, headers: h });
}

export function error(status: number, message: string, fix: string, headers?: HeadersInit): Response {
  return json(status, { error: message, fix }, headers);
}
