import { Readable, Transform, type TransformCallback } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { Clock } from '../core/clock.js';
import {
  assertCompletionList,
  assertPartNumber,
  bareEtag,
  BlobExistsError,
  BlobNotFoundError,
  BlobSizeError,
  MultipartError,
  type MultipartBlobs,
  type PresignedPart,
  type UploadedPart,
  type BlobListEntry,
  type BlobStat,
  type BlobStore,
  type ByteRange,
  type PresignGetInput,
  type PresignPutInput,
  type PresignedRequest,
} from './blob-store.js';

/** Options of {@link createS3BlobStore}; mirrors `storage.s3` of the config plus the injected clock. */
export interface S3BlobStoreOptions {
  /** Custom endpoint (MinIO, R2, moto…); empty/undefined means AWS S3 for `region`. */
  endpoint?: string;
  region: string;
  bucket: string;
  /** Key prefix every object is stored under; normalised to no leading `/` and a trailing `/` when non-empty. */
  prefix: string;
  /** Explicit credentials; used only when both are non-empty, otherwise the SDK's default provider chain applies. */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Path-style addressing (`endpoint/bucket/key`), needed by most S3-compatible servers. */
  forcePathStyle: boolean;
  /** Let {@link BlobStore.check} create the bucket when it does not exist. */
  createBucket: boolean;
  /** Sign `If-None-Match: *` into upload URLs so an existing object cannot be replaced through them. */
  conditionalWrites: boolean;
  /** Source of "now" for presigned URLs (signing date and `expiresAt`). */
  clock: Clock;
}

/**
 * A {@link BlobStore} backed by an S3-compatible bucket (`kind: 's3'`).
 * Keys given to and returned by the store never include the configured prefix.
 */
export interface S3BlobStore extends BlobStore {
  readonly kind: 's3';
  readonly multipart: MultipartBlobs;
  /** The bucket objects are stored in. */
  readonly bucket: string;
  /** The normalised key prefix ('' or ending in `/`). */
  readonly prefix: string;
  /** The full object key in the bucket for a store key (prefix + key); for diagnostics and tests. */
  objectKey(key: string): string;
}

/** Size of each part of a multipart upload (all but the last); S3's minimum is 5 MiB. */
const PART_SIZE = 8 * 1024 * 1024;
/** Longest lifetime S3 accepts for a SigV4 presigned URL. */
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

/**
 * Normalises a configured prefix: strips leading slashes and appends a trailing `/` when non-empty,
 * so `"a/b"`, `"/a/b"` and `"a/b/"` all become `"a/b/"` and `""`/`"/"` become `""`.
 */
export function normalizeS3Prefix(prefix: string): string {
  const p = prefix.replace(/^\/+/, '');
  if (p === '') return '';
  return p.endsWith('/') ? p : `${p}/`;
}

/** HTTP status of an SDK error, if it came from a response. */
function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

function errName(err: unknown): string {
  return (err as { name?: string } | null)?.name ?? '';
}

/** S3's answer to a conditional write whose condition (`If-None-Match: *`) failed: the key exists. */
function isPreconditionFailed(err: unknown): boolean {
  return errName(err) === 'PreconditionFailed' || httpStatus(err) === 412;
}

function isNotFound(err: unknown): boolean {
  const name = errName(err);
  return name === 'NoSuchKey' || name === 'NotFound' || httpStatus(err) === 404;
}

/**
 * Counts the bytes flowing through and fails as soon as they exceed `expected`, or at the end when short.
 * The most recent chunk is held back until the next one arrives or the source ends, so the receiver never gets
 * all `expected` bytes (and cannot complete a PUT of that Content-Length) before the source is known to have ended
 * with exactly `expected` bytes.
 */
class SizeLimiter extends Transform {
  received = 0;
  private pending: Buffer | undefined;
  constructor(readonly expected: number) {
    super();
  }
  override _transform(chunk: Buffer | string, _enc: BufferEncoding, cb: TransformCallback): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.received += buf.length;
    if (this.received > this.expected) {
      this.pending = undefined;
      cb(new BlobSizeError(this.expected, this.received));
      return;
    }
    const previous = this.pending;
    this.pending = buf;
    cb(null, previous);
  }
  override _flush(cb: TransformCallback): void {
    if (this.received !== this.expected) {
      cb(new BlobSizeError(this.expected, this.received));
      return;
    }
    const last = this.pending;
    this.pending = undefined;
    cb(null, last);
  }
}

/**
 * Creates an S3-backed {@link BlobStore}. Nothing is contacted until the first call; use `check()` at start-up.
 *
 * - `put` with `expectedSize` streams one PutObject with that Content-Length through a byte counter; a body that is
 *   too long or too short rejects with {@link BlobSizeError}; the request is aborted before S3 has received all bytes, and
 *   anything left under the key that is not the previous version is deleted defensively. With `ifAbsent` that PutObject
 *   carries `If-None-Match: *` and a 412 becomes {@link BlobExistsError} (the existing object is left alone). Without
 *   `expectedSize` it uses a multipart upload of 8 MiB buffered parts (a single PutObject when the body is smaller),
 *   aborted on failure.
 * - `presignPut` signs Content-Length, Content-Type (when given) and, with `conditionalWrites`, `If-None-Match: *`;
 *   the client must send exactly the returned `headers`.
 * - Presigned URLs are signed with `clock.now()` (truncated to the second, as X-Amz-Date) as their date;
 *   `expiresAt` is that time + `expiresInSeconds`, exactly when S3 stops accepting the URL.
 *
 * Throws synchronously when only one of `accessKeyId`/`secretAccessKey` is set, or `bucket` is empty.
 */
export function createS3BlobStore(opts: S3BlobStoreOptions): S3BlobStore {
  const bucket = opts.bucket;
  if (!bucket) throw new Error('storage.s3.bucket is required for the S3 blob store');
  const prefix = normalizeS3Prefix(opts.prefix);
  const hasKeyId = !!opts.accessKeyId;
  const hasSecret = !!opts.secretAccessKey;
  if (hasKeyId !== hasSecret) {
    throw new Error('storage.s3.accessKeyId and storage.s3.secretAccessKey must be set together (or both left empty)');
  }
  const endpoint = opts.endpoint ? opts.endpoint : undefined;
  const where = endpoint ? `endpoint ${endpoint}` : `AWS S3 (region ${opts.region})`;

  const baseConfig: S3ClientConfig = {
    region: opts.region,
    endpoint,
    forcePathStyle: opts.forcePathStyle,
    credentials: hasKeyId ? { accessKeyId: opts.accessKeyId!, secretAccessKey: opts.secretAccessKey! } : undefined,
    // Checksums only when an operation requires them: presigned PUTs must not carry a checksum of an empty body,
    // streamed PUTs keep a plain Content-Length, and ranged GETs are not wrapped in a validator.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { connectionTimeout: 10_000 },
  };
  // The SDK never retries a request with a streamed body (it cannot be replayed) and then warns through the
  // client's logger, falling back to console; our own size errors abort such requests on purpose, so that one
  // warning is dropped. Other SDK warnings still reach the console.
  const client = new S3Client({
    ...baseConfig,
    logger: {
      trace: () => undefined,
      debug: () => undefined,
      info: () => undefined,
      warn: (...args: unknown[]) => {
        if (typeof args[0] === 'string' && args[0].includes('non-retryable streaming request')) return;
        console.warn(...args);
      },
      // The SDK logs every failed command here (a 404 from stat() included); failures reach callers as errors.
      error: () => undefined,
    },
  });
  let closed = false;

  const objectKey = (key: string): string => prefix + key;

  function assertOpen(): void {
    if (closed) throw new Error('S3 blob store is closed');
  }

  async function stat(key: string): Promise<BlobStat | null> {
    assertOpen();
    try {
      const out = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: objectKey(key) }));
      return { size: out.ContentLength ?? 0, etag: out.ETag ?? '""', lastModified: out.LastModified ?? new Date(0) };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async function del(key: string): Promise<void> {
    assertOpen();
    try {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey(key) }));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async function removeLeftover(key: string, previous: BlobStat | null): Promise<void> {
    const now = await stat(key);
    if (now && (!previous || now.etag !== previous.etag || now.size !== previous.size)) await del(key);
  }

  async function statAfterWrite(key: string): Promise<BlobStat> {
    const s = await stat(key);
    if (!s) throw new Error(`S3 object ${objectKey(key)} is missing right after it was written`);
    return s;
  }

  async function putSized(key: string, body: Readable, expectedSize: number, contentType?: string, ifAbsent = false): Promise<BlobStat> {
    // What the key holds now, so that a failed put can tell a leftover of its own from the previous version.
    const previous = await stat(key);
    const limiter = new SizeLimiter(expectedSize);
    const abort = new AbortController();
    let streamError: unknown;
    const onError = (err: unknown) => {
      if (streamError === undefined) streamError = err;
      abort.abort(err);
    };
    limiter.on('error', onError);
    body.on('error', onError);
    body.pipe(limiter);
    try {
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: objectKey(key),
          Body: limiter,
          ContentLength: expectedSize,
          ContentType: contentType,
          IfNoneMatch: ifAbsent ? '*' : undefined,
        }),
        { abortSignal: abort.signal },
      );
      if (streamError !== undefined) throw streamError;
    } catch (err) {
      const cause = streamError ?? err;
      if (streamError === undefined && isPreconditionFailed(err)) {
        // the key already holds an object (someone else's, maybe a confirmed one): it must not be touched
        if (!body.destroyed && !body.readableEnded) body.destroy();
        throw new BlobExistsError(key);
      }
      body.unpipe(limiter);
      limiter.destroy();
      if (!body.destroyed && !body.readableEnded) body.destroy();
      // A PUT whose body does not match its Content-Length fails at S3, but some servers may keep what arrived:
      // remove whatever is there unless it is still the previous version.
      await removeLeftover(key, previous).catch(() => undefined);
      throw cause;
    } finally {
      body.off('error', onError);
    }
    return statAfterWrite(key);
  }

  async function putMultipart(key: string, body: Readable, contentType?: string): Promise<BlobStat> {
    const Key = objectKey(key);
    let chunks: Buffer[] = [];
    let buffered = 0;
    let uploadId: string | undefined;
    const parts: CompletedPart[] = [];

    /** Uploads the first PART_SIZE buffered bytes (all of them when `last`), keeping the rest buffered. */
    const flushPart = async (last: boolean): Promise<void> => {
      const all = Buffer.concat(chunks, buffered);
      const data = last ? all : all.subarray(0, PART_SIZE);
      const rest = last ? Buffer.alloc(0) : all.subarray(PART_SIZE);
      chunks = rest.length ? [rest] : [];
      buffered = rest.length;
      if (uploadId === undefined) {
        const created = await client.send(
          new CreateMultipartUploadCommand({ Bucket: bucket, Key, ContentType: contentType }),
        );
        if (!created.UploadId) throw new Error('S3 CreateMultipartUpload returned no UploadId');
        uploadId = created.UploadId;
      }
      const PartNumber = parts.length + 1;
      const out = await client.send(
        new UploadPartCommand({ Bucket: bucket, Key, UploadId: uploadId, PartNumber, Body: data, ContentLength: data.length }),
      );
      parts.push({ PartNumber, ETag: out.ETag });
    };

    try {
      for await (const chunk of body) {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
        chunks.push(buf);
        buffered += buf.length;
        while (buffered >= PART_SIZE) await flushPart(false);
      }
      if (uploadId === undefined) {
        // Small body: one plain PUT is atomic too and avoids the multipart round trips.
        const data = Buffer.concat(chunks, buffered);
        chunks = [];
        await client.send(
          new PutObjectCommand({ Bucket: bucket, Key, Body: data, ContentLength: data.length, ContentType: contentType }),
        );
      } else {
        if (buffered > 0) await flushPart(true);
        await client.send(
          new CompleteMultipartUploadCommand({ Bucket: bucket, Key, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
        );
      }
    } catch (err) {
      if (!body.destroyed && !body.readableEnded) body.destroy();
      if (uploadId !== undefined) {
        await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key, UploadId: uploadId })).catch(() => undefined);
      }
      throw err;
    }
    return statAfterWrite(key);
  }

  /** Maps the S3 errors of a multipart operation to {@link MultipartError} / {@link BlobExistsError}; others pass. */
  function multipartFailure(err: unknown, key: string): unknown {
    const name = errName(err);
    const message = (err as Error | null)?.message || name;
    switch (name) {
      case 'NoSuchUpload':
      case 'InvalidPart':
      case 'InvalidPartOrder':
      case 'EntityTooSmall':
      case 'EntityTooLarge':
        return new MultipartError(name, message);
    }
    if (isPreconditionFailed(err)) return new BlobExistsError(key);
    if (httpStatus(err) === 404) return new MultipartError('NoSuchUpload', message);
    return err;
  }

  async function listAllParts(key: string, uploadId: string): Promise<UploadedPart[]> {
    assertOpen();
    const parts: UploadedPart[] = [];
    let marker: string | undefined;
    try {
      for (;;) {
        const out = await client.send(
          new ListPartsCommand({ Bucket: bucket, Key: objectKey(key), UploadId: uploadId, PartNumberMarker: marker }),
        );
        for (const p of out.Parts ?? []) {
          if (p.PartNumber === undefined) continue;
          parts.push({ partNumber: p.PartNumber, etag: p.ETag ?? '""', size: p.Size ?? 0 });
        }
        if (!out.IsTruncated || !out.NextPartNumberMarker || out.NextPartNumberMarker === marker) break;
        marker = out.NextPartNumberMarker;
      }
    } catch (err) {
      throw multipartFailure(err, key);
    }
    return parts.sort((a, b) => a.partNumber - b.partNumber);
  }

  type SignOptions = { expiresIn: number; signingDate: Date; signableHeaders: Set<string>; unhoistableHeaders: Set<string> };
  /** A presigned URL made by `sign` (getSignedUrl of one command); `headers` are signed and must be sent as given. */
  async function presignCommand(
    sign: (options: SignOptions) => Promise<string>,
    method: PresignedRequest['method'],
    headers: Record<string, string>,
    expiresInSeconds: number,
  ): Promise<PresignedRequest> {
    assertOpen();
    const expiresIn = presignSeconds(expiresInSeconds);
    const now = signingTime(opts.clock);
    const names = new Set(Object.keys(headers).map((h) => h.toLowerCase()));
    const url = await sign({ expiresIn, signingDate: new Date(now), signableHeaders: names, unhoistableHeaders: names });
    return { method, url, headers, expiresAt: now + expiresIn * 1000 };
  }

  const multipart: MultipartBlobs = {
    async create(key, createOpts) {
      assertOpen();
      const out = await client.send(
        new CreateMultipartUploadCommand({ Bucket: bucket, Key: objectKey(key), ContentType: createOpts?.contentType || undefined }),
      );
      if (!out.UploadId) throw new Error('S3 CreateMultipartUpload returned no UploadId');
      return out.UploadId;
    },

    async presignParts(key, uploadId, partNumbers, expiresInSeconds) {
      partNumbers.forEach(assertPartNumber);
      const out: PresignedPart[] = [];
      for (const partNumber of partNumbers) {
        const command = new UploadPartCommand({ Bucket: bucket, Key: objectKey(key), UploadId: uploadId, PartNumber: partNumber });
        out.push({ partNumber, ...(await presignCommand((o) => getSignedUrl(client, command, o), 'PUT', {}, expiresInSeconds)) });
      }
      return out;
    },

    async presignRequest(request, expiresInSeconds) {
      const Key = objectKey(request.key);
      switch (request.op) {
        case 'create': {
          const headers: Record<string, string> = request.contentType ? { 'Content-Type': request.contentType } : {};
          const command = new CreateMultipartUploadCommand({ Bucket: bucket, Key, ContentType: request.contentType || undefined });
          return presignCommand((o) => getSignedUrl(client, command, o), 'POST', headers, expiresInSeconds);
        }
        case 'list':
          return presignCommand((o) => getSignedUrl(client, new ListPartsCommand({ Bucket: bucket, Key, UploadId: request.uploadId }), o), 'GET', {}, expiresInSeconds);
        case 'complete': {
          // with conditional writes the client's completion is write-once too
          const headers: Record<string, string> = opts.conditionalWrites ? { 'If-None-Match': '*' } : {};
          const command = new CompleteMultipartUploadCommand({
            Bucket: bucket,
            Key,
            UploadId: request.uploadId,
            IfNoneMatch: opts.conditionalWrites ? '*' : undefined,
          });
          return presignCommand((o) => getSignedUrl(client, command, o), 'POST', headers, expiresInSeconds);
        }
        case 'abort':
          return presignCommand((o) => getSignedUrl(client, new AbortMultipartUploadCommand({ Bucket: bucket, Key, UploadId: request.uploadId }), o), 'DELETE', {}, expiresInSeconds);
      }
    },

    listParts: listAllParts,

    async complete(key, uploadId, parts, completeOpts) {
      assertOpen();
      assertCompletionList(parts);
      // The parts as stored: an unknown upload is NoSuchUpload here (some S3 look-alikes fail completion of one with a
      // 500), and the total can be checked before anything is joined.
      const stored = new Map((await listAllParts(key, uploadId)).map((p) => [p.partNumber, p]));
      let total = 0;
      for (const ref of parts) {
        const part = stored.get(ref.partNumber);
        if (!part || bareEtag(part.etag) !== bareEtag(ref.etag)) {
          throw new MultipartError('InvalidPart', 'One or more of the specified parts could not be found.', ref.partNumber);
        }
        total += part.size;
      }
      const expected = completeOpts?.expectedSize;
      if (expected !== undefined && total !== expected) throw new BlobSizeError(expected, total);
      // Write-once: If-None-Match: * makes S3 refuse to complete over an existing object. A store without conditional
      // writes gets a HEAD check, which a concurrent writer can still race.
      if (!opts.conditionalWrites && (await stat(key))) throw new BlobExistsError(key);
      let etag: string | undefined;
      try {
        const out = await client.send(
          new CompleteMultipartUploadCommand({
            Bucket: bucket,
            Key: objectKey(key),
            UploadId: uploadId,
            MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) },
            IfNoneMatch: opts.conditionalWrites ? '*' : undefined,
          }),
        );
        etag = out.ETag;
      } catch (err) {
        throw multipartFailure(err, key);
      }
      const st = await statAfterWrite(key);
      return etag ? { ...st, etag } : st;
    },

    async abort(key, uploadId) {
      assertOpen();
      try {
        await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: objectKey(key), UploadId: uploadId }));
      } catch (err) {
        const failure = multipartFailure(err, key);
        if (failure instanceof MultipartError && failure.code === 'NoSuchUpload') return;
        throw failure;
      }
    },

    async *staleUploads(olderThan) {
      assertOpen();
      let keyMarker: string | undefined;
      let uploadIdMarker: string | undefined;
      for (;;) {
        const out = await client.send(
          new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix || undefined, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
        );
        for (const u of out.Uploads ?? []) {
          if (!u.Key || !u.UploadId || !u.Key.startsWith(prefix)) continue;
          const initiated = u.Initiated ?? new Date(0);
          if (initiated.getTime() < olderThan.getTime()) yield { key: u.Key.slice(prefix.length), uploadId: u.UploadId, initiated };
        }
        if (!out.IsTruncated) break;
        if (out.NextKeyMarker === keyMarker && out.NextUploadIdMarker === uploadIdMarker) break;
        keyMarker = out.NextKeyMarker;
        uploadIdMarker = out.NextUploadIdMarker;
      }
    },
  };

  const store: S3BlobStore = {
    kind: 's3',
    multipart,
    // a presigned PUT goes straight to the bucket, which takes it until the URL expires
    revocableUploadUrls: false,
    bucket,
    prefix,
    objectKey,

    async put(key, body, putOpts = {}) {
      assertOpen();
      const { expectedSize, contentType, ifAbsent } = putOpts;
      if (expectedSize !== undefined) {
        if (!Number.isSafeInteger(expectedSize) || expectedSize < 0) {
          throw new RangeError(`expectedSize must be a non-negative integer, got ${expectedSize}`);
        }
        return putSized(key, body, expectedSize, contentType, ifAbsent);
      }
      if (ifAbsent) throw new RangeError('ifAbsent needs expectedSize (a single conditional PutObject)');
      return putMultipart(key, body, contentType);
    },

    async get(key, range?: ByteRange) {
      assertOpen();
      let out;
      try {
        out = await client.send(
          new GetObjectCommand({
            Bucket: bucket,
            Key: objectKey(key),
            Range: range ? `bytes=${range.start}-${range.end}` : undefined,
          }),
        );
      } catch (err) {
        if (isNotFound(err)) throw new BlobNotFoundError(key);
        throw err;
      }
      const stream = out.Body;
      if (!(stream instanceof Readable)) {
        throw new Error('S3 GetObject returned a body that is not a Node.js Readable');
      }
      // With a range, ContentLength is the range's length; the object's size is after the slash of Content-Range.
      let size = out.ContentLength ?? 0;
      const total = out.ContentRange?.match(/\/(\d+)$/);
      if (total) size = Number(total[1]);
      return {
        stream,
        stat: { size, etag: out.ETag ?? '""', lastModified: out.LastModified ?? new Date(0) },
      };
    },

    stat,
    delete: del,

    async *list(listPrefix?: string): AsyncIterable<BlobListEntry> {
      assertOpen();
      let token: string | undefined;
      do {
        const out = await client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix + (listPrefix ?? ''), ContinuationToken: token }),
        );
        for (const obj of out.Contents ?? []) {
          if (!obj.Key || !obj.Key.startsWith(prefix)) continue;
          yield { key: obj.Key.slice(prefix.length), size: obj.Size ?? 0, lastModified: obj.LastModified ?? new Date(0) };
        }
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (token);
    },

    async presignPut(input: PresignPutInput): Promise<PresignedRequest> {
      assertOpen();
      const expiresIn = presignSeconds(input.expiresInSeconds);
      const now = signingTime(opts.clock);
      const headers: Record<string, string> = { 'Content-Length': String(input.size) };
      if (input.contentType) headers['Content-Type'] = input.contentType;
      if (opts.conditionalWrites) headers['If-None-Match'] = '*';
      const command = new PutObjectCommand({
        Bucket: bucket,
        Key: objectKey(input.key),
        ContentLength: input.size,
        ContentType: input.contentType || undefined,
        IfNoneMatch: opts.conditionalWrites ? '*' : undefined,
      });
      const url = await getSignedUrl(client, command, {
        expiresIn,
        signingDate: new Date(now),
        // The presigner marks content-type unsignable by default; this overrides that so the exact size, the declared
        // type and the precondition are part of the signature (they stay request headers the client must send).
        // Without a declared type content-type stays unsigned: the SDK would otherwise sign its own default
        // (application/octet-stream) and every client sending another type, or none, would be refused.
        signableHeaders: new Set(Object.keys(headers).map((h) => h.toLowerCase())),
        unhoistableHeaders: new Set(Object.keys(headers).map((h) => h.toLowerCase())),
      });
      return { method: 'PUT', url, headers, expiresAt: now + expiresIn * 1000 };
    },

    async presignGet(input: PresignGetInput): Promise<PresignedRequest> {
      assertOpen();
      const expiresIn = presignSeconds(input.expiresInSeconds);
      const now = signingTime(opts.clock);
      const command = new GetObjectCommand({
        Bucket: bucket,
        Key: objectKey(input.key),
        ResponseContentDisposition: input.contentDisposition || undefined,
        ResponseContentType: input.contentType || undefined,
      });
      const url = await getSignedUrl(client, command, { expiresIn, signingDate: new Date(now) });
      return { method: 'GET', url, headers: {}, expiresAt: now + expiresIn * 1000 };
    },

    async check() {
      assertOpen();
      const what = `S3 bucket "${bucket}" at ${where}`;
      try {
        await client.send(new HeadBucketCommand({ Bucket: bucket }));
        return;
      } catch (err) {
        const status = httpStatus(err);
        if (status === undefined) {
          throw new Error(`${what} is unreachable: ${describe(err)}`, { cause: err });
        }
        if (status === 403) {
          throw new Error(`${what}: credentials refused (403 Forbidden)`, { cause: err });
        }
        if (status !== 404) {
          throw new Error(`${what}: HeadBucket failed with HTTP ${status} (${describe(err)})`, { cause: err });
        }
        if (!opts.createBucket) {
          throw new Error(`${what} not found (404) and storage.s3.createBucket is off`, { cause: err });
        }
      }
      try {
        await client.send(
          new CreateBucketCommand({
            Bucket: bucket,
            CreateBucketConfiguration:
              opts.region === 'us-east-1' ? undefined : { LocationConstraint: opts.region as never },
          }),
        );
      } catch (err) {
        if (errName(err) === 'BucketAlreadyOwnedByYou') return;
        const status = httpStatus(err);
        const reason = status === 403 ? 'credentials refused (403 Forbidden)' : describe(err);
        throw new Error(`${what} not found and could not be created: ${reason}`, { cause: err });
      }
    },

    async close() {
      if (closed) return;
      closed = true;
      client.destroy();
    },
  };
  return store;
}

/** The clock's time truncated to whole seconds: X-Amz-Date has second precision, so `expiresAt` matches it exactly. */
function signingTime(clock: Clock): number {
  return Math.floor(clock.now() / 1000) * 1000;
}

function presignSeconds(s: number): number {
  if (!Number.isInteger(s) || s < 1 || s > MAX_PRESIGN_SECONDS) {
    throw new RangeError(`expiresInSeconds must be an integer between 1 and ${MAX_PRESIGN_SECONDS}, got ${s}`);
  }
  return s;
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: string }).code;
    const msg = err.message || err.name;
    return code && !msg.includes(code) ? `${code} ${msg}` : msg;
  }
  return String(err);
}
