/**
 * Moving bytes between local files and a Dropzone server: uploads stream a file from disk to its signed URL, downloads
 * stream a response to disk, both counting bytes for progress. Memory stays bounded whatever the file size.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { link, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FetchLike, FileItem } from './api.js';
import { networkError } from './api.js';
import type { UploadTarget } from './targets.js';

/** Progress callbacks of a transfer: `start` once the size is known, then `progress` with the bytes moved so far. */
export interface TransferEvents {
  start?: (total: number) => void;
  progress?: (done: number) => void;
}

/** A file this machine could not read or the server refused, with a message meant for the user. */
export class TransferError extends Error {
  override name = 'TransferError';
}

/** A pass-through stream that reports the running byte count. */
function counter(onBytes: (done: number) => void): Transform {
  let done = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      done += chunk.length;
      onBytes(done);
      cb(null, chunk);
    },
  });
}

const TYPES: Record<string, string> = {
  '.txt': 'text/plain',
  '.csv': 'text/csv',
  '.html': 'text/html',
  '.md': 'text/markdown',
  '.json': 'application/json',
  '.xml': 'application/xml',
  '.pdf': 'application/pdf',
  '.zip': 'application/zip',
  '.gz': 'application/gzip',
  '.tar': 'application/x-tar',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.svg': 'image/svg+xml',
  '.mp3': 'audio/mpeg',
  '.mp4': 'video/mp4',
  '.mov': 'video/quicktime',
  '.docx': 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  '.xlsx': 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
};

/** A content type from the file name's extension; `application/octet-stream` when unknown. */
export function contentTypeOf(path: string): string {
  return TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
}

/** The `<Message>` (or `<Code>`) of an S3-style XML error body, if any. */
function storageMessage(xml: string): string | undefined {
  const m = /<Message>([^<]*)<\/Message>/.exec(xml) ?? /<Code>([^<]*)<\/Code>/.exec(xml);
  return m?.[1];
}

/**
 * Uploads one file: opens it (so an unreadable file fails before any space is reserved), asks `target` for an upload
 * URL, PUTs the bytes streamed from disk with exactly the headers the server gave, and confirms. When anything after
 * the reservation fails, the pending upload is cancelled so its space is released. Resolves with the confirmed file id.
 */
export async function uploadFile(target: UploadTarget, path: string, events: TransferEvents = {}, doFetch: FetchLike = fetch): Promise<{ fileId: string; size: number }> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    throw new TransferError(readProblem(e));
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new TransferError('not a regular file');
    const size = st.size;
    events.start?.(size);
    const ticket = await target.requestUpload({ name: basename(path), type: contentTypeOf(path), size });
    try {
      const source = size > 0 ? handle.createReadStream({ start: 0, end: size - 1, autoClose: false }) : Readable.from([]);
      const body = source.pipe(counter((done) => events.progress?.(done)));
      source.on('error', (e: Error) => body.destroy(e));
      let res: Response;
      try {
        res = await doFetch(ticket.signedUrl, {
          method: 'PUT',
          headers: ticket.headers,
          body: Readable.toWeb(body) as ReadableStream,
          duplex: 'half',
        } as RequestInit);
      } catch (e) {
        throw networkError(ticket.signedUrl, e);
      }
      const text = await res.text();
      if (res.status < 200 || res.status > 299) {
        throw new TransferError(`the storage refused the bytes (HTTP ${res.status}${storageMessage(text) ? `: ${storageMessage(text)}` : ''})`);
      }
      await target.confirm(ticket.fileId);
      return { fileId: ticket.fileId, size };
    } catch (e) {
      await target.cancel(ticket.fileId).catch(() => undefined);
      throw e;
    }
  } finally {
    await handle.close();
  }
}

function readProblem(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied (cannot read the file)';
  if (code === 'EISDIR') return 'is a directory';
  return (e as Error)?.message ?? String(e);
}

/**
 * Streams `res`'s body to `dest`: first to a temporary file beside it, then moved into place. Without `force` an
 * existing `dest` is never replaced, even one created while the download ran. A body shorter than its Content-Length
 * fails. Resolves with the bytes written.
 */
export async function saveResponse(res: Response, dest: string, opts: { force?: boolean } & TransferEvents = {}): Promise<number> {
  if (!res.body) throw new TransferError('the server sent no body');
  const header = res.headers.get('content-length');
  const expected = header !== null && /^\d+$/.test(header) ? Number(header) : undefined;
  opts.start?.(expected ?? 0);
  const tmp = join(dirname(dest), `.${basename(dest)}.${randomBytes(6).toString('hex')}.part`);
  let written = 0;
  try {
    await pipeline(
      Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
      counter((done) => {
        written = done;
        opts.progress?.(done);
      }),
      createWriteStream(tmp, { flags: 'wx' }),
    );
    if (expected !== undefined && written !== expected) throw new TransferError(`the download stopped after ${written} of ${expected} bytes`);
    if (opts.force) {
      await rename(tmp, dest);
    } else {
      // link() refuses to replace an existing file, atomically.
      try {
        await link(tmp, dest);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new TransferError(`${dest} exists; pass --force to overwrite it`);
        throw e;
      }
      await unlink(tmp);
    }
    return written;
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/** A file name safe to create in one directory: no path separators, control characters, `.` or `..`. */
export function localName(name: string, fallback: string): string {
  const cleaned = name.replace(/[/\\\x00-\x1f\x7f]/g, '_').trim();
  return cleaned === '' || cleaned === '.' || cleaned === '..' ? fallback : cleaned;
}

/** Local names for the files of one pull: safe, and unique (`name (2).ext` for the second file of the same name). */
export function localNames(files: Pick<FileItem, '_id' | 'name'>[]): string[] {
  const used = new Set<string>();
  return files.map((f) => {
    const base = localName(f.name, f._id);
    let name = base;
    const ext = extname(base);
    const stem = ext && ext !== base ? base.slice(0, -ext.length) : base;
    for (let i = 2; used.has(name.toLowerCase()); i++) name = `${stem} (${i})${ext !== base ? ext : ''}`;
    used.add(name.toLowerCase());
    return name;
  });
}

/** Runs `fn` over `items`, at most `limit` at a time; resolves when all have settled (never rejects for one item). */
export async function runPool<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = { status: 'fulfilled', value: await fn(items[i], i) };
      } catch (e) {
        results[i] = { status: 'rejected', reason: e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
