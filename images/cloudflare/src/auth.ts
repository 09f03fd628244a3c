// Bearer-token check for every request to the Worker.
//
// The token is the Worker secret PALOT_TOKEN. Both sides are hashed with SHA-256 first, so the
// comparison always walks 32 bytes whatever the lengths, and the loop has no early exit.

import { error } from "./http";

const encoder = new TextEncoder();

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

export async function tokensEqual(given: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([digest(given), digest(expected)]);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** null when the request carries the right bearer token, else the error response to send. */
export async function checkBearer(request: Request, secret: string | undefined): Promise<Response | null> {
  if (!secret) {
    return error(
      500,
      "the Worker has no PALOT_TOKEN secret, so it refuses every request",
      "set it with `npx wrangler secret put PALOT_TOKEN` (locally: PALOT_TOKEN=... in .dev.vars) and use the same value as Palot's cloud token",
    );
  }
  const header = request.headers.get("authorization") ?? "";
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  if (!match || !(await tokensEqual(match[1], secret))) {
    return error(
      401,
      match ? "the bearer token is wrong" : "the request has no `Authorization: Bearer <token>` header",
      "send `Authorization: Bearer <PALOT_TOKEN>` with the token the Worker was deployed with",
      { "www-authenticate": 'Bearer realm="palot"' },
    );
  }
  return null;
}
