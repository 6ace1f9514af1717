/**
 * A small typed client of the Dropzone API over `fetch`, used by the command-line client (`dropzone push`, `pull`,
 * `ls`, `rm`, `share`). It knows the API's shapes and error envelope; it draws nothing on a terminal.
 */

/** A file as the API presents it (the FileItem). */
export interface FileItem {
  _id: string;
  name: string;
  size: number;
  type: string;
  meta: { createdAt: string; s3Status: 'pending' | 'uploaded' | string; dropZoneId?: string; dropZoneCode?: string };
}

/** A dropzone as the API presents it (owners see the credential `_id`, others the shareId). */
export interface Dropzone {
  _id: string;
  shareId: string;
  name: string | null;
  maxSize: number;
  maxFileSize: number;
  usedSpace: number;
  deleteTime: number;
  uploadUrl?: string;
}

/** What the server answers to an upload request: where and how to PUT the bytes. */
export interface UploadTicket {
  fileId: string;
  signedUrl: string;
  headers: Record<string, string>;
  expiresAt: number;
}

/** The name, type and size of a file about to be uploaded. */
export interface UploadSpec {
  name: string;
  type: string;
  size: number;
}

/** A failed API call: the HTTP status and the server's own message (and `data` details) when it sent one. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
    readonly data: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** `fetch`, injectable for tests. */
export type FetchLike = typeof fetch;

/** Options of {@link DropzoneClient}. */
export interface ClientOptions {
  /** The server's base URL (`http://host:3000`); a trailing `/api/v1` is accepted and ignored. */
  url: string;
  /** An API key secret, sent as `x-api-key`. */
  key?: string;
  fetch?: FetchLike;
}

/** Strips trailing slashes and an `/api/v1` suffix: `http://h:3000/api/v1/` → `http://h:3000`. */
export function normalizeBaseUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`not a URL: "${url}" (expected e.g. http://127.0.0.1:3000)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`not an http(s) URL: "${url}"`);
  return `${u.origin}${u.pathname.replace(/\/+$/, '').replace(/\/api\/v1$/, '')}`;
}

/** Reads the answer of an API call: the `data` of a success envelope, or throws {@link ApiError} with the server's message. */
export async function readEnvelope<T>(res: Response, what: string): Promise<T> {
  const text = await res.text();
  let body: any;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!res.ok || body?.status !== 'success') {
    const message = typeof body?.message === 'string' ? body.message : `${what} failed: HTTP ${res.status}`;
    throw new ApiError(res.status, message, body?.data && typeof body.data === 'object' ? body.data : {});
  }
  return body.data as T;
}

/** Turns a network failure of `fetch` into an Error that names the host it could not reach. */
export function networkError(url: string, e: unknown): Error {
  const cause = (e as { cause?: { code?: string; message?: string } })?.cause;
  const detail = cause?.code ?? cause?.message ?? (e as Error)?.message ?? String(e);
  let host = url;
  try {
    host = new URL(url).host;
  } catch {
    /* keep the raw text */
  }
  return new Error(`could not reach ${host} (${detail})`);
}

/** The Dropzone API, authenticated with an API key. Ids in `/dropzones/:id` paths are passed through as given (`_id` or shareId). */
export class DropzoneClient {
  readonly baseUrl: string;
  readonly apiUrl: string;
  private readonly key?: string;
  private readonly doFetch: FetchLike;

  constructor(opts: ClientOptions) {
    this.baseUrl = normalizeBaseUrl(opts.url);
    this.apiUrl = `${this.baseUrl}/api/v1`;
    this.key = opts.key;
    this.doFetch = opts.fetch ?? fetch;
  }

  /** A request to `/api/v1${path}` with the key; resolves with the raw Response (network failures become clear Errors). */
  async request(method: string, path: string, init: { body?: unknown; headers?: Record<string, string>; redirect?: RequestRedirect; signal?: AbortSignal } = {}): Promise<Response> {
    const url = this.apiUrl + path;
    const headers: Record<string, string> = { accept: 'application/json', ...init.headers };
    if (this.key) headers['x-api-key'] = this.key;
    let body: string | undefined;
    if (init.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.body);
    }
    try {
      return await this.doFetch(url, { method, headers, body, redirect: init.redirect ?? 'manual', signal: init.signal });
    } catch (e) {
      throw networkError(url, e);
    }
  }

  private async call<T>(method: string, path: string, what: string, body?: unknown): Promise<T> {
    return readEnvelope<T>(await this.request(method, path, { body }), what);
  }

  /** `GET /dropzones`: the dropzones the key owns or may get. */
  listDropzones(): Promise<Dropzone[]> {
    return this.call('GET', '/dropzones', 'listing dropzones');
  }

  /** `GET /dropzones/:id`. */
  getDropzone(id: string): Promise<Dropzone> {
    return this.call('GET', `/dropzones/${encodeURIComponent(id)}`, 'reading the dropzone');
  }

  /** `DELETE /dropzones/:id` (with all its files). */
  async deleteDropzone(id: string): Promise<void> {
    await this.call('DELETE', `/dropzones/${encodeURIComponent(id)}`, 'deleting the dropzone');
  }

  /** `GET /dropzones/:id/files`: pending and uploaded files. */
  listFiles(dropzoneId: string): Promise<FileItem[]> {
    return this.call('GET', `/dropzones/${encodeURIComponent(dropzoneId)}/files`, 'listing files');
  }

  /** `POST /dropzones/:id/files`: reserves the space and answers where to PUT the bytes. */
  requestUpload(dropzoneId: string, spec: UploadSpec): Promise<UploadTicket> {
    return this.call('POST', `/dropzones/${encodeURIComponent(dropzoneId)}/files`, 'requesting an upload URL', spec);
  }

  /** `POST /files/:id/confirm`. */
  confirm(fileId: string): Promise<FileItem> {
    return this.call('POST', `/files/${encodeURIComponent(fileId)}/confirm`, 'confirming the upload');
  }

  /** `DELETE /files/:id` (also cancels a pending upload and releases its space). */
  async deleteFile(fileId: string): Promise<void> {
    await this.call('DELETE', `/files/${encodeURIComponent(fileId)}`, 'deleting the file');
  }

  /** `POST /files/:id/permissions`: grants `permissions` to `publicId` (`anyone` for everybody); answers the grantee's permissions. */
  grantFile(fileId: string, publicId: string, permissions: string[]): Promise<string[]> {
    return this.call('POST', `/files/${encodeURIComponent(fileId)}/permissions`, 'granting permissions', { publicId, permissions });
  }

  /** The public link of a file (works once `anyone` holds `file.download`). */
  publicDownloadUrl(fileId: string): string {
    return `${this.baseUrl}/cdn/${encodeURIComponent(fileId)}/download`;
  }

  /** `GET /files/:id/download`: the streaming Response (a redirect to presigned storage is followed without the key). */
  download(fileId: string, signal?: AbortSignal): Promise<Response> {
    return this.streamed(`/files/${encodeURIComponent(fileId)}/download`, 'downloading the file', signal);
  }

  /** `GET /dropzones/:id/zip`: the streaming ZIP Response. */
  zip(dropzoneId: string, signal?: AbortSignal): Promise<Response> {
    return this.streamed(`/dropzones/${encodeURIComponent(dropzoneId)}/zip`, 'downloading the ZIP', signal);
  }

  /**
   * A GET whose body is bytes. The key goes only to this server: a redirect (S3 presigned GET) is followed by hand,
   * without credentials. A non-2xx answer throws {@link ApiError} with the server's message.
   */
  private async streamed(path: string, what: string, signal?: AbortSignal): Promise<Response> {
    let res = await this.request('GET', path, { headers: { accept: '*/*' }, signal });
    if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
      const location = new URL(res.headers.get('location')!, this.apiUrl + path).toString();
      await res.body?.cancel();
      try {
        res = await this.doFetch(location, { method: 'GET', redirect: 'follow', signal });
      } catch (e) {
        throw networkError(location, e);
      }
    }
    if (!res.ok) await readEnvelope(res, what);
    return res;
  }
}
