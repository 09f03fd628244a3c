// Sealing an environment's model-provider credentials for its Durable Object's storage.
//
// AES-256-GCM with a key derived (HKDF-SHA-256) from the Worker's PALOT_TOKEN secret and the
// environment id, which is also the additional data: the storage holds only ciphertext, a copy of one
// environment's record cannot be opened as another's, and nothing in storage can open it. Rotating
// PALOT_TOKEN makes sealed credentials unreadable; the status then says "unreadable" and Palot sends
// them again (PUT /envs/<id>/credentials).

export interface Sealed {
  iv: string; // base64, 12 bytes
  data: string; // base64 ciphertext + tag
}

const encoder = new TextEncoder();

function toBase64(bytes: Uint8Array): string {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text);
}

function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

async function keyFor(secret: string, envId: string): Promise<CryptoKey> {
  const base = await crypto.subtle.importKey("raw", encoder.encode(secret), "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: encoder.encode("palot-credentials-v1"), info: encoder.encode(envId) },
    base,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

export async function seal(secret: string, envId: string, values: Record<string, string>): Promise<Sealed> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const data = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: encoder.encode(envId) },
    await keyFor(secret, envId),
    encoder.encode(JSON.stringify(values)),
  );
  return { iv: toBase64(iv), data: toBase64(new Uint8Array(data)) };
}

/** The sealed values, or null when they cannot be opened (another secret, or tampered with). */
export async function unseal(secret: string, envId: string, sealed: Sealed): Promise<Record<string, string> | null> {
  try {
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: fromBase64(sealed.iv), additionalData: encoder.encode(envId) },
      await keyFor(secret, envId),
      fromBase64(sealed.data),
    );
    return JSON.parse(new TextDecoder().decode(plain)) as Record<string, string>;
  } catch {
    return null;
  }
}
