import { createHmac } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';
import type { Config } from '../config/schema.js';
import type { Clock } from './clock.js';
import { AppError } from './errors.js';
import type { DropzonePermission } from './permissions.js';
import { randomId } from './ids.js';
import { signingSecret } from './signing-secret.js';
import type { Dropzone, MetadataOps } from './ports/metadata-store.js';

/**
 * Page tokens: what the public dropzone page (`/d/<code>`) uses instead of the credential-bearing dropzone `_id`.
 *
 * - A JWT (HS256) signed with a key derived from the server's signing secret (HMAC-SHA256(secret, {@link KEY_LABEL})),
 *   so it can never be confused with, or used as, a SigV4 upload signature.
 * - Claims: `iss` {@link ISSUER}, `aud` {@link AUDIENCE}, `sub` the dropzone's public `code` (already in the link,
 *   so the payload — readable by anyone holding the token — reveals nothing new), `scope` the page capabilities
 *   at minting time, `iat`, `exp` (iat + {@link PAGE_TOKEN_TTL_MS}), `jti`.
 * - Verification checks signature, algorithm, issuer, audience and expiry against the server clock, and that `sub`
 *   is the code the request names. What a request may do is `scope` ∩ {@link pageCapabilities} *now*,
 *   so revoking an `anyone` grant takes effect immediately.
 */

/** How long a page token is valid; reloading the page mints a new one. */
export const PAGE_TOKEN_TTL_MS = 12 * 3600 * 1000;
/** `iss` of every page token. */
export const ISSUER = 'dropzone-server';
/** `aud` of every page token: only the page API accepts it. */
export const AUDIENCE = 'dropzone-page';
/** Domain-separation label of the derived HS256 key. */
const KEY_LABEL = 'dropzone-server/page-token/v1';

/** What a page link holder may do, in dropzone-permission names. */
export type PageCapability = Extract<DropzonePermission, 'dropzone.upload' | 'dropzone.list' | 'dropzone.download'>;

/**
 * The capabilities of a link holder: upload always (the link is meant for uploading), listing and downloading
 * only when `anyone` holds `dropzone.list` / `dropzone.download` (or `dropzone.own`) on the dropzone.
 */
export async function pageCapabilities(meta: Pick<MetadataOps, 'grantsForAnyone'>, dz: Dropzone): Promise<PageCapability[]> {
  const anyone = new Set(await meta.grantsForAnyone('dropzone', dz.id));
  const own = anyone.has('dropzone.own');
  const out: PageCapability[] = ['dropzone.upload'];
  if (own || anyone.has('dropzone.list')) out.push('dropzone.list');
  if (own || anyone.has('dropzone.download')) out.push('dropzone.download');
  return out;
}

/** Claims of a verified page token. */
export interface PageTokenClaims {
  code: string;
  scope: PageCapability[];
  expiresAt: number;
}

/** Mints and verifies page tokens with a key derived from the signing secret. */
export interface PageTokens {
  mint(dz: Dropzone, scope: PageCapability[]): Promise<{ token: string; expiresAt: number }>;
  /** Throws UNAUTHENTICATED (401) for anything but a valid, unexpired token for `code`. */
  verify(token: string | undefined, code: string): Promise<PageTokenClaims>;
}

/** Builds the page-token service; the key is derived lazily on first use. */
export function createPageTokens(deps: { config: Config; meta: Pick<MetadataOps, 'getSetting' | 'initSetting'>; clock: Clock }): PageTokens {
  let key: Promise<Uint8Array> | undefined;
  const keyOf = () =>
    (key ??= signingSecret(deps.config, deps.meta).then((secret) => new Uint8Array(createHmac('sha256', secret).update(KEY_LABEL).digest())).catch((err) => {
      key = undefined; // try again on the next request
      throw err;
    }));
  const invalid = (why: string) => new AppError('UNAUTHENTICATED', `Invalid page token (${why}); reload the page.`);

  return {
    async mint(dz, scope) {
      const now = deps.clock.now();
      const iat = Math.floor(now / 1000);
      const exp = Math.floor((now + PAGE_TOKEN_TTL_MS) / 1000);
      const token = await new SignJWT({ scope })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setSubject(dz.code)
        .setIssuedAt(iat)
        .setExpirationTime(exp)
        .setJti(randomId(9))
        .sign(await keyOf());
      return { token, expiresAt: exp * 1000 };
    },

    async verify(token, code) {
      if (!token) throw new AppError('UNAUTHENTICATED', 'Missing page token: send Authorization: Bearer <token> from the page.');
      const verifyKey = await keyOf();
      let payload;
      try {
        ({ payload } = await jwtVerify(token, verifyKey, {
          algorithms: ['HS256'],
          issuer: ISSUER,
          audience: AUDIENCE,
          currentDate: new Date(deps.clock.now()),
          requiredClaims: ['sub', 'exp', 'iat'],
        }));
      } catch (err) {
        const c = (err as { code?: string }).code;
        throw invalid(c === 'ERR_JWT_EXPIRED' ? 'expired' : 'bad signature or claims');
      }
      if (payload.sub !== code) throw invalid('issued for another dropzone');
      const scope = Array.isArray(payload.scope) ? (payload.scope.filter((s) => typeof s === 'string') as PageCapability[]) : [];
      return { code, scope, expiresAt: (payload.exp as number) * 1000 };
    },
  };
}
