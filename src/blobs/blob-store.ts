import type { Readable } from 'node:stream';

/** What a store knows about one stored object. */
export interface BlobStat {
  /** Size in bytes. */
  size: number;
  /** Strong entity tag, quoted like S3's (`"abc…"`). */
  etag: string;
  lastModified: Date;
}

/** An inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start: number;
  end: number;
}

/** A request a client must make itself (an upload URL) — URL plus the headers it must send. */
export interface PresignedRequest {
  method: 'PUT' | 'GET' | 'POST' | 'DELETE';
  url: string;
  /** Headers the client must send exactly as given (they are signed). */
  headers: Record<string, string>;
  /** When the URL stops working, epoch ms. */
  expiresAt: number;
}

/** Input for {@link BlobStore.presignPut}. */
export interface PresignPutInput {
  key: string;
  /** Exact number of bytes the client must send (signed as Content-Length). */
  size: number;
  /** Signed as Content-Type when given. */
  contentType?: string;
  expiresInSeconds: number;
}

/** Input for {@link BlobStore.presignGet}. */
export interface PresignGetInput {
  key: string;
  expiresInSeconds: number;
  /** Sent back as `Content-Disposition` by the store. */
  contentDisposition?: string;
  contentType?: string;
}

/** One entry of {@link BlobStore.list}. */
export interface BlobListEntry {
  key: string;
  size: number;
  lastModified: Date;
}

/** Thrown by {@link BlobStore.put} when the body is not exactly the expected size; nothing is stored. */
export class BlobSizeError extends Error {
  override name = 'BlobSizeError';
  constructor(
    readonly expected: number,
    readonly received: number,
  ) {
    super(received > expected ? `body exceeds the expected ${expected} bytes` : `body has ${received} bytes, expected ${expected}`);
  }
}

/** Thrown by {@link BlobStore.put} with `ifAbsent` when the key already holds an object; that object is left untouched. */
export class BlobExistsError extends Error {
  override name = 'BlobExistsError';
  constructor(readonly key: string) {
    super(`an object already exists under key ${key}`);
  }
}

/** Options of {@link BlobStore.put}. */
export interface PutOptions {
  /** Exact number of bytes the body must have. */
  expectedSize?: number;
  contentType?: string;
  /**
   * Write-once: place the object only if the key holds none at the moment it would become visible (S3's
   * `If-None-Match: *`); otherwise throw {@link BlobExistsError} and leave the existing object as it is.
   */
  ifAbsent?: boolean;
}

/** Thrown by {@link BlobStore.get} when no object has the key. */
export class BlobNotFoundError extends Error {
  override name = 'BlobNotFoundError';
  constructor(readonly key: string) {
    super(`no blob with key ${key}`);
  }
}

/** S3's smallest part (every part but the last of a multipart upload must have at least this many bytes): 5 MiB. */
export const MULTIPART_MIN_PART_SIZE = 5 * 1024 * 1024;
/** S3's largest part: 5 GiB. */
export const MULTIPART_MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;
/** S3's highest part number (part numbers are 1…10,000). */
export const MULTIPART_MAX_PARTS = 10_000;

/** The S3 error codes a multipart operation fails with (see {@link MultipartError}). */
export type MultipartErrorCode =
  /** The upload id is unknown for this key: never created, completed or aborted. */
  | 'NoSuchUpload'
  /** A part of the completion list was not uploaded, or its ETag does not match the stored part. */
  | 'InvalidPart'
  /** The completion list is not in strictly ascending part-number order. */
  | 'InvalidPartOrder'
  /** A part other than the last is smaller than {@link MULTIPART_MIN_PART_SIZE}. */
  | 'EntityTooSmall'
  /** A part is larger than {@link MULTIPART_MAX_PART_SIZE}. */
  | 'EntityTooLarge'
  /** A part number outside 1…{@link MULTIPART_MAX_PARTS}, or an empty completion list. */
  | 'InvalidArgument';

/** A multipart operation refused with an S3 error code; nothing changed in the store. */
export class MultipartError extends Error {
  override name = 'MultipartError';
  constructor(
    readonly code: MultipartErrorCode,
    message: string,
    /** The part the error is about, when it is about one. */
    readonly partNumber?: number,
  ) {
    super(message);
  }
}

/** A part stored in an unfinished multipart upload. */
export interface UploadedPart {
  partNumber: number;
  /** Quoted MD5 of the part's bytes, as S3 gives it (`"abc…"`). */
  etag: string;
  size: number;
}

/** One entry of a completion list: which part, and the ETag its upload answered. */
export interface CompletedPartRef {
  partNumber: number;
  etag: string;
}

/** An unfinished multipart upload, as {@link MultipartBlobs.staleUploads} lists it. */
export interface StaleUpload {
  key: string;
  uploadId: string;
  initiated: Date;
}

/** A presigned `UploadPart` request for one part number (the client PUTs the part's bytes to it). */
export interface PresignedPart extends PresignedRequest {
  partNumber: number;
}

/**
 * The S3 requests besides UploadPart that a client may make itself with a presigned URL (an uploader that speaks the
 * S3 protocol, e.g. Uppy's S3 plugin with `signRequest`): CreateMultipartUpload (`POST ?uploads`), ListParts
 * (`GET ?uploadId=`), CompleteMultipartUpload (`POST ?uploadId=`, XML body) and AbortMultipartUpload (`DELETE ?uploadId=`).
 */
export type MultipartRequest =
  | { op: 'create'; key: string; contentType?: string }
  | { op: 'list'; key: string; uploadId: string }
  | { op: 'complete'; key: string; uploadId: string }
  | { op: 'abort'; key: string; uploadId: string };

/** Options of {@link MultipartBlobs.complete}. */
export interface CompleteOptions {
  /**
   * The exact total the listed parts must have; otherwise {@link BlobSizeError} and nothing changes (the upload stays
   * open). Checked against the parts as stored when completion starts.
   */
  expectedSize?: number;
}

/**
 * Optional capability of a {@link BlobStore}: S3-style multipart uploads, whose parts clients PUT with presigned URLs
 * (in any order, in parallel, again after a failure) and which the store then joins into one object.
 * Rules as S3's: part numbers 1…{@link MULTIPART_MAX_PARTS}, every part but the last at least
 * {@link MULTIPART_MIN_PART_SIZE}, at most {@link MULTIPART_MAX_PART_SIZE}; a part uploaded again replaces the earlier one.
 * Failures of the upload's rules are {@link MultipartError}s with S3's codes.
 */
export interface MultipartBlobs {
  /** Starts an upload to `key`; resolves to its upload id. The object's type becomes `contentType` when given. */
  create(key: string, opts?: { contentType?: string }): Promise<string>;
  /**
   * Presigned UploadPart URLs, one per number in `partNumbers` (in that order), valid `expiresInSeconds`. Throws
   * {@link MultipartError} `InvalidArgument` for a number outside 1…10,000. Does not check that the upload exists.
   */
  presignParts(key: string, uploadId: string, partNumbers: number[], expiresInSeconds: number): Promise<PresignedPart[]>;
  /** A presigned URL for one of the other S3 multipart requests, for clients that speak the S3 protocol themselves. */
  presignRequest(request: MultipartRequest, expiresInSeconds: number): Promise<PresignedRequest>;
  /** The parts stored so far, by ascending part number. Throws `NoSuchUpload`. */
  listParts(key: string, uploadId: string): Promise<UploadedPart[]>;
  /**
   * Joins the listed parts (ascending numbers, ETags as their uploads answered) into the object `key`, atomically and
   * write-once: when `key` already holds an object it is left untouched and {@link BlobExistsError} is thrown. The
   * resulting ETag is S3's multipart form `"<md5 of the parts' binary MD5s>-<number of parts>"`. Parts not listed are
   * discarded; afterwards the upload id is gone. Throws `InvalidArgument`, `InvalidPartOrder`, `InvalidPart`,
   * `EntityTooSmall`, `NoSuchUpload`, {@link BlobSizeError} (see {@link CompleteOptions.expectedSize}).
   */
  complete(key: string, uploadId: string, parts: CompletedPartRef[], opts?: CompleteOptions): Promise<BlobStat>;
  /** Discards the upload and its parts; an unknown (or already finished) upload is not an error. */
  abort(key: string, uploadId: string): Promise<void>;
  /** Unfinished uploads initiated before `olderThan` (every one of them, in no particular order), for the sweeper. */
  staleUploads(olderThan: Date): AsyncIterable<StaleUpload>;
}

/**
 * Checks a completion list against S3's rules that need no stored state: at least one part, numbers integers in
 * 1…10,000 (`InvalidArgument`), strictly ascending (`InvalidPartOrder`). Throws {@link MultipartError}.
 */
export function assertCompletionList(parts: readonly CompletedPartRef[]): void {
  if (parts.length === 0) throw new MultipartError('InvalidArgument', 'The completion list must name at least one part.');
  let previous = 0;
  for (const { partNumber } of parts) {
    assertPartNumber(partNumber);
    if (partNumber <= previous) {
      throw new MultipartError('InvalidPartOrder', 'The list of parts was not in ascending order. Parts must be ordered by part number.', partNumber);
    }
    previous = partNumber;
  }
}

/** Throws {@link MultipartError} `InvalidArgument` unless `n` is an integer in 1…{@link MULTIPART_MAX_PARTS}. */
export function assertPartNumber(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MULTIPART_MAX_PARTS) {
    throw new MultipartError('InvalidArgument', `Part number must be an integer between 1 and ${MULTIPART_MAX_PARTS}, inclusive.`);
  }
}

/** An ETag without surrounding quotes, lower-cased (how S3 compares a completion list's ETags with its parts). */
export function bareEtag(etag: string): string {
  return etag.trim().replace(/^"+|"+$/g, '').toLowerCase();
}

/**
 * Where file bytes live. Keys are generated by the server (`[A-Za-z0-9/_-]`, no `..`), never from client input.
 * Every implementation must pass the contract suite in `test/blobs/blob-store-contract.ts`.
 */
export interface BlobStore {
  /** `local` or `s3`. */
  readonly kind: string;
  /**
   * True when every PUT to a URL of {@link presignPut} goes through this server, which refuses it once the file's
   * row is gone (local store): deleting the row revokes the URL. False when the store accepts such a PUT by itself
   * until the URL expires (S3): a removed file's key must be deleted again once its URL is dead.
   */
  readonly revocableUploadUrls: boolean;
  /**
   * True when every object is a plain file at `<root>/<key>` that a web server in front can send by itself
   * (`server.accelRedirect`); absent or false otherwise.
   */
  readonly filesAtKeys?: boolean;
  /**
   * True when the store's presigned URLs point at this server (`/_blobs/…`, the local store), which must then verify
   * and receive them: such a store implements the endpoint side too (`LocalBlobStore`, see `servesSignedUrls()` in
   * `local-store.ts`). Absent when clients talk to the store itself (S3).
   */
  readonly servesSignedUrls?: boolean;
  /**
   * Removes leftovers of uploads that died with a crashed process (temp files) whose last write is more than
   * `olderThanMs` before the clock's now, never touching uploads in progress; resolves to the number removed.
   * Absent on stores that keep no such leftovers.
   */
  cleanupTemp?(olderThanMs: number): Promise<number>;
  /**
   * Streams `body` into `key` atomically: the object becomes visible only once complete.
   * With `expectedSize`, stops reading as soon as the body exceeds it and throws {@link BlobSizeError}
   * (also when it is shorter); an error or abort of `body` rejects; in every failure nothing is stored.
   * The caller owns `body` (it is consumed, not closed early, except on failure).
   * With `ifAbsent` the check and the placement are one atomic step: of several puts racing for an absent key exactly
   * one wins, and an existing object (a confirmed upload) is never replaced.
   */
  put(key: string, body: Readable, opts?: PutOptions): Promise<BlobStat>;
  /**
   * Opens the object (or the inclusive `range` of it) for reading. The caller must consume or destroy the stream.
   * Throws {@link BlobNotFoundError} when missing. The range must lie within the object (callers check with stat).
   */
  get(key: string, range?: ByteRange): Promise<{ stream: Readable; stat: BlobStat }>;
  /** The object's size/etag/mtime, or null when missing. */
  stat(key: string): Promise<BlobStat | null>;
  /** Removes the object; a missing object is not an error. */
  delete(key: string): Promise<void>;
  /** Every object under `prefix` (all when omitted), for garbage collection. */
  list(prefix?: string): AsyncIterable<BlobListEntry>;
  /** A URL the client PUTs exactly `size` bytes to. */
  presignPut(input: PresignPutInput): Promise<PresignedRequest>;
  /** A short-lived download URL, or null when the store has none (the local store serves bytes itself). */
  presignGet(input: PresignGetInput): Promise<PresignedRequest | null>;
  /** Resolves when the store is reachable and usable; throws an Error naming the problem otherwise. */
  check(): Promise<void>;
  /** Releases resources; idempotent. */
  close(): Promise<void>;
  /** S3-style multipart uploads, when the store offers them (both built-in stores do). */
  readonly multipart?: MultipartBlobs;
}
