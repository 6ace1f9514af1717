import type { CoreDeps } from './deps.js';
import { AppError } from './errors.js';
import { hashSecret, newApiKeySecret, newPublicId, randomId, sameDigest } from './ids.js';
import { KEY_PERMISSIONS, keyPermissions, validatePermissionNames } from './permissions.js';
import { type ApiKey, type MetadataOps, NOT_NOW, type NotNow } from './ports/metadata-store.js';
import { fromGbMonths, toGbMonths } from './quota.js';

/** What `POST /apikeys` accepts. */
export interface CreateKeyInput {
  name?: string;
  permissions?: string[];
  /** GB-months moved from the creator's balance to the new key, atomically. */
  gbMonths?: number;
}

/**
 * Marks the admin row's `secret_hash` while the admin secret comes from configuration (`security.adminKey`): an
 * operator-chosen secret may be weak, so no hash of it is ever stored — a leaked database gives nothing to crack offline.
 * The configured secret is compared in memory; the stored value (marker + random) matches no secret.
 */
const CONFIGURED_MARKER = 'configured:';

/** How many presented secrets {@link createApiKeyService} keeps the digest of, and the longest it keeps. */
const KEPT_DIGESTS = 1024;
const KEPT_SECRET_LENGTH = 128;

/** What one presented secret's SHA-256 told: the lookup digest, and whether it is the configured admin secret. */
interface SecretDigest {
  digest: string;
  configuredAdmin: boolean;
}

/** API keys: admin bootstrap, authentication, creation, GB-month transfers, revocation. */
export function createApiKeyService({ meta, clock, config }: Pick<CoreDeps, 'meta' | 'clock' | 'config'>) {
  const configuredDigest = config.security.adminKey ? hashSecret(config.security.adminKey) : undefined;
  /**
   * The digests of the secrets presented lately: a client sends the same key with every request, and its SHA-256 (about
   * 4,500 instructions with Node's one-shot hash, callgrind, Node 24) is the same every time. Bounded: at most
   * {@link KEPT_DIGESTS} secrets of at most {@link KEPT_SECRET_LENGTH} characters (a flood of made-up secrets only
   * empties it, each then hashed as without it). It holds what a digest is computed from, nothing about whether a key is
   * valid or active: that is asked of the store on every request, so a revoked key stops working at once.
   */
  const digests = new Map<string, SecretDigest>();
  const digestOf = (secret: string): SecretDigest => {
    const kept = digests.get(secret);
    if (kept !== undefined) return kept;
    const digest = hashSecret(secret);
    const fresh = { digest, configuredAdmin: configuredDigest !== undefined && sameDigest(digest, configuredDigest) };
    if (secret.length <= KEPT_SECRET_LENGTH) {
      if (digests.size >= KEPT_DIGESTS) digests.clear();
      digests.set(secret, fresh);
    }
    return fresh;
  };

  /**
   * The key `secret` names, asked of `lookups` (the store's operations, or its immediate lookups): one SHA-256 serves both
   * checks — against the configured admin secret (constant time), and as the lookup hash.
   */
  const keyBySecret = <T>(lookups: { adminKey(): T; keyByHash(hash: string): T }, secret: string): T => {
    const { digest, configuredAdmin } = digestOf(secret);
    return configuredAdmin ? lookups.adminKey() : lookups.keyByHash(digest);
  };

  const service = {
    /**
     * Makes sure an admin key exists. With `security.adminKey` configured, that secret is the admin key's secret; it is
     * checked in memory and nothing derived from it is stored. When a configured secret is dropped from the
     * configuration, a new secret is generated. Returns the admin key and, only when a secret was generated just now,
     * that secret (to print once). Safe when several processes start at once: the database keeps one active admin.
     */
    ensureAdmin(): Promise<{ admin: ApiKey; generatedSecret?: string }> {
      return meta.transaction(async (tx) => {
        const configured = config.security.adminKey;
        const balance = config.security.adminGbMonths === null ? null : fromGbMonths(config.security.adminGbMonths);
        const marker = () => CONFIGURED_MARKER + randomId(24);
        const admin = await tx.adminKey();
        let generatedSecret: string | undefined;
        if (admin) {
          const wasConfigured = admin.secretHash.startsWith(CONFIGURED_MARKER);
          if (configured && !wasConfigured) await tx.setKeySecret(admin.id, marker());
          if (!configured && wasConfigured) await tx.setKeySecret(admin.id, hashSecret((generatedSecret = newApiKeySecret())));
          if (config.security.adminGbMonths !== null && admin.balanceMicro === null) await tx.setKeyBalance(admin.id, balance);
          if (config.security.adminGbMonths === null && admin.balanceMicro !== null) await tx.setKeyBalance(admin.id, null);
          return { admin: (await tx.keyById(admin.id))!, generatedSecret };
        }
        if (!configured) generatedSecret = newApiKeySecret();
        // the database keeps one active admin: when another process bootstrapped one meanwhile, that one stands
        const { key, created } = await tx.ensureAdminKey({
          publicId: newPublicId(),
          secretHash: generatedSecret ? hashSecret(generatedSecret) : marker(),
          name: 'admin',
          balanceMicro: balance,
          permissions: [...KEY_PERMISSIONS],
          isAdmin: true,
          createdBy: null,
          createdAt: clock.now(),
        });
        return created ? { admin: key, generatedSecret } : { admin: key };
      });
    },

    /** The active key with this secret (the configured admin secret included), or undefined. */
    authenticate(secret: string): Promise<ApiKey | undefined> {
      // not async: the store's own promise is answered as is (an async function returning it would wait two more ticks)
      if (!secret) return Promise.resolve(undefined);
      return keyBySecret(meta, secret);
    },

    /**
     * {@link authenticate}'s answer at once, when the store can give it without waiting (its immediate lookups, see
     * `ImmediateLookups`); NOT_NOW otherwise, and the caller awaits {@link authenticate}.
     */
    authenticateNow(secret: string): ApiKey | undefined | NotNow {
      const now = meta.immediate;
      if (now === undefined) return NOT_NOW;
      if (!secret) return undefined;
      return keyBySecret(now, secret);
    },

    /**
     * The key named by its publicId (revoked or not) or, as older SDKs sent it, by its secret (active only); undefined
     * when there is none.
     */
    async byPublicIdOrSecret(ref: string): Promise<ApiKey | undefined> {
      return (await meta.keyByPublicId(ref)) ?? (await service.authenticate(ref));
    },

    /** Every key, oldest first (operator CLI). */
    list(): Promise<ApiKey[]> {
      return meta.listKeys();
    },

    /**
     * Creates a key on behalf of `creator` (needs `apikey.create`, else FORBIDDEN). Permissions cannot exceed the creator's.
     * `gbMonths` moves from the creator's balance atomically (INSUFFICIENT_GB_MONTHS when short). Returns the key and the secret (shown once).
     */
    async create(creator: ApiKey | undefined, input: CreateKeyInput): Promise<{ row: ApiKey; secret: string }> {
      const perms = [...new Set(input.permissions ?? [])];
      validatePermissionNames('apikey', perms);
      const creatorPerms = creator ? keyPermissions(creator) : new Set<string>(KEY_PERMISSIONS);
      if (creator && !creatorPerms.has('apikey.create')) throw new AppError('FORBIDDEN', 'Missing permission apikey.create.', { permission: 'apikey.create' });
      for (const p of perms) if (!creatorPerms.has(p)) throw new AppError('FORBIDDEN', `Cannot grant ${p}: the creating key does not hold it.`, { permission: p });
      const micro = fromGbMonths(input.gbMonths ?? 0);
      const secret = newApiKeySecret();
      const row = await meta.transaction(async (tx) => {
        if (creator && micro > 0) await chargeKey(tx, (await tx.keyById(creator.id))!, micro);
        return tx.insertKey({
          publicId: newPublicId(),
          secretHash: hashSecret(secret),
          name: input.name ?? '',
          balanceMicro: micro,
          permissions: perms,
          isAdmin: false,
          createdBy: creator?.id ?? null,
          createdAt: clock.now(),
        });
      });
      return { row, secret };
    },

    /** Moves `gbMonths` from `from` to the key `toPublicId` atomically; never leaves a negative balance. */
    async transfer(from: ApiKey, toPublicId: string, gbMonths: number): Promise<{ from: ApiKey; to: ApiKey }> {
      if (!keyPermissions(from).has('apikey.create')) throw new AppError('FORBIDDEN', 'Missing permission apikey.create.', { permission: 'apikey.create' });
      if (!(gbMonths > 0)) throw new AppError('VALIDATION', 'gbMonths must be greater than 0', { field: 'gbMonths' });
      const micro = fromGbMonths(gbMonths);
      return meta.transaction(async (tx) => {
        const to = await tx.keyByPublicId(toPublicId);
        if (!to || to.revokedAt !== null) throw new AppError('APIKEY_NOT_FOUND', `No API key with publicId ${toPublicId}.`);
        if (to.id === from.id) throw new AppError('VALIDATION', 'Cannot transfer GB-months to the same key', { field: 'publicId' });
        // crediting an unlimited balance is a no-op: the sender would be debited for nothing
        if (to.balanceMicro === null) throw new AppError('UNLIMITED_RECEIVER', undefined, { field: 'publicId' });
        if (to.balanceMicro + micro > Number.MAX_SAFE_INTEGER)
          throw new AppError('VALIDATION', 'The receiving key cannot hold that many GB-months', { field: 'gbMonths' });
        await chargeKey(tx, (await tx.keyById(from.id))!, micro);
        await tx.creditKey(to.id, micro);
        return { from: (await tx.keyById(from.id))!, to: (await tx.keyById(to.id))! };
      });
    },

    /** Sets a key's balance (operator CLI); `null` makes it unlimited. Throws APIKEY_NOT_FOUND. */
    async setBalance(publicId: string, gbMonths: number | null): Promise<ApiKey> {
      const key = await meta.keyByPublicId(publicId);
      if (!key) throw new AppError('APIKEY_NOT_FOUND', `No API key with publicId ${publicId}.`);
      await meta.setKeyBalance(key.id, gbMonths === null ? null : fromGbMonths(gbMonths));
      return (await meta.keyById(key.id))!;
    },

    /** Revokes a key by publicId; returns false when there was no active key. */
    revoke(publicId: string): Promise<boolean> {
      return meta.revokeKey(publicId, clock.now());
    },
  };
  return service;
}

/** The service built by {@link createApiKeyService}. */
export type ApiKeyService = ReturnType<typeof createApiKeyService>;

/**
 * Debits `micro` from `key` through `ops` (a transaction's, usually): throws INSUFFICIENT_GB_MONTHS when the balance
 * does not cover it (the conditional debit decides, so concurrent debits never overdraw); no-op for unlimited keys.
 */
export async function chargeKey(ops: MetadataOps, key: ApiKey, micro: number): Promise<void> {
  if (micro <= 0 || key.balanceMicro === null) return;
  if (!(await ops.debitKey(key.id, micro))) {
    const available = (await ops.keyById(key.id))?.balanceMicro ?? 0;
    throw new AppError('INSUFFICIENT_GB_MONTHS', `Not enough GB-months: needed ${toGbMonths(micro)}, available ${toGbMonths(available)}.`, {
      needed: toGbMonths(micro),
      available: toGbMonths(available),
    });
  }
}
