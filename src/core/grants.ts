import type { ApiKeyService } from './api-keys.js';
import { recordEvent } from './events.js';
import type { CoreDeps } from './deps.js';
import { AppError } from './errors.js';
import { ANYONE, type Principal, dropzonePermissions, filePermissions, invisible, requirePermission, validatePermissionNames } from './permissions.js';
import { readPage } from './paging.js';
import type { GrantCursor, MetadataOps, ResourceType } from './ports/metadata-store.js';

/** Every grant on one resource, grouped by grantee. */
export type GrantList = { publicId: string; permissions: string[] }[];

/** What a permissions request answers: `data` (permissions) and, for callers allowed to see them, every grant. */
export interface GrantAnswer {
  data: string[];
  grants?: GrantList;
}

/**
 * Granting and revoking permissions on dropzones and files. The rules:
 * - changing grants needs an API key (never anonymous, even where `anyone` holds `*.grant`) holding `*.grant`;
 * - only owners grant or revoke `*.own`; everybody else grants and revokes only permissions it holds itself;
 * - the list of grantees is shown only to callers with an API key that hold `*.grant`;
 * - grants are stored against the resource's `_id`, whichever id (`_id` or shareId) the request named it by.
 */
export function createGrantService(deps: Pick<CoreDeps, 'meta' | 'clock' | 'config' | 'onEventsCommitted'>, keys: Pick<ApiKeyService, 'authenticate'>) {
  const { meta, clock } = deps;
  const dropzoneNotFound = () => new AppError('DROPZONE_NOT_FOUND');
  const fileNotFound = () => new AppError('FILE_NOT_FOUND');

  /** The resource, the caller's effective permissions on it, and the names of its `own`/`grant` permissions. */
  const load = async (ops: MetadataOps, type: ResourceType, p: Principal, ref: string) => {
    if (type === 'dropzone') {
      const dz = await ops.dropzoneByRef(ref);
      if (!dz) throw invisible(p, dropzoneNotFound());
      return { id: dz.id, dz, file: null, held: (await dropzonePermissions(ops, p, dz)) as ReadonlySet<string>, own: 'dropzone.own', grant: 'dropzone.grant', notFound: dropzoneNotFound };
    }
    const file = await ops.fileById(ref);
    const dz = file && (await ops.dropzoneById(file.dropzoneId));
    if (!file || !dz) throw invisible(p, fileNotFound());
    return { id: file.id, dz, file, held: (await filePermissions(ops, p, file, dz)) as ReadonlySet<string>, own: 'file.own', grant: 'file.grant', notFound: fileNotFound };
  };

  /** `anyone`, a publicId, or (SDK 0.3) a key secret → the grantee's publicId. */
  const resolveGrantee = async (ops: MetadataOps, ref: { publicId?: string; apiKey?: string }) => {
    const given = (ref.publicId ?? ref.apiKey)!;
    if (given === ANYONE) return ANYONE;
    const key = (await ops.keyByPublicId(given)) ?? (await keys.authenticate(given));
    if (!key || key.revokedAt !== null) throw new AppError('APIKEY_NOT_FOUND', `No API key with publicId "${ref.publicId ?? '(given apiKey)'}".`, { field: 'publicId' });
    return key.publicId;
  };

  return {
    /**
     * The caller's own effective permissions (`data`), plus every grant for callers with an API key holding `*.grant`;
     * with `publicId`, that grantee's permissions instead (needs an API key and `*.grant`).
     */
    async list(type: ResourceType, p: Principal, ref: string, publicId?: string): Promise<GrantAnswer> {
      const r = await load(meta, type, p, ref);
      if (r.held.size === 0) throw invisible(p, r.notFound());
      const maySeeGrants = p.key !== undefined && r.held.has(r.grant);
      if (publicId !== undefined) {
        if (!p.key) throw new AppError('UNAUTHENTICATED', 'Looking up the permissions of a grantee needs an API key.');
        requirePermission(p, r.held, r.grant, r.notFound);
        const grants = await meta.grantsOn(type, r.id);
        return { data: grantsOf(grants, await resolveGrantee(meta, { publicId })), grants: grantList(grants) };
      }
      return { data: [...r.held].sort(), ...(maySeeGrants ? { grants: grantList(await meta.grantsOn(type, r.id)) } : {}) };
    },

    /**
     * {@link list} with the grants paged: `grants` holds at most `limit` grants after `after` in (principal, permission)
     * order (a grantee's permissions may continue on the next page), `next` where the next page starts when more
     * follow. `data` is complete as in {@link list}.
     */
    async listPage(type: ResourceType, p: Principal, ref: string, publicId: string | undefined, after: GrantCursor | undefined, limit: number): Promise<GrantAnswer & { next?: GrantCursor }> {
      const r = await load(meta, type, p, ref);
      if (r.held.size === 0) throw invisible(p, r.notFound());
      const maySeeGrants = p.key !== undefined && r.held.has(r.grant);
      const page = async () => {
        const pg = await readPage((a: GrantCursor | undefined, n) => meta.grantsOnAfter(type, r.id, a, n), after, limit, (g) => ({ principal: g.principal, permission: g.permission }));
        return { grants: grantList(pg.items), ...(pg.next ? { next: pg.next } : {}) };
      };
      if (publicId !== undefined) {
        if (!p.key) throw new AppError('UNAUTHENTICATED', 'Looking up the permissions of a grantee needs an API key.');
        requirePermission(p, r.held, r.grant, r.notFound);
        const grantee = await resolveGrantee(meta, { publicId });
        // the grantee's own grants: a range of the same order, bounded by the number of permission names
        const own = (await meta.grantsOnAfter(type, r.id, { principal: grantee, permission: '' }, 1000)).filter((g) => g.principal === grantee);
        return { data: own.map((g) => g.permission), ...(await page()) };
      }
      return { data: [...r.held].sort(), ...(maySeeGrants ? await page() : {}) };
    },

    /**
     * Grants (`grant`) or revokes (`revoke`) `permissions` to or from the grantee; the check and the change are one
     * transaction. Answers as {@link list} for that grantee.
     */
    async change(mode: 'grant' | 'revoke', type: ResourceType, p: Principal, ref: string, body: { publicId?: string; apiKey?: string; permissions: string[] }): Promise<Required<GrantAnswer>> {
      validatePermissionNames(type, body.permissions);
      if (!p.key) throw new AppError('UNAUTHENTICATED', 'Granting and revoking permissions needs an API key.');
      return meta.transaction(async (tx) => {
        const r = await load(tx, type, p, ref);
        requirePermission(p, r.held, r.grant, r.notFound);
        for (const name of body.permissions) {
          if (name === r.own && !r.held.has(r.own)) throw new AppError('FORBIDDEN', `Only an owner can ${mode} ${r.own}.`, { permission: r.own });
          if (!r.held.has(name)) throw new AppError('FORBIDDEN', `Cannot ${mode} ${name}: you do not hold it.`, { permission: name });
        }
        const grantee = await resolveGrantee(tx, body);
        for (const name of body.permissions) {
          if (mode === 'grant') await tx.insertGrant(type, r.id, grantee, name, clock.now());
          else await tx.deleteGrant(type, r.id, grantee, name);
        }
        await recordEvent(deps, tx, {
          type: mode === 'grant' ? 'permission.granted' : 'permission.revoked',
          dz: r.dz,
          file: r.file,
          actor: p.key,
          data: { resource: type, grantee, permissions: body.permissions },
        });
        const grants = await tx.grantsOn(type, r.id);
        return { data: grantsOf(grants, grantee), grants: grantList(grants) };
      });
    },
  };
}

/** The service built by {@link createGrantService}. */
export type GrantService = ReturnType<typeof createGrantService>;

/** Grants grouped by grantee. */
function grantList(grants: { principal: string; permission: string }[]): GrantList {
  const by = new Map<string, string[]>();
  for (const g of grants) by.set(g.principal, [...(by.get(g.principal) ?? []), g.permission]);
  return [...by].map(([publicId, permissions]) => ({ publicId, permissions }));
}

/** The permissions `principal` holds among `grants`. */
function grantsOf(grants: { principal: string; permission: string }[], principal: string): string[] {
  return grants.filter((g) => g.principal === principal).map((g) => g.permission);
}
