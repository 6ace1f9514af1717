import { createContext } from '../context.js';
import { systemClock } from '../core/clock.js';
import { createLogger } from '../log/logger.js';
import { createBlobStore, openMetadata } from '../server.js';
import { CONFIG_FLAGS, CONFIG_FLAGS_HELP, type CliIo, configFrom, parse } from './common.js';

/** Help of `dropzone gc`. */
export const GC_HELP = `Usage: dropzone gc [options]

Removes, now: expired dropzones, pending uploads not confirmed in time, upload temp files a crashed process
left (idle for sweeper.tempMaxIdleSeconds), and blobs that no file refers to (older than sweeper.gcGraceSeconds,
so uploads in progress are safe).

Options:
${CONFIG_FLAGS_HELP}`;

/** `dropzone gc`: exit 0 with a summary, 1 when the blob store is unreachable. */
export async function gcCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, CONFIG_FLAGS);
  if (values.help) {
    io.out(GC_HELP);
    return 0;
  }
  const config = configFrom(values, io);
  const meta = await openMetadata(config);
  const clock = systemClock();
  const blobs = await createBlobStore(config, meta, clock, () => config.server.publicUrl || 'http://localhost').catch(async (e) => {
    await meta.close();
    throw e;
  });
  try {
    try {
      await blobs.check();
    } catch (e) {
      io.err((e as Error).message);
      return 1;
    }
    const ctx = createContext({ config, meta, blobs, clock, log: createLogger('warn') });
    const swept = await ctx.sweeper.sweep();
    const gc = await ctx.sweeper.gc();
    io.out(
      `Removed ${swept.expiredDropzones} expired dropzone(s), ${swept.stalePending} stale pending upload(s), ` +
        `${swept.tempFilesRemoved} stale temp file(s), ${swept.multipartAborted} abandoned multipart upload(s), ${gc.orphansDeleted} orphaned blob(s) of ${gc.scanned} scanned.`,
    );
    return 0;
  } finally {
    await blobs.close();
    await meta.close();
  }
}
