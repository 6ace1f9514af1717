/**
 * The one catalog of errors the API can answer with. Domain code throws `AppError`;
 * the single HTTP error handler renders it as `{status:"error", message, data?}` with its HTTP status.
 */
export const ERRORS = {
  INVALID_JSON: { status: 400, message: 'Request body is not valid JSON.' },
  VALIDATION: { status: 400, message: 'Request is invalid.' },
  UNKNOWN_PERMISSION: { status: 400, message: 'Unknown permission.' },
  CANNOT_SHRINK: { status: 400, message: 'A dropzone can only be extended, not reduced.' },
  MULTIPART_UNSUPPORTED: { status: 400, message: 'This server\'s storage backend does not offer multipart uploads; use a single PUT.' },
  INVALID_PART: { status: 400, message: 'A listed part was not uploaded, or its ETag does not match the stored part.' },
  INVALID_PART_ORDER: { status: 400, message: 'The parts must be listed in ascending part-number order.' },
  PART_TOO_SMALL: { status: 400, message: 'A part other than the last is smaller than the 5 MiB minimum.' },
  PART_TOO_LARGE: { status: 400, message: 'A part is larger than the 5 GiB maximum.' },
  MISSING_IDS: { status: 400, message: 'Missing dropzoneId or fileId.' },
  WEBHOOK_TARGET_REFUSED: { status: 400, message: 'This webhook URL is not an allowed target.' },
  UNAUTHENTICATED: { status: 401, message: 'Missing or invalid credentials.' },
  INSUFFICIENT_GB_MONTHS: { status: 402, message: 'Not enough GB-months.' },
  FORBIDDEN: { status: 403, message: 'You do not have permission to do this.' },
  NO_SUCH_UPLOAD: {
    status: 404,
    message: 'No such multipart upload for this file (never started, aborted, or replaced); start one again to continue.',
  },
  DROPZONE_NOT_FOUND: { status: 404, message: 'Dropzone not found.' },
  FILE_NOT_FOUND: { status: 404, message: 'File not found.' },
  APIKEY_NOT_FOUND: { status: 404, message: 'API key not found.' },
  WEBHOOK_NOT_FOUND: { status: 404, message: 'Webhook subscription not found.' },
  WEBHOOKS_DISABLED: { status: 404, message: 'Webhooks are not enabled on this server (webhooks.enabled).' },
  TOO_MANY_WEBHOOKS: { status: 409, message: 'This API key holds the most webhook subscriptions allowed (webhooks.maxPerKey).' },
  NOT_UPLOADED: { status: 409, message: 'The file has not been uploaded yet.' },
  SIZE_MISMATCH: { status: 409, message: 'The uploaded object does not have the declared size.' },
  ALREADY_UPLOADED: { status: 409, message: 'The file is already uploaded; its bytes cannot change.' },
  UNLIMITED_RECEIVER: { status: 409, message: 'The receiving key has an unlimited balance: GB-months sent to it would be lost.' },
  FILE_SCANNING: { status: 409, message: 'The file is being checked for viruses; try again shortly.' },
  FILE_QUARANTINED: { status: 409, message: 'The file was found infected and is quarantined; it is never served.' },
  FILE_SCAN_FAILED: { status: 409, message: 'The file could not be checked for viruses; it is held and not served.' },
  OBJECT_CHANGED: { status: 409, message: 'The stored object changed after it was confirmed.' },
  DROPZONE_EXPIRED: { status: 410, message: 'This dropzone has expired.' },
  UPLOAD_EXPIRED: { status: 410, message: 'This upload has expired.' },
  FILE_TOO_LARGE: { status: 413, message: 'The file is larger than allowed.' },
  DROPZONE_FULL: { status: 413, message: 'Not enough space left in the dropzone.' },
  TOO_MANY_FILES: { status: 413, message: 'The dropzone holds the most files allowed.' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'Request body too large.' },
  ROUTE_NOT_FOUND: { status: 404, message: 'No such route.' },
  REQUEST_REJECTED: { status: 400, message: 'Request rejected.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Content-Type must be application/json.' },
  TOO_MANY_PENDING: { status: 429, message: 'Too many uploads in progress from this address; finish or cancel some first.' },
  /** Not an answer anyone receives: recorded in the access log when the client went away before its request was complete. */
  CLIENT_CLOSED: { status: 499, message: 'The client closed the connection before the request was complete.' },
  INTERNAL: { status: 500, message: 'Internal server error.' },
  STORAGE_FULL: { status: 507, message: "The server's storage is full; try again later." },
} as const satisfies Record<string, { status: number; message: string }>;

/** A stable error code from {@link ERRORS}. */
export type ErrorCode = keyof typeof ERRORS;

/**
 * An expected failure with a stable `code`, an HTTP `status` and a user-facing `message`.
 * `data` carries details for clients (for example the offending field); it must never hold secrets.
 */
export class AppError extends Error {
  override name = 'AppError';
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly data?: Record<string, unknown>,
  ) {
    super(message ?? ERRORS[code].message);
    this.status = ERRORS[code].status;
  }
}

/** Error codes of a full disk or exhausted quota: SQLite's, and the system's (`ENOSPC`, `EDQUOT`). */
const STORAGE_FULL_CODES = new Set(['SQLITE_FULL', 'SQLITE_IOERR_SHMSIZE', 'ENOSPC', 'EDQUOT']);

/**
 * True when `err` (or an error in its `cause` chain) says the storage is full: SQLite's `SQLITE_FULL` (and
 * `SQLITE_IOERR_SHMSIZE`, the shared-memory file that cannot grow), or `ENOSPC`/`EDQUOT` from the filesystem.
 */
export function isStorageFull(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && STORAGE_FULL_CODES.has(code)) return true;
  }
  return false;
}
