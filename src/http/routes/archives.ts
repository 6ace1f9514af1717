import { allFilesInBatches } from '../../core/file-batches.js';
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
 * object (stored, ZIP64 when needed) with an exact Content-Length; duplicate names are made unique. Rows are read,
 * names made unique and the length computed in slices that yield to the event loop, so a dropzone of many files
 * does not stall other requests while the archive is prepared. Each entry is checked against the ETag recorded at
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
        const dz = await ctx.dropzones.get(c.var.principal, c.req.param('id')!, 'dropzone.zip');
        // files still scanning, quarantined or held after a failed scan are left out
        const files = (await allFilesInBatches(ctx.meta, dz.id, { uploadedOnly: true })).filter((f) => servable(ctx.config, f));
        const names = await uniqueZipNamesAsync(files.map((f) => f.name));
        const entries = files.map((f, i) => ({
          name: names[i],
          size: f.size,
          mtime: new Date(f.confirmedAt ?? f.createdAt),
          // only the confirmed bytes: an object whose ETag changed aborts the archive rather than being served
          open: async () => (await openConfirmedBlob(ctx.blobs, f)).stream,
        }));
        const length = await zipSizeAsync(entries);
        const headers = {
          'Content-Type': 'application/zip',
          'Content-Length': String(length),
          'Content-Disposition': contentDisposition(`${dz.name || dz.code}.zip`),
          'Cache-Control': 'private, no-store',
        };
        if (c.req.method === 'HEAD') return new Response(null, { status: 200, headers });
        const zip = createZipStream(entries, { onError: (err) => log.error('zip aborted', { err, files: files.length }) });
        return nodeStreamResponse(c, zip, { status: 200, headers });
      },
    }),
  ];
}
