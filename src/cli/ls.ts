import { CLIENT_FLAGS, CLIENT_FLAGS_HELP, parseClientArgs, clientFrom } from './client-common.js';
import { type CliIo, UsageError } from './common.js';
import { formatBytes } from '../util/units.js';

/** Help of `dropzone ls`. */
export const LS_HELP = `Usage: dropzone ls [<dropzone id>] [options]

Without an id: the dropzones the key owns or may see (id, space used, expiry, name).
With a dropzone id (_id or shareId): its files (file id, size, status, name).

Options:
      --json            print the API's JSON instead of a table
${CLIENT_FLAGS_HELP}`;

/** Left-aligned columns separated by two spaces (the last column is not padded). */
function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ').trimEnd());
}

/** `dropzone ls [<id>]`: exit 0, 1 when the server refuses, 2 on usage errors. */
export async function lsCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseClientArgs(args, { ...CLIENT_FLAGS, json: { type: 'boolean' } });
  if (values.help) {
    io.out(LS_HELP);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError('ls takes at most one dropzone id');
  const client = clientFrom(values, io);
  if (positionals.length === 0) {
    const dropzones = await client.listDropzones();
    if (values.json) {
      io.out(JSON.stringify(dropzones, null, 2));
      return 0;
    }
    if (dropzones.length === 0) {
      io.out('No dropzones.');
      return 0;
    }
    const rows = dropzones.map((d) => [d._id, `${formatBytes(d.usedSpace)} / ${formatBytes(d.maxSize)}`, new Date(d.deleteTime).toISOString().slice(0, 16).replace('T', ' '), d.name ?? '']);
    for (const line of table([['ID', 'USED', 'EXPIRES (UTC)', 'NAME'], ...rows])) io.out(line);
    return 0;
  }
  const files = await client.listFiles(positionals[0]);
  if (values.json) {
    io.out(JSON.stringify(files, null, 2));
    return 0;
  }
  if (files.length === 0) {
    io.out('No files.');
    return 0;
  }
  const rows = files.map((f) => [f._id, formatBytes(f.size), f.meta.s3Status, f.name]);
  for (const line of table([['FILE ID', 'SIZE', 'STATUS', 'NAME'], ...rows])) io.out(line);
  return 0;
}
