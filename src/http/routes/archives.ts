import { fileBatches, replayFiles } from '../../core/file-batches.js';
import { openConfirmedBlob } from '../../core/files.js';
import { servable } from '../../core/scan.js';
import { createZipStream, uniqueZipNamesAsync, zipSizeAsync } from '../../zip/zip-stream.js';
import type { ApiContext } from '../context.js';
import { nodeStreamResponse } from '../node-body.js';
import { type RouteDef, defineRoute } from '../route.js';
import { errorSchema } from '../schemas.js';
import { contentDisposition } from '../send-file.js';

/**
 * `GET /dropzones/:id/zip` (dropzone.zip): every uploaded file of the dropzone that may be served (see core/scan.ts) as one ZIP, streamed object after
 * object (stored, ZIP64 when needed) with an exact Content-Length; duplicate names are made unique. Files are walked
 * twice in batches through the port (never all rows at once): first for names, sizes and positions (the length),
 * then again while streaming; names made unique and the length computed in slices that yield to the event loop, so a
 * dropzone of many files does not stall other requests. A file removed between the walks aborts the archive. Each entry is checked against the ETag recorded at
 * confirm when it is opened; a mismatch cuts the archive off (the client sees a failed transfer) instead of
 * delivering bytes nobody confirmed.
 */
export function archiveRoutes(ctx: ApiContext): RouteDef[] {
  const log = ctx.log.child('zip');
  return [
    defineRoute({
      method: 'get',
      path: '/dropzones/:id/zip',
      operationId: 'downloadDropzoneZip',
      summary: 'Download all uploaded files of a dropzone as a ZIP (dropzone.zip)',
      tags: ['dropzones'],
      security: ['ApiKeyAuth', 'BearerAuth', 'DropzoneAuth'],
      head: true,
      responses: {
        200: { description: 'The archive', contentType: 'application/zip' },
        403: { description: 'Missing permission', schema: errorSchema },
        404: { description: 'Not found', schema: errorSchema },
      },
      handler: async (c) => {
        const dz = await ctx.dropzones.get(c.get('principal'), c.req.param('id')!, 'dropzone.zip');
        // first walk, in batches: what the archive's length depends on (names, sizes) and where each file sits in the
        // order; no file rows are kept. The second walk (replayFiles) streams exactly these files.
        const names: string[] = [];
        const sizes: number[] = [];
        const keys = { createdAt: [] as number[], id: [] as string[], length: 0 };
        for await (const batch of fileBatches(ctx.meta, dz.id, { uploadedOnly: true })) {
          for (const f of batch) {
            // files still scanning, quarantined or held after a failed scan are left out
            if (!servable(ctx.config, f)) continue;
            names.push(f.name);
            sizes.push(f.size);
            keys.createdAt.push(f.createdAt);
            keys.id.push(f.id);
          }
        }
        keys.length = keys.id.length;
        const unique = await uniqueZipNamesAsync(names);
        const planned = unique.map((name, i) => ({ name, size: sizes[i]! }));
        async function* entries() {
          let i = 0;
          for await (const f of replayFiles(ctx.meta, dz.id, keys, { uploadedOnly: true })) {
            // quarantined (or otherwise held) since the first walk: cut the archive off rather than serve it
            if (!servable(ctx.config, f)) throw new Error('a file of the archive may no longer be served');
            yield {
              name: unique[i++]!,
              size: f.size,
              mtime: new Date(f.confirmedAt ?? f.createdAt),
              // only the confirmed bytes: an object whose ETag changed aborts the archive rather than being served
              open: async () => (await openConfirmedBlob(ctx.blobs, f)).stream,
            };
          }
        }
        const length = await zipSizeAsync(planned);
        const headers = {
          'Content-Type': 'application/zip',
          'Content-Length': String(length),
          'Content-Disposition': contentDisposition(`${dz.name || dz.code}.zip`),
          'Cache-Control': 'private, no-store',
        };
        if (c.req.method === 'HEAD') return new Response(null, { status: 200, headers });
        const zip = createZipStream(entries(), { onError: (err) => log.error('zip aborted', { err, files: keys.length }) });
        return nodeStreamResponse(c, zip, { status: 200, headers });
      },
    }),
  ];
}
