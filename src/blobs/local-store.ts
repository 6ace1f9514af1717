/**
 * A {@link BlobStore} on the local filesystem. Objects live at `<root>/<key>`; uploads are streamed into
 * `<root>/.tmp/` and renamed into place (or, write-once, hard-linked into place only if the key is free), so an
 * object is either absent, the old version, or complete.
 * The MD5 ETag is kept in `<root>/.meta/<key>.json` together with the inode it belongs to; when the sidecar
 * is missing or stale the ETag is recomputed from the bytes.
 *
 * Clients upload with presigned PUT URLs to `<baseUrl>/_blobs/<key>` (SigV4 query signing, as S3), which
 * the HTTP layer checks with {@link LocalBlobStore.verifyPresignedPut} before calling {@link BlobStore.put}.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { markFileBody } from './file-body.js';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import type { Clock } from '../core/clock.js';
import {
  assertCompletionList,
  assertPartNumber,
  bareEtag,
  BlobExistsError,
  BlobNotFoundError,
  BlobSizeError,
  MULTIPART_MAX_PART_SIZE,
  MULTIPART_MIN_PART_SIZE,
  MultipartError,
  type CompletedPartRef,
  type MultipartBlobs,
  type MultipartRequest,
  type PresignedPart,
  type StaleUpload,
  type UploadedPart,
  type PutOptions,
  type BlobListEntry,
  type BlobStat,
  type BlobStore,
  type ByteRange,
  type PresignedRequest,
  type PresignGetInput,
  type PresignPutInput,
} from './blob-store.js';
import { type FlushEvent, finalFsync, writeDurably } from './durable-writer.js';
import { presignUrl, verifyPresignedRequest } from './sigv4.js';

/** URL path segment under the base URL where presigned uploads go: `<baseUrl>/_blobs/<key>`. */
export const LOCAL_BLOB_URL_PREFIX = '/_blobs/';

const TMP_DIR = '.tmp';
const META_DIR = '.meta';
/** Unfinished multipart uploads: `<root>/.mpu/<uploadId>/upload.json` plus one file per part. */
const MPU_DIR = '.mpu';
const UPLOAD_FILE = 'upload.json';
/** A stored part's file name: `<partNumber>-<size>-<md5 hex>`, so listing the parts needs no stat or sidecar. */
const PART_FILE = /^(\d{1,5})-(\d{1,16})-([0-9a-f]{32})$/;
/** Upload ids this store hands out: 24 random bytes, base64url. */
const UPLOAD_ID_PATTERN = /^[A-Za-z0-9_-]{32}$/;
const KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9/_.-]*$/;
const DEFAULT_ACCESS_KEY_ID = 'dropzone-local';
const DEFAULT_REGION = 'local';
/** Objects, sidecars and temp files are owner-only whatever the umask (umask only removes bits). */
const FILE_MODE = 0o600;
const DIR_MODE = 0o700;
/** Bytes per read when an object is streamed out: large reads are far cheaper per byte; one such buffer per download. */
const READ_CHUNK = 1024 * 1024;

/** Options of {@link createLocalBlobStore}. */
export interface LocalBlobStoreOptions {
  /** Directory holding the objects (created on first use). `.tmp` and `.meta` inside it are reserved. */
  root: string;
  /** HMAC secret for presigned URLs; keep it private and stable across restarts (URLs die with it). */
  secret: string;
  /** Public origin (plus optional path prefix) clients reach this server at, e.g. `https://dz.example.com`. */
  baseUrl: () => string;
  /** Time source for URL signing/expiry, object mtimes and temp-file cleanup. */
  clock: Clock;
  /** Access key id put in the URLs' credential scope (default `dropzone-local`). */
  accessKeyId?: string;
  /** Region put in the URLs' credential scope (default `local`). */
  region?: string;
  /** An upload's temp file is flushed to disk in the background each time this many bytes were written (default 32 MiB). */
  flushEveryBytes?: number;
  /** Observes the durable flushes of uploads (tests). */
  onFlush?: (event: FlushEvent) => void;
}

/** What the HTTP layer hands to {@link LocalBlobStore.verifyPresignedPut} about an incoming request. */
export interface PresignedPutRequest {
  /** The HTTP method. */
  method: string;
  /** The URL path without query, raw or percent-decoded (both work for valid keys). */
  path: string;
  /** The query parameters. */
  query: URLSearchParams;
  /** Header lookup, case-insensitive; undefined when absent. For `host`, return the host the client used. */
  header(name: string): string | undefined;
}

/** Outcome of {@link LocalBlobStore.verifyPresignedPut}; on failure `code` is the S3 error code to answer with. */
export type PresignedPutVerdict =
  | { ok: true; key: string; size: number; contentType?: string }
  | { ok: false; status: 400 | 403; code: string; message: string };

/** Which multipart request a verified presigned URL was signed for (see {@link LocalBlobStore.verifyPresignedMultipart}). */
export type MultipartOperation =
  | { op: 'create'; contentType?: string }
  | { op: 'part'; uploadId: string; partNumber: number; size?: number }
  | { op: 'list'; uploadId: string }
  | { op: 'complete'; uploadId: string }
  | { op: 'abort'; uploadId: string };

/** Outcome of {@link LocalBlobStore.verifyPresignedMultipart}; on failure `code` is the S3 error code to answer with. */
export type PresignedMultipartVerdict =
  | ({ ok: true; key: string } & MultipartOperation)
  | { ok: false; status: 400 | 403 | 404; code: string; message: string };

/** The local filesystem store, plus what its HTTP upload endpoint needs. */
export interface LocalBlobStore extends BlobStore {
  readonly kind: 'local';
  readonly servesSignedUrls: true;
  readonly multipart: MultipartBlobs;
  /**
   * Checks a request made with a URL from `multipart.presignParts` or `multipart.presignRequest` (a request whose
   * query names `uploads` or `uploadId`, see {@link isMultipartQuery}): valid SigV4 signature over method, path, query
   * (so the upload id and part number too) and signed headers, not expired, key and upload id well-formed, part number
   * in 1…10,000. The operation follows from the signed method and query. Never throws.
   */
  verifyPresignedMultipart(req: PresignedPutRequest): PresignedMultipartVerdict;
  /**
   * Streams one part of upload `uploadId` of `key` to disk: exactly `size` bytes (else {@link BlobSizeError}), at most
   * {@link MULTIPART_MAX_PART_SIZE} (`EntityTooLarge`); placed only once complete and synced, replacing an earlier
   * part with the same number. Throws `NoSuchUpload` when the upload is unknown or finished meanwhile.
   */
  uploadPart(key: string, uploadId: string, partNumber: number, body: Readable, size: number): Promise<UploadedPart>;
  /**
   * Bytes of the parts of `uploadId` stored so far, leaving out part `exceptPart` (which a PUT is about to replace): what
   * bounds a new part so the parts together never exceed the reserved size. Kept in memory per upload after one
   * listing, so a part request costs no directory scan; parts placed by another process sharing the directory are
   * counted once this process lists the upload again (completion checks the exact total anyway). NoSuchUpload when
   * the upload does not exist.
   */
  storedPartBytes(key: string, uploadId: string, exceptPart: number): Promise<number>;
  /**
   * Checks a request against a URL from {@link BlobStore.presignPut}: valid SigV4 signature over method,
   * path, query, `host`, `content-length` and (when signed) `content-type`; not expired; method PUT; key
   * valid. On success returns the key, the signed size (the request's Content-Length equals it) and the
   * signed content type. The HTTP layer must then stream the body with `put(key, body, {expectedSize: size})`.
   * Never throws.
   */
  verifyPresignedPut(req: PresignedPutRequest): PresignedPutVerdict;
  /** Same as the module-level {@link s3ErrorXml}. */
  s3ErrorXml(code: string, message: string, resource: string, requestId: string): string;
  /**
   * Removes entries of `<root>/.tmp` (files, directories, symlinks — never following links) whose mtime
   * is more than `olderThanMs` before the clock's now, skipping uploads in progress in this process.
   * Resolves to the number of entries removed.
   */
  cleanupTemp(olderThanMs: number): Promise<number>;
}

/** True when a `/_blobs` request's query makes it a multipart request (`uploads` or `uploadId` present). */
export function isMultipartQuery(query: URLSearchParams): boolean {
  return query.has('uploads') || query.has('uploadId');
}

/** Thrown for a key that does not satisfy the key rules (see {@link assertValidKey}). */
export class InvalidBlobKeyError extends Error {
  override name = 'InvalidBlobKeyError';
  constructor(readonly key: string) {
    super(`invalid blob key ${JSON.stringify(key)}`);
  }
}

/**
 * True when `key` is a valid blob key: matches `^[A-Za-z0-9][A-Za-z0-9/_.-]*$`, has no empty, `.` or `..`
 * segment (so no `//` and no trailing `/`), and is at most 1024 characters.
 */
export function isValidBlobKey(key: string): boolean {
  if (typeof key !== 'string' || key.length > 1024 || !KEY_PATTERN.test(key)) return false;
  return key.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

/** Throws {@link InvalidBlobKeyError} unless {@link isValidBlobKey}. */
export function assertValidKey(key: string): void {
  if (!isValidBlobKey(key)) throw new InvalidBlobKeyError(key);
}

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

function xmlText(value: string): string {
  // Characters XML 1.0 cannot carry at all become U+FFFD; markup characters are escaped.
  return value
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '\uFFFD')
    .replace(/[&<>"']/g, (c) => XML_ESCAPES[c]);
}

/**
 * An S3-style error document:
 * `<?xml version="1.0" encoding="UTF-8"?><Error><Code/><Message/><Resource/><RequestId/></Error>`,
 * every value XML-escaped. Serve it with `Content-Type: application/xml`.
 */
export function s3ErrorXml(code: string, message: string, resource: string, requestId: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${xmlText(code)}</Code><Message>${xmlText(message)}</Message>` +
    `<Resource>${xmlText(resource)}</Resource><RequestId>${xmlText(requestId)}</RequestId></Error>`
  );
}

interface MetaFile {
  v: 1;
  etag: string;
  size: number;
  /** Inode of the blob file the etag belongs to, as a decimal string. */
  ino: string;
  /** mtime in ns as a string: with the inode it tells a replaced file (inode numbers get reused) from ours. */
  mtimeNs?: string;
}

function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * Creates a filesystem blob store rooted at `opts.root`. Nothing is touched on disk until first use;
 * call `check()` at startup to fail fast on an unwritable root.
 */
export function createLocalBlobStore(opts: LocalBlobStoreOptions): LocalBlobStore {
  const root = path.resolve(opts.root);
  const tmpDir = path.join(root, TMP_DIR);
  const metaDir = path.join(root, META_DIR);
  const accessKeyId = opts.accessKeyId ?? DEFAULT_ACCESS_KEY_ID;
  const region = opts.region ?? DEFAULT_REGION;
  const { clock, secret } = opts;
  const flushEveryBytes = opts.flushEveryBytes ?? 32 * 1024 * 1024;
  if (!secret) throw new Error('local blob store needs a non-empty secret');
  /** Temp file names of uploads running in this store, protected from cleanupTemp. */
  const active = new Set<string>();

  const blobPath = (key: string) => path.join(root, ...key.split('/'));
  const metaPath = (key: string) => path.join(metaDir, ...key.split('/')) + '.json';
  const tmpName = () => `${clock.now()}-${randomBytes(12).toString('hex')}`;

  async function readMeta(key: string): Promise<MetaFile | null> {
    try {
      const parsed = JSON.parse(await fsp.readFile(metaPath(key), 'utf8')) as Partial<MetaFile>;
      if (parsed.v === 1 && typeof parsed.etag === 'string' && typeof parsed.ino === 'string' && typeof parsed.size === 'number') {
        return parsed as MetaFile;
      }
    } catch {
      // Missing or unreadable sidecar: the caller recomputes.
    }
    return null;
  }

  async function md5OfHandle(handle: fsp.FileHandle, size: number): Promise<string> {
    const hash = createHash('md5');
    const buf = Buffer.allocUnsafe(Math.min(Math.max(size, 1), 1 << 20));
    let pos = 0;
    while (pos < size) {
      const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, size - pos), pos);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    return `"${hash.digest('hex')}"`;
  }

  /** The stat of the open file `handle` (which is `key`), etag from the sidecar when it matches the inode. */
  async function statOfHandle(key: string, handle: fsp.FileHandle): Promise<BlobStat> {
    const st = await handle.stat({ bigint: true });
    const size = Number(st.size);
    const meta = await readMeta(key);
    const fresh = meta && meta.ino === st.ino.toString() && meta.size === size && meta.mtimeNs === st.mtimeNs.toString();
    const etag = fresh ? meta.etag : await md5OfHandle(handle, size);
    return { size, etag, lastModified: new Date(Number(st.mtimeMs)) };
  }

  async function openBlob(key: string): Promise<fsp.FileHandle | null> {
    try {
      const handle = await fsp.open(blobPath(key), 'r');
      const st = await handle.stat();
      if (!st.isFile()) {
        await handle.close();
        return null;
      }
      return handle;
    } catch (err) {
      if (isNotFound(err) || (err as NodeJS.ErrnoException).code === 'EISDIR') return null;
      throw err;
    }
  }

  async function fsyncDir(dir: string): Promise<void> {
    try {
      const h = await fsp.open(dir, 'r');
      try {
        await h.sync();
      } finally {
        await h.close();
      }
    } catch {
      // Best effort: some platforms/filesystems cannot fsync directories.
    }
  }

  /** Renames `from` to `to`, creating `to`'s parent; retries when a concurrent delete pruned the parent. */
  async function renameInto(from: string, to: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      await fsp.mkdir(path.dirname(to), { recursive: true, mode: DIR_MODE });
      try {
        await fsp.rename(from, to);
        return;
      } catch (err) {
        if (attempt < 5 && (err as NodeJS.ErrnoException).code === 'ENOENT') {
          // Only retry when the source still exists (the parent vanished under us).
          try {
            await fsp.access(from);
            continue;
          } catch {
            // fall through
          }
        }
        throw err;
      }
    }
  }

  /**
   * Hard-links `from` at `to` (creating `to`'s parent), never replacing: an existing `to` throws {@link BlobExistsError}
   * for `key`. The check and the placement are one system call, so of racing puts exactly one wins.
   */
  async function linkInto(from: string, to: string, key: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      await fsp.mkdir(path.dirname(to), { recursive: true, mode: DIR_MODE });
      try {
        await fsp.link(from, to);
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') throw new BlobExistsError(key);
        // a concurrent delete pruned the parent between mkdir and link
        if (attempt < 5 && code === 'ENOENT') continue;
        throw err;
      }
    }
  }

  /** Removes now-empty directories from `dir` up to (excluding) `stop`. */
  async function pruneEmptyDirs(dir: string, stop: string): Promise<void> {
    let current = dir;
    while (current !== stop && current.startsWith(stop + path.sep)) {
      try {
        await fsp.rmdir(current);
      } catch {
        return;
      }
      current = path.dirname(current);
    }
  }

  async function put(key: string, body: Readable, putOpts?: PutOptions): Promise<BlobStat> {
    assertValidKey(key);
    const expected = putOpts?.expectedSize;
    if (expected !== undefined && (!Number.isSafeInteger(expected) || expected < 0)) {
      body.destroy();
      throw new RangeError('expectedSize must be a non-negative integer');
    }
    await fsp.mkdir(tmpDir, { recursive: true, mode: DIR_MODE });
    const name = tmpName();
    const tmpPath = path.join(tmpDir, name + '.part');
    const metaTmpPath = path.join(tmpDir, name + '.meta');
    active.add(name);
    let handle: fsp.FileHandle | undefined;
    let placedMeta: MetaFile | undefined;
    try {
      handle = await fsp.open(tmpPath, 'wx', FILE_MODE);
      // gathered into large writes while more arrives, hashed off the event loop, flushed to disk in the background
      const { size: received, md5 } = await writeDurably(handle, body as AsyncIterable<Buffer | string>, {
        expectedSize: expected,
        flushEveryBytes,
        onFlush: opts.onFlush,
      });
      const etag = `"${md5}"`;
      const mtime = new Date(clock.now());
      await handle.utimes(mtime, mtime);
      await finalFsync(handle, received, opts.onFlush);
      const st = await handle.stat({ bigint: true });
      await handle.close();
      handle = undefined;

      const meta: MetaFile = { v: 1, etag, size: received, ino: st.ino.toString(), mtimeNs: st.mtimeNs.toString() };
      if (putOpts?.ifAbsent) {
        // Write-once: the blob goes in first (or not at all); the sidecar follows. Until it is there, or if writing
        // it fails, the ETag is recomputed from the bytes, so a loser of the race never touches the winner's sidecar.
        const finalPath = blobPath(key);
        await linkInto(tmpPath, finalPath, key);
        await fsyncDir(path.dirname(finalPath));
        try {
          await fsp.writeFile(metaTmpPath, JSON.stringify(meta), { flag: 'wx', mode: FILE_MODE });
          await renameInto(metaTmpPath, metaPath(key));
        } catch {
          // best effort, see above
        }
        return { size: received, etag, lastModified: new Date(Number(st.mtimeMs)) };
      }
      await fsp.writeFile(metaTmpPath, JSON.stringify(meta), { flag: 'wx', mode: FILE_MODE });
      await renameInto(metaTmpPath, metaPath(key));
      placedMeta = meta;
      const finalPath = blobPath(key);
      await renameInto(tmpPath, finalPath);
      placedMeta = undefined;
      await fsyncDir(path.dirname(finalPath));
      return { size: received, etag, lastModified: new Date(Number(st.mtimeMs)) };
    } catch (err) {
      if (!body.destroyed) body.destroy();
      if (placedMeta) {
        // The sidecar went in but the blob did not: drop it unless someone else replaced it meanwhile.
        const current = await readMeta(key);
        if (current?.ino === placedMeta.ino) await fsp.rm(metaPath(key), { force: true }).catch(() => {});
      }
      throw err;
    } finally {
      if (handle) await handle.close().catch(() => {});
      await fsp.rm(tmpPath, { force: true }).catch(() => {});
      await fsp.rm(metaTmpPath, { force: true }).catch(() => {});
      active.delete(name);
    }
  }

  async function get(key: string, range?: ByteRange): Promise<{ stream: Readable; stat: BlobStat }> {
    assertValidKey(key);
    const handle = await openBlob(key);
    if (!handle) throw new BlobNotFoundError(key);
    try {
      const stat = await statOfHandle(key, handle);
      if (range) {
        const { start, end } = range;
        if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end >= stat.size) {
          throw new RangeError(`range ${start}-${end} is not within the object's ${stat.size} bytes`);
        }
      }
      // Reading through the already-open handle pins this version even if the key is overwritten meanwhile.
      const stream = createReadStream('', { fd: handle, start: range?.start, end: range?.end, autoClose: true, highWaterMark: READ_CHUNK });
      // a sender may copy the range itself with reused buffers (see file-body.ts); reading the stream works as usual
      markFileBody(stream, { handle, start: range?.start ?? 0, end: range?.end ?? stat.size - 1 });
      return { stream, stat };
    } catch (err) {
      await handle.close().catch(() => {});
      throw err;
    }
  }

  async function stat(key: string): Promise<BlobStat | null> {
    assertValidKey(key);
    const handle = await openBlob(key);
    if (!handle) return null;
    try {
      return await statOfHandle(key, handle);
    } finally {
      await handle.close();
    }
  }

  async function del(key: string): Promise<void> {
    assertValidKey(key);
    const file = blobPath(key);
    await fsp.rm(file, { force: true });
    await fsp.rm(metaPath(key), { force: true });
    await pruneEmptyDirs(path.dirname(file), root);
    await pruneEmptyDirs(path.dirname(metaPath(key)), metaDir);
  }

  async function* list(prefix = ''): AsyncIterable<BlobListEntry> {
    // Start below the deepest directory the prefix names, when that directory part is itself key-shaped.
    const slash = prefix.lastIndexOf('/');
    const dirPart = slash >= 0 ? prefix.slice(0, slash) : '';
    const startRel = dirPart !== '' && isValidBlobKey(dirPart) ? dirPart : '';
    yield* walk(startRel);

    async function* walk(rel: string): AsyncIterable<BlobListEntry> {
      const dir = rel === '' ? root : blobPath(rel);
      let entries: import('node:fs').Dirent[];
      try {
        entries = await fsp.readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (isNotFound(err)) return;
        throw err;
      }
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const entry of entries) {
        if (rel === '' && (entry.name === TMP_DIR || entry.name === META_DIR)) continue;
        const key = rel === '' ? entry.name : `${rel}/${entry.name}`;
        if (!isValidBlobKey(key)) continue;
        if (entry.isDirectory()) {
          // Only descend where keys under this directory could still match the prefix.
          const dirKey = key + '/';
          if (dirKey.startsWith(prefix) || prefix.startsWith(dirKey)) yield* walk(key);
        } else if (entry.isFile() && key.startsWith(prefix)) {
          let st: Stats;
          try {
            st = await fsp.lstat(path.join(dir, entry.name));
          } catch (err) {
            if (isNotFound(err)) continue;
            throw err;
          }
          yield { key, size: st.size, lastModified: new Date(st.mtimeMs) };
        }
      }
    }
  }

  async function presignPut(input: PresignPutInput): Promise<PresignedRequest> {
    assertValidKey(input.key);
    if (!Number.isSafeInteger(input.size) || input.size < 0) throw new RangeError('size must be a non-negative integer');
    const headers: Record<string, string> = { 'Content-Length': String(input.size) };
    if (input.contentType !== undefined) headers['Content-Type'] = input.contentType;
    const signed = presignUrl({
      method: 'PUT',
      baseUrl: opts.baseUrl(),
      path: LOCAL_BLOB_URL_PREFIX + input.key,
      headers,
      accessKeyId,
      secret,
      region,
      now: clock.now(),
      expiresIn: input.expiresInSeconds,
    });
    return { method: 'PUT', url: signed.url, headers, expiresAt: signed.expiresAt };
  }

  type Refusal = { ok: false; status: 400 | 403; code: string; message: string };

  /** The key and signed header values of a request with a valid, unexpired signature for its method, path and query. */
  function verifySigned(req: PresignedPutRequest): { ok: true; key: string; signedHeaders: Record<string, string> } | Refusal {
    const basePath = new URL(opts.baseUrl()).pathname.replace(/\/+$/, '');
    const fullPrefix = basePath + LOCAL_BLOB_URL_PREFIX;
    // Accept the path as the client sent it, or with the base path already stripped by a proxy.
    let signedPath: string;
    if (req.path.startsWith(fullPrefix)) signedPath = req.path;
    else if (basePath !== '' && req.path.startsWith(LOCAL_BLOB_URL_PREFIX)) signedPath = basePath + req.path;
    else return { ok: false, status: 400, code: 'InvalidURI', message: 'Couldn\'t parse the specified URI.' };

    let key: string;
    try {
      key = signedPath
        .slice(fullPrefix.length)
        .split('/')
        .map((s) => decodeURIComponent(s))
        .join('/');
    } catch {
      return { ok: false, status: 400, code: 'InvalidURI', message: 'Couldn\'t parse the specified URI.' };
    }
    if (!isValidBlobKey(key)) return { ok: false, status: 400, code: 'InvalidURI', message: 'Couldn\'t parse the specified URI.' };

    const res = verifyPresignedRequest({
      method: req.method,
      path: signedPath,
      query: req.query,
      headers: (name) => req.header(name),
      secret,
      accessKeyId,
      region,
      now: clock.now(),
    });
    if (!res.ok) {
      switch (res.reason) {
        case 'Malformed':
          return { ok: false, status: 400, code: 'AuthorizationQueryParametersError', message: res.message };
        case 'Expired':
          return { ok: false, status: 403, code: 'AccessDenied', message: 'Request has expired' };
        case 'AccessDenied':
          return { ok: false, status: 403, code: 'AccessDenied', message: res.message };
        case 'SignatureDoesNotMatch':
          return { ok: false, status: 403, code: 'SignatureDoesNotMatch', message: res.message };
      }
    }
    return { ok: true, key, signedHeaders: res.signedHeaders };
  }

  function verifyPresignedPut(req: PresignedPutRequest): PresignedPutVerdict {
    const verified = verifySigned(req);
    if (!verified.ok) return verified;
    const { key } = verified;
    const res = verified;
    if (req.method.toUpperCase() !== 'PUT') {
      return { ok: false, status: 403, code: 'AccessDenied', message: 'This URL only allows PUT.' };
    }
    const signedLength = res.signedHeaders['content-length'];
    if (signedLength === undefined || !/^\d{1,16}$/.test(signedLength) || !Number.isSafeInteger(Number(signedLength))) {
      return { ok: false, status: 403, code: 'AccessDenied', message: 'The URL does not sign a Content-Length.' };
    }
    // The signature already covers the header; compare again so a lookup quirk can never let it differ.
    const size = Number(signedLength);
    const sentLength = req.header('content-length');
    if (sentLength === undefined || sentLength.trim() !== signedLength) {
      return { ok: false, status: 403, code: 'SignatureDoesNotMatch', message: 'Content-Length does not match the signed value.' };
    }
    const contentType = res.signedHeaders['content-type'];
    if (contentType !== undefined && (req.header('content-type') ?? '').trim().replace(/\s+/g, ' ') !== contentType) {
      return { ok: false, status: 403, code: 'SignatureDoesNotMatch', message: 'Content-Type does not match the signed value.' };
    }
    return contentType !== undefined ? { ok: true, key, size, contentType } : { ok: true, key, size };
  }

  // ---- multipart uploads ----------------------------------------------------------------------------------------

  const mpuDir = path.join(root, MPU_DIR);
  const uploadDir = (uploadId: string) => path.join(mpuDir, uploadId);
  /** Per upload id: the sizes of its stored parts by number, as this process last saw them (see storedPartBytes). */
  const partSizes = new Map<string, Map<number, number>>();
  /** Most uploads whose part sizes are remembered; the oldest is forgotten beyond (and listed again when needed). */
  const PART_SIZE_UPLOADS = 10_000;
  const rememberPartSizes = (uploadId: string, sizes: Map<number, number>) => {
    partSizes.delete(uploadId);
    partSizes.set(uploadId, sizes);
    if (partSizes.size > PART_SIZE_UPLOADS) partSizes.delete(partSizes.keys().next().value!);
  };

  async function storedPartBytes(key: string, uploadId: string, exceptPart: number): Promise<number> {
    let sizes = partSizes.get(uploadId);
    if (!sizes) {
      sizes = new Map((await listParts(key, uploadId)).map((p) => [p.partNumber, p.size]));
      rememberPartSizes(uploadId, sizes);
    }
    let total = 0;
    for (const [n, size] of sizes) if (n !== exceptPart) total += size;
    return total;
  }

  /** Per upload id: the tail of a promise chain serialising part placement, completion and abort within this process. */
  const uploadLocks = new Map<string, Promise<unknown>>();

  function withUploadLock<T>(uploadId: string, fn: () => Promise<T>): Promise<T> {
    const previous = uploadLocks.get(uploadId) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => undefined);
    uploadLocks.set(uploadId, tail);
    void tail.then(() => {
      if (uploadLocks.get(uploadId) === tail) uploadLocks.delete(uploadId);
    });
    return run;
  }

  interface UploadFile {
    v: 1;
    key: string;
    contentType?: string;
    /** Epoch ms (store clock) when the upload was created. */
    initiated: number;
  }

  const noSuchUpload = () =>
    new MultipartError('NoSuchUpload', 'The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.');

  async function readUpload(uploadId: string): Promise<UploadFile | null> {
    if (!UPLOAD_ID_PATTERN.test(uploadId)) return null;
    try {
      const parsed = JSON.parse(await fsp.readFile(path.join(uploadDir(uploadId), UPLOAD_FILE), 'utf8')) as Partial<UploadFile>;
      if (parsed.v === 1 && typeof parsed.key === 'string' && typeof parsed.initiated === 'number') return parsed as UploadFile;
    } catch (err) {
      if (!isNotFound(err) && !(err instanceof SyntaxError)) throw err;
    }
    return null;
  }

  /** The upload's record, or `NoSuchUpload` when it does not exist or belongs to another key. */
  async function requireUpload(key: string, uploadId: string): Promise<UploadFile> {
    assertValidKey(key);
    const upload = await readUpload(uploadId);
    if (!upload || upload.key !== key) throw noSuchUpload();
    return upload;
  }

  /** Stored parts by number (the newest file wins if a replaced one is still there), from file names alone. */
  async function storedParts(uploadId: string): Promise<Map<number, UploadedPart & { file: string }>> {
    const parts = new Map<number, UploadedPart & { file: string }>();
    const dir = await fsp.opendir(uploadDir(uploadId));
    for await (const entry of dir) {
      const m = PART_FILE.exec(entry.name);
      if (!m || !entry.isFile()) continue;
      const partNumber = Number(m[1]);
      parts.set(partNumber, { partNumber, size: Number(m[2]), etag: `"${m[3]}"`, file: entry.name });
    }
    return parts;
  }

  async function createUpload(key: string, createOpts?: { contentType?: string }): Promise<string> {
    assertValidKey(key);
    await fsp.mkdir(mpuDir, { recursive: true, mode: DIR_MODE });
    const uploadId = randomBytes(24).toString('base64url');
    const dir = uploadDir(uploadId);
    await fsp.mkdir(dir, { mode: DIR_MODE });
    const record: UploadFile = { v: 1, key, initiated: clock.now() };
    if (createOpts?.contentType !== undefined) record.contentType = createOpts.contentType;
    const tmp = path.join(dir, `${UPLOAD_FILE}.tmp`);
    const handle = await fsp.open(tmp, 'wx', FILE_MODE);
    try {
      await handle.writeFile(JSON.stringify(record));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsp.rename(tmp, path.join(dir, UPLOAD_FILE));
    await fsyncDir(dir);
    await fsyncDir(mpuDir);
    return uploadId;
  }

  async function uploadPart(key: string, uploadId: string, partNumber: number, body: Readable, size: number): Promise<UploadedPart> {
    try {
      assertPartNumber(partNumber);
      if (!Number.isSafeInteger(size) || size < 0) throw new RangeError('size must be a non-negative integer');
      if (size > MULTIPART_MAX_PART_SIZE) throw new MultipartError('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size', partNumber);
      await requireUpload(key, uploadId);
    } catch (err) {
      body.destroy();
      throw err;
    }
    await fsp.mkdir(tmpDir, { recursive: true, mode: DIR_MODE });
    const name = tmpName();
    const tmpPath = path.join(tmpDir, name + '.part');
    active.add(name);
    let handle: fsp.FileHandle | undefined;
    try {
      handle = await fsp.open(tmpPath, 'wx', FILE_MODE);
      // the single PUT's writer: pooled buffers, MD5 off the event loop, flushes overlapped with the receive
      const { md5 } = await writeDurably(handle, body as AsyncIterable<Buffer | string>, { expectedSize: size, flushEveryBytes, onFlush: opts.onFlush });
      await finalFsync(handle, size, opts.onFlush);
      await handle.close();
      handle = undefined;
      const file = `${partNumber}-${size}-${md5}`;
      await withUploadLock(uploadId, async () => {
        // completed or aborted while the bytes streamed in: the part belongs to nobody
        await requireUpload(key, uploadId);
        const dir = uploadDir(uploadId);
        await fsp.rename(tmpPath, path.join(dir, file));
        for (const entry of await fsp.readdir(dir)) {
          const m = PART_FILE.exec(entry);
          if (m && Number(m[1]) === partNumber && entry !== file) await fsp.rm(path.join(dir, entry), { force: true });
        }
        await fsyncDir(dir);
        partSizes.get(uploadId)?.set(partNumber, size);
      });
      return { partNumber, etag: `"${md5}"`, size };
    } catch (err) {
      if (!body.destroyed) body.destroy();
      throw err;
    } finally {
      if (handle) await handle.close().catch(() => {});
      await fsp.rm(tmpPath, { force: true }).catch(() => {});
      active.delete(name);
    }
  }

  async function listParts(key: string, uploadId: string): Promise<UploadedPart[]> {
    await requireUpload(key, uploadId);
    let parts;
    try {
      parts = await storedParts(uploadId);
    } catch (err) {
      if (isNotFound(err)) throw noSuchUpload();
      throw err;
    }
    return [...parts.values()].sort((a, b) => a.partNumber - b.partNumber).map(({ partNumber, etag, size }) => ({ partNumber, etag, size }));
  }

  async function completeUpload(key: string, uploadId: string, list: CompletedPartRef[], completeOpts?: { expectedSize?: number }): Promise<BlobStat> {
    assertValidKey(key);
    assertCompletionList(list);
    return withUploadLock(uploadId, async () => {
      await requireUpload(key, uploadId);
      const stored = await storedParts(uploadId);
      const chosen: Array<UploadedPart & { file: string }> = [];
      for (const ref of list) {
        const part = stored.get(ref.partNumber);
        if (!part || bareEtag(part.etag) !== bareEtag(ref.etag)) {
          throw new MultipartError(
            'InvalidPart',
            'One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part\'s entity tag.',
            ref.partNumber,
          );
        }
        chosen.push(part);
      }
      for (const part of chosen.slice(0, -1)) {
        if (part.size < MULTIPART_MIN_PART_SIZE) {
          throw new MultipartError('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.', part.partNumber);
        }
      }
      const total = chosen.reduce((sum, p) => sum + p.size, 0);
      const expected = completeOpts?.expectedSize;
      if (expected !== undefined && total !== expected) throw new BlobSizeError(expected, total);
      const partMd5s = createHash('md5');
      for (const part of chosen) partMd5s.update(Buffer.from(bareEtag(part.etag), 'hex'));
      const etag = `"${partMd5s.digest('hex')}-${chosen.length}"`;

      // Join the parts into a temp file (one bounded buffer, never the whole object), sync it, then link it into place
      // write-once: an object already under the key is never replaced.
      await fsp.mkdir(tmpDir, { recursive: true, mode: DIR_MODE });
      const name = tmpName();
      const tmpPath = path.join(tmpDir, name + '.part');
      const metaTmpPath = path.join(tmpDir, name + '.meta');
      active.add(name);
      let out: fsp.FileHandle | undefined;
      try {
        out = await fsp.open(tmpPath, 'wx', FILE_MODE);
        const buf = Buffer.allocUnsafe(1 << 20);
        let written = 0;
        for (const part of chosen) {
          const src = await fsp.open(path.join(uploadDir(uploadId), part.file), 'r');
          try {
            let pos = 0;
            while (pos < part.size) {
              const { bytesRead } = await src.read(buf, 0, Math.min(buf.length, part.size - pos), pos);
              if (bytesRead === 0) throw new Error(`part ${part.partNumber} of an upload is shorter on disk than recorded`);
              for (let off = 0; off < bytesRead; ) off += (await out.write(buf, off, bytesRead - off, written + off)).bytesWritten;
              pos += bytesRead;
              written += bytesRead;
            }
          } finally {
            await src.close();
          }
        }
        const mtime = new Date(clock.now());
        await out.utimes(mtime, mtime);
        await out.sync();
        const st = await out.stat({ bigint: true });
        await out.close();
        out = undefined;

        const finalPath = blobPath(key);
        await linkInto(tmpPath, finalPath, key);
        await fsyncDir(path.dirname(finalPath));
        const meta: MetaFile = { v: 1, etag, size: total, ino: st.ino.toString(), mtimeNs: st.mtimeNs.toString() };
        try {
          await fsp.writeFile(metaTmpPath, JSON.stringify(meta), { flag: 'wx', mode: FILE_MODE });
          await renameInto(metaTmpPath, metaPath(key));
        } catch {
          // best effort: without the sidecar the ETag is recomputed from the bytes (then the plain MD5)
        }
        // the object is in place: the upload is finished, its parts go
        partSizes.delete(uploadId);
        await fsp.rm(uploadDir(uploadId), { recursive: true, force: true });
        await fsyncDir(mpuDir);
        return { size: total, etag, lastModified: new Date(Number(st.mtimeMs)) };
      } finally {
        if (out) await out.close().catch(() => {});
        await fsp.rm(tmpPath, { force: true }).catch(() => {});
        await fsp.rm(metaTmpPath, { force: true }).catch(() => {});
        active.delete(name);
      }
    });
  }

  async function abortUpload(key: string, uploadId: string): Promise<void> {
    assertValidKey(key);
    await withUploadLock(uploadId, async () => {
      const upload = await readUpload(uploadId);
      if (!upload) return;
      if (upload.key !== key) throw noSuchUpload();
      partSizes.delete(uploadId);
      await fsp.rm(uploadDir(uploadId), { recursive: true, force: true });
    });
  }

  async function* staleUploads(olderThan: Date): AsyncIterable<StaleUpload> {
    let dir: import('node:fs').Dir;
    try {
      dir = await fsp.opendir(mpuDir);
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    for await (const entry of dir) {
      if (!entry.isDirectory() || !UPLOAD_ID_PATTERN.test(entry.name)) continue;
      const upload = await readUpload(entry.name);
      let initiated: number;
      if (upload) initiated = upload.initiated;
      else {
        // a crash between mkdir and the record: judge by the directory's age, so it is cleaned too
        try {
          initiated = (await fsp.lstat(uploadDir(entry.name))).mtimeMs;
        } catch (err) {
          if (isNotFound(err)) continue;
          throw err;
        }
      }
      if (initiated < olderThan.getTime()) {
        if (upload) yield { key: upload.key, uploadId: entry.name, initiated: new Date(initiated) };
        // without a record there is no key to name; it is removed here instead
        else await withUploadLock(entry.name, () => (partSizes.delete(entry.name), fsp.rm(uploadDir(entry.name), { recursive: true, force: true })));
      }
    }
  }

  function presignMultipartUrl(method: 'PUT' | 'GET' | 'POST' | 'DELETE', key: string, query: Record<string, string>, headers: Record<string, string>, expiresInSeconds: number): PresignedRequest {
    assertValidKey(key);
    const signed = presignUrl({
      method,
      baseUrl: opts.baseUrl(),
      path: LOCAL_BLOB_URL_PREFIX + key,
      headers,
      extraQuery: query,
      accessKeyId,
      secret,
      region,
      now: clock.now(),
      expiresIn: expiresInSeconds,
    });
    return { method, url: signed.url, headers, expiresAt: signed.expiresAt };
  }

  const multipart: MultipartBlobs = {
    create: createUpload,
    async presignParts(key, uploadId, partNumbers, expiresInSeconds): Promise<PresignedPart[]> {
      partNumbers.forEach(assertPartNumber);
      return partNumbers.map((partNumber) => ({
        partNumber,
        ...presignMultipartUrl('PUT', key, { partNumber: String(partNumber), uploadId }, {}, expiresInSeconds),
      }));
    },
    async presignRequest(request: MultipartRequest, expiresInSeconds: number): Promise<PresignedRequest> {
      switch (request.op) {
        case 'create':
          return presignMultipartUrl('POST', request.key, { uploads: '' }, request.contentType !== undefined ? { 'Content-Type': request.contentType } : {}, expiresInSeconds);
        case 'list':
          return presignMultipartUrl('GET', request.key, { uploadId: request.uploadId }, {}, expiresInSeconds);
        case 'complete':
          return presignMultipartUrl('POST', request.key, { uploadId: request.uploadId }, {}, expiresInSeconds);
        case 'abort':
          return presignMultipartUrl('DELETE', request.key, { uploadId: request.uploadId }, {}, expiresInSeconds);
      }
    },
    listParts,
    complete: completeUpload,
    abort: abortUpload,
    staleUploads,
  };

  function verifyPresignedMultipart(req: PresignedPutRequest): PresignedMultipartVerdict {
    const verified = verifySigned(req);
    if (!verified.ok) return verified;
    const { key, signedHeaders } = verified;
    const q = req.query;
    const method = req.method.toUpperCase();
    const uploadIds = q.getAll('uploadId');
    if (uploadIds.length > 1) return { ok: false, status: 400, code: 'InvalidArgument', message: 'The uploadId parameter is repeated.' };
    const uploadId = uploadIds[0];
    if (uploadId === undefined) {
      if (method === 'POST' && q.has('uploads')) {
        const contentType = signedHeaders['content-type'];
        return contentType !== undefined ? { ok: true, key, op: 'create', contentType } : { ok: true, key, op: 'create' };
      }
      return { ok: false, status: 403, code: 'AccessDenied', message: 'This URL does not allow this request.' };
    }
    // garbage ids cannot name an upload (and never reach the filesystem)
    if (!UPLOAD_ID_PATTERN.test(uploadId)) return { ok: false, status: 404, code: 'NoSuchUpload', message: noSuchUpload().message };
    if (method === 'PUT') {
      const raw = q.get('partNumber');
      const partNumber = raw !== null && /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10_000 || q.getAll('partNumber').length !== 1) {
        return { ok: false, status: 400, code: 'InvalidArgument', message: 'Part number must be an integer between 1 and 10000, inclusive' };
      }
      const signedLength = signedHeaders['content-length'];
      if (signedLength !== undefined) {
        if (!/^\d{1,16}$/.test(signedLength) || (req.header('content-length') ?? '').trim() !== signedLength) {
          return { ok: false, status: 403, code: 'SignatureDoesNotMatch', message: 'Content-Length does not match the signed value.' };
        }
        return { ok: true, key, op: 'part', uploadId, partNumber, size: Number(signedLength) };
      }
      return { ok: true, key, op: 'part', uploadId, partNumber };
    }
    if (q.has('partNumber')) return { ok: false, status: 403, code: 'AccessDenied', message: 'This URL does not allow this request.' };
    if (method === 'GET') return { ok: true, key, op: 'list', uploadId };
    if (method === 'POST') return { ok: true, key, op: 'complete', uploadId };
    if (method === 'DELETE') return { ok: true, key, op: 'abort', uploadId };
    return { ok: false, status: 403, code: 'AccessDenied', message: 'This URL does not allow this request.' };
  }

  async function check(): Promise<void> {
    try {
      await fsp.mkdir(tmpDir, { recursive: true, mode: DIR_MODE });
      await fsp.mkdir(metaDir, { recursive: true, mode: DIR_MODE });
      const probe = path.join(tmpDir, `${tmpName()}.probe`);
      try {
        await fsp.writeFile(probe, 'ok', { flag: 'wx', mode: FILE_MODE });
        if ((await fsp.readFile(probe, 'utf8')) !== 'ok') throw new Error('read back different bytes');
      } finally {
        await fsp.rm(probe, { force: true });
      }
    } catch (err) {
      throw new Error(`blob storage root ${root} is not writable: ${(err as Error).message}`, { cause: err });
    }
  }

  async function cleanupTemp(olderThanMs: number): Promise<number> {
    if (!Number.isFinite(olderThanMs) || olderThanMs < 0) throw new RangeError('olderThanMs must be a finite number >= 0');
    let names: string[];
    try {
      names = await fsp.readdir(tmpDir);
    } catch (err) {
      if (isNotFound(err)) return 0;
      throw err;
    }
    const cutoff = clock.now() - olderThanMs;
    let removed = 0;
    for (const entry of names) {
      const base = entry.replace(/\.(part|meta)$/, '');
      if (active.has(base)) continue;
      const full = path.join(tmpDir, entry);
      try {
        const st = await fsp.lstat(full);
        if (st.mtimeMs >= cutoff) continue;
        // rm never follows symlinks: a link is removed itself, a directory with its contents.
        await fsp.rm(full, { recursive: true, force: true });
        removed++;
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return removed;
  }

  return {
    kind: 'local',
    // every PUT passes mountUploadRoutes, which refuses keys without a pending row
    revocableUploadUrls: true,
    servesSignedUrls: true,
    filesAtKeys: true,
    put,
    get,
    stat,
    delete: del,
    list,
    presignPut,
    async presignGet(_input: PresignGetInput): Promise<PresignedRequest | null> {
      return null;
    },
    check,
    async close(): Promise<void> {
      // Nothing is held open between calls.
    },
    verifyPresignedPut,
    s3ErrorXml,
    cleanupTemp,
    multipart,
    verifyPresignedMultipart,
    uploadPart,
    storedPartBytes,
  };
}

/** True when `store`'s presigned URLs point at this server, which must mount their endpoint (the capability, not a kind check). */
export function servesSignedUrls(store: BlobStore): store is LocalBlobStore {
  return store.servesSignedUrls === true;
}
