import type { Repositories, ResourceType } from '../db/repositories.js';
import type { ApiKeyService } from './api-keys.js';
import type { CoreDeps } from './deps.js';
import { AppError } from './errors.js';
import { ANYONE, type Principal, dropzonePermissions, filePermissions, invisible, requirePermission, validatePermissionNames } from './permissions.js';

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
export function createGrantService(deps: Pick<CoreDeps, 'repo' | 'clock'>, keys: Pick<ApiKeyService, 'authenticate'>) {
  const { repo, clock } = deps;

  /** The resource, the caller's effective permissions on it, and the names of its `own`/`grant` permissions. */
  const load = (type: ResourceType, p: Principal, ref: string) => {
    if (type === 'dropzone') {
      const dz = repo.dropzoneByRef(ref);
      if (!dz) throw invisible(p, new AppError('DROPZONE_NOT_FOUND'));
      return { id: dz.id, held: dropzonePermissions(repo, p, dz) as Set<string>, own: 'dropzone.own', grant: 'dropzone.grant', notFound: new AppError('DROPZONE_NOT_FOUND') };
    }
    const file = repo.fileById(ref);
    const dz = file && repo.dropzoneById(file.dropzone_id);
    if (!file || !dz) throw invisible(p, new AppError('FILE_NOT_FOUND'));
    return { id: file.id, held: filePermissions(repo, p, file, dz) as Set<string>, own: 'file.own', grant: 'file.grant', notFound: new AppError('FILE_NOT_FOUND') };
  };

  /** `anyone`, a publicId, or (SDK 0.3) a key secret → the grantee's publicId. */
  const resolveGrantee = (ref: { publicId?: string; apiKey?: string }) => {
    const given = (ref.publicId ?? ref.apiKey)!;
    if (given === ANYONE) return ANYONE;
    const key = repo.keyByPublicId(given) ?? keys.authenticate(given);
    if (!key || key.revoked_at !== null) throw new AppError('APIKEY_NOT_FOUND', `No API key with publicId "${ref.publicId ?? '(given apiKey)'}".`, { field: 'publicId' });
    return key.public_id;
  };

  return {
    /**
     * The caller's own effective permissions (`data`), plus every grant for callers with an API key holding `*.grant`;
     * with `publicId`, that grantee's permissions instead (needs an API key and `*.grant`).
     */
    list(type: ResourceType, p: Principal, ref: string, publicId?: string): GrantAnswer {
      const r = load(type, p, ref);
      if (r.held.size === 0) throw invisible(p, r.notFound);
      const maySeeGrants = p.key !== undefined && r.held.has(r.grant);
      if (publicId !== undefined) {
        if (!p.key) throw new AppError('UNAUTHENTICATED', 'Looking up the permissions of a grantee needs an API key.');
        requirePermission(p, r.held, r.grant, r.notFound);
        return { data: grantsOf(repo, type, r.id, resolveGrantee({ publicId })), grants: grantList(repo, type, r.id) };
      }
      return { data: [...r.held].sort(), ...(maySeeGrants ? { grants: grantList(repo, type, r.id) } : {}) };
    },

    /** Grants (`grant`) or revokes (`revoke`) `permissions` to or from the grantee, atomically; answers as {@link list} for that grantee. */
    change(mode: 'grant' | 'revoke', type: ResourceType, p: Principal, ref: string, body: { publicId?: string; apiKey?: string; permissions: string[] }): Required<GrantAnswer> {
      validatePermissionNames(type, body.permissions);
      if (!p.key) throw new AppError('UNAUTHENTICATED', 'Granting and revoking permissions needs an API key.');
      const r = load(type, p, ref);
      requirePermission(p, r.held, r.grant, r.notFound);
      for (const name of body.permissions) {
        if (name === r.own && !r.held.has(r.own)) throw new AppError('FORBIDDEN', `Only an owner can ${mode} ${r.own}.`, { permission: r.own });
        if (!r.held.has(name)) throw new AppError('FORBIDDEN', `Cannot ${mode} ${name}: you do not hold it.`, { permission: name });
      }
      const grantee = resolveGrantee(body);
      repo.db.transaction(() => {
        for (const name of body.permissions) {
          if (mode === 'grant') repo.insertGrant(type, r.id, grantee, name, clock.now());
          else repo.deleteGrant(type, r.id, grantee, name);
        }
      })();
      return { data: grantsOf(repo, type, r.id, grantee), grants: grantList(repo, type, r.id) };
    },
  };
}

/** The service built by {@link createGrantService}. */
export type GrantService = ReturnType<typeof createGrantService>;

function grantList(repo: Repositories, type: ResourceType, id: string): GrantList {
  const by = new Map<string, string[]>();
  for (const g of repo.grantsOn(type, id)) by.set(g.principal, [...(by.get(g.principal) ?? []), g.permission]);
  return [...by].map(([publicId, permissions]) => ({ publicId, permissions }));
}

function grantsOf(repo: Repositories, type: ResourceType, id: string, principal: string): string[] {
  return repo.grantsOn(type, id).filter((g) => g.principal === principal).map((g) => g.permission);
}
