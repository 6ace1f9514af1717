import { hash, randomBytes } from 'node:crypto';

/** A URL-safe random identifier carrying `bytes * 8` bits of entropy (base64url, no padding). */
export function randomId(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

/** Dropzone `_id`: 192 random bits, because holding it is a credential (DropzoneAuth). */
export const newDropzoneId = () => randomId(24);
/** Dropzone `shareId`: the public handle grantees use in paths; no credential. */
export const newShareId = () => `dzs_${randomId(16)}`;
/** Dropzone `code` for the public page `/d/<code>`: 128 random bits. */
export const newDropzoneCode = () => randomId(16);
/** File `_id`: 128 random bits. */
export const newFileId = () => randomId(16);
/** Server-generated blob key; never derived from a client's file name. */
export const newBlobKey = () => `objects/${randomId(18)}`;
/** An API key's public id (safe to show). */
export const newPublicId = () => `pk_${randomId(12)}`;
/** An API key secret (shown once). */
export const newApiKeySecret = () => `dzk_${randomId(32)}`;

/**
 * SHA-256 hex of an API key secret; secrets are high-entropy, so a fast hash is the right tool for lookups. One-shot
 * `hash()` straight to hex: a third of the time of a `Hash` object and no Buffer (it runs on every authenticated request).
 */
export function hashSecret(secret: string): string {
  return hash('sha256', secret, 'hex');
}

/**
 * Whether two hex digests of {@link hashSecret} are equal, in time that depends only on their length (no early exit
 * at the first differing character).
 */
export function sameDigest(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
