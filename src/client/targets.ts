import { type DropzoneClient, type FetchLike, type UploadSpec, type UploadTicket, networkError, normalizeBaseUrl, readEnvelope } from './api.js';

/**
 * Where `push` puts files: a dropzone addressed through the API with a key, or a dropzone page (`https://host/d/<code>`)
 * through the page's own API with the page token embedded in its HTML (no key needed).
 */
export interface UploadTarget {
  /** Reserves the space; answers where to PUT the bytes. */
  requestUpload(spec: UploadSpec): Promise<UploadTicket>;
  /** Confirms the upload once the bytes are there. */
  confirm(fileId: string): Promise<void>;
  /** Cancels a pending upload (releases its space); best effort. */
  cancel(fileId: string): Promise<void>;
}

/** A dropzone addressed by its id (`_id` or shareId, passed through as given) with an API key. */
export function apiTarget(client: DropzoneClient, dropzoneId: string): UploadTarget {
  return {
    requestUpload: (spec) => client.requestUpload(dropzoneId, spec),
    confirm: async (fileId) => {
      await client.confirm(fileId);
    },
    cancel: (fileId) => client.deleteFile(fileId),
  };
}

/** `https://host[/prefix]/d/<code>` → the base URL and the code, or undefined when `text` is not a page URL. */
export function parsePageUrl(text: string): { base: string; code: string } | undefined {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
  const m = /^(.*)\/d\/([A-Za-z0-9_-]+)\/?$/.exec(u.pathname);
  if (!m) return undefined;
  return { base: normalizeBaseUrl(`${u.origin}${m[1]}`), code: m[2] };
}

/**
 * Opens a dropzone page: fetches its HTML, reads the page token from the embedded `dz-config` JSON, and returns a
 * target that uploads through `/d/<code>/api/…`. A missing or expired dropzone or a page that does not allow uploading
 * throws an Error saying so.
 */
export async function pageTarget(pageUrl: string, doFetch: FetchLike = fetch): Promise<UploadTarget> {
  const page = parsePageUrl(pageUrl);
  if (!page) throw new Error(`not a dropzone page URL: "${pageUrl}" (expected https://host/d/<code>)`);
  const url = `${page.base}/d/${page.code}`;
  let res: Response;
  try {
    res = await doFetch(url, { headers: { accept: 'text/html' } });
  } catch (e) {
    throw networkError(url, e);
  }
  const html = await res.text();
  if (res.status === 404) throw new Error('there is no dropzone at this page URL (it may have been mistyped or deleted)');
  if (res.status === 410) throw new Error('this dropzone has expired');
  if (!res.ok) throw new Error(`the dropzone page answered HTTP ${res.status}`);
  const m = /<script type="application\/json" id="dz-config">([\s\S]*?)<\/script>/.exec(html);
  let cfg: { token?: string; permissions?: string[] } | undefined;
  try {
    cfg = m ? JSON.parse(m[1]) : undefined;
  } catch {
    cfg = undefined;
  }
  if (!cfg?.token) throw new Error(`${url} is not a dropzone page of this server (no page token found)`);
  if (!cfg.permissions?.includes('dropzone.upload')) throw new Error('this dropzone page does not allow uploading');
  const token = cfg.token;
  const apiBase = `${url}/api`;
  const call = async <T>(method: string, path: string, what: string, body?: unknown): Promise<T> => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let r: Response;
    try {
      r = await doFetch(apiBase + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw networkError(apiBase, e);
    }
    return readEnvelope<T>(r, what);
  };
  return {
    requestUpload: (spec) => call('POST', '/uploads', 'requesting an upload URL', spec),
    confirm: async (fileId) => {
      await call('POST', `/uploads/${encodeURIComponent(fileId)}/confirm`, 'confirming the upload');
    },
    cancel: async (fileId) => {
      await call('DELETE', `/uploads/${encodeURIComponent(fileId)}`, 'cancelling the upload');
    },
  };
}
