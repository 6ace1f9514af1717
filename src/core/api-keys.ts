import type { ApiKeyRow } from '../db/repositories.js';
import type { CoreDeps } from './deps.js';
import { createHash, timingSafeEqual } from 'node:crypto';
import { AppError } from './errors.js';
import { hashSecret, newApiKeySecret, newPublicId, randomId } from './ids.js';
import { KEY_PERMISSIONS, keyPermissions, validatePermissionNames } from './permissions.js';
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

/** API keys: admin bootstrap, authentication, creation, GB-month transfers, revocation. */
export function createApiKeyService({ repo, clock, config }: Pick<CoreDeps, 'repo' | 'clock' | 'config'>) {
  const db = repo.db;
  const configuredDigest = config.security.adminKey ? createHash('sha256').update(config.security.adminKey, 'utf8').digest() : undefined;
  /** True when `secret` is the configured admin secret (constant time). */
  const isConfiguredAdmin = (secret: string) =>
    configuredDigest !== undefined && timingSafeEqual(createHash('sha256').update(secret, 'utf8').digest(), configuredDigest);

  const insert = (name: string, secretHash: string, balanceMicro: number | null, perms: string[], isAdmin: boolean, createdBy: number | null) => {
    const row = {
      public_id: newPublicId(),
      secret_hash: secretHash,
      name,
      balance_micro: balanceMicro,
      permissions: JSON.stringify(perms),
      is_admin: isAdmin ? 1 : 0,
      created_by: createdBy,
      created_at: clock.now(),
    };
    const id = repo.insertKey(row);
    return repo.keyById(id)!;
  };

  return {
    /**
     * Makes sure an admin key exists. With `security.adminKey` configured, that secret is the admin key's secret; it is
     * checked in memory and nothing derived from it is stored. When a configured secret is dropped from the
     * configuration, a new secret is generated. Returns the admin row and, only when a secret was generated just now,
     * that secret (to print once).
     */
    ensureAdmin(): { admin: ApiKeyRow; generatedSecret?: string } {
      return db.transaction(() => {
        const configured = config.security.adminKey;
        const balance = config.security.adminGbMonths === null ? null : fromGbMonths(config.security.adminGbMonths);
        const marker = () => CONFIGURED_MARKER + randomId(24);
        let admin = repo.adminKey();
        let generatedSecret: string | undefined;
        if (admin) {
          const wasConfigured = admin.secret_hash.startsWith(CONFIGURED_MARKER);
          if (configured && !wasConfigured) repo.setKeySecret(admin.id, marker());
          if (!configured && wasConfigured) repo.setKeySecret(admin.id, hashSecret((generatedSecret = newApiKeySecret())));
          if (config.security.adminGbMonths !== null && admin.balance_micro === null) repo.setKeyBalance(admin.id, balance);
          if (config.security.adminGbMonths === null && admin.balance_micro !== null) repo.setKeyBalance(admin.id, null);
          return { admin: repo.keyById(admin.id)!, generatedSecret };
        }
        if (!configured) generatedSecret = newApiKeySecret();
        // the database keeps one active admin: when another process bootstrapped one meanwhile, that one stands
        const id = repo.insertAdminKey({
          public_id: newPublicId(),
          secret_hash: generatedSecret ? hashSecret(generatedSecret) : marker(),
          name: 'admin',
          balance_micro: balance,
          permissions: JSON.stringify([...KEY_PERMISSIONS]),
          created_by: null,
          created_at: clock.now(),
        });
        if (id === undefined) return { admin: repo.adminKey()! };
        return { admin: repo.keyById(id)!, generatedSecret };
      })();
    },

    /** The active key with this secret (the configured admin secret included), or undefined. */
    authenticate(secret: string): ApiKeyRow | undefined {
      if (!secret) return undefined;
      if (isConfiguredAdmin(secret)) return repo.adminKey();
      return repo.keyByHash(hashSecret(secret));
    },

    /**
     * Creates a key on behalf of `creator` (needs `apikey.create`, else FORBIDDEN). Permissions cannot exceed the creator's.
     * `gbMonths` moves from the creator's balance atomically (INSUFFICIENT_GB_MONTHS when short). Returns the row and the secret (shown once).
     */
    create(creator: ApiKeyRow | undefined, input: CreateKeyInput): { row: ApiKeyRow; secret: string } {
      const perms = [...new Set(input.permissions ?? [])];
      validatePermissionNames('apikey', perms);
      const creatorPerms = creator ? keyPermissions(creator) : new Set(KEY_PERMISSIONS);
      if (creator && !creatorPerms.has('apikey.create')) throw new AppError('FORBIDDEN', 'Missing permission apikey.create.', { permission: 'apikey.create' });
      for (const p of perms) if (!creatorPerms.has(p)) throw new AppError('FORBIDDEN', `Cannot grant ${p}: the creating key does not hold it.`, { permission: p });
      const micro = fromGbMonths(input.gbMonths ?? 0);
      const secret = newApiKeySecret();
      const row = db.transaction(() => {
        if (creator && micro > 0) chargeKey({ repo }, repo.keyById(creator.id)!, micro);
        return insert(input.name ?? '', hashSecret(secret), micro, perms, false, creator?.id ?? null);
      })();
      return { row, secret };
    },

    /** Moves `gbMonths` from `from` to the key `toPublicId` atomically; never leaves a negative balance. */
    transfer(from: ApiKeyRow, toPublicId: string, gbMonths: number): { from: ApiKeyRow; to: ApiKeyRow } {
      if (!keyPermissions(from).has('apikey.create')) throw new AppError('FORBIDDEN', 'Missing permission apikey.create.', { permission: 'apikey.create' });
      if (!(gbMonths > 0)) throw new AppError('VALIDATION', 'gbMonths must be greater than 0', { field: 'gbMonths' });
      const micro = fromGbMonths(gbMonths);
      return db.transaction(() => {
        const to = repo.keyByPublicId(toPublicId);
        if (!to || to.revoked_at !== null) throw new AppError('APIKEY_NOT_FOUND', `No API key with publicId ${toPublicId}.`);
        if (to.id === from.id) throw new AppError('VALIDATION', 'Cannot transfer GB-months to the same key', { field: 'publicId' });
        // crediting an unlimited balance is a no-op: the sender would be debited for nothing
        if (to.balance_micro === null) throw new AppError('UNLIMITED_RECEIVER', undefined, { field: 'publicId' });
        if (to.balance_micro !== null && to.balance_micro + micro > Number.MAX_SAFE_INTEGER)
          throw new AppError('VALIDATION', 'The receiving key cannot hold that many GB-months', { field: 'gbMonths' });
        chargeKey({ repo }, repo.keyById(from.id)!, micro);
        repo.creditKey(to.id, micro);
        return { from: repo.keyById(from.id)!, to: repo.keyById(to.id)! };
      })();
    },

    /** Sets a key's balance (operator CLI); `null` makes it unlimited. Throws APIKEY_NOT_FOUND. */
    setBalance(publicId: string, gbMonths: number | null): ApiKeyRow {
      const key = repo.keyByPublicId(publicId);
      if (!key) throw new AppError('APIKEY_NOT_FOUND', `No API key with publicId ${publicId}.`);
      repo.setKeyBalance(key.id, gbMonths === null ? null : fromGbMonths(gbMonths));
      return repo.keyById(key.id)!;
    },

    /** Revokes a key by publicId; returns false when there was no active key. */
    revoke(publicId: string): boolean {
      return repo.revokeKey(publicId, clock.now());
    },
  };
}

/** The service built by {@link createApiKeyService}. */
export type ApiKeyService = ReturnType<typeof createApiKeyService>;

/** Debit helper shared with dropzone charging: throws INSUFFICIENT_GB_MONTHS; no-op for unlimited keys. */
export function chargeKey(deps: Pick<CoreDeps, 'repo'>, key: ApiKeyRow, micro: number): void {
  const { repo } = deps;
  if (micro <= 0 || key.balance_micro === null) return;
  if (!repo.debitKey(key.id, micro)) {
    const available = repo.keyById(key.id)?.balance_micro ?? 0;
    throw new AppError('INSUFFICIENT_GB_MONTHS', `Not enough GB-months: needed ${toGbMonths(micro)}, available ${toGbMonths(available)}.`, {
      needed: toGbMonths(micro),
      available: toGbMonths(available),
    });
  }
}
