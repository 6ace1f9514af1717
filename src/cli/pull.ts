import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { TransferError, localName, localNames, saveResponse } from '../client/transfer.js';
import { CLIENT_FLAGS, CLIENT_FLAGS_HELP, parseClientArgs, clientFrom, parallelism, problem, transferAll } from './client-common.js';
import { type CliIo, UsageError } from './common.js';
import { createRenderer } from './progress.js';

/** Help of `dropzone pull`. */
export const PULL_HELP = `Usage: dropzone pull <dropzone id> [options]

Downloads every uploaded file of a dropzone into a directory (the current one unless --out), several at a time,
with progress; or, with --zip, the whole dropzone as one ZIP file. Existing files are never overwritten unless
--force: such a file is reported and skipped, and the exit code is 1 when any file failed.

Options:
  -o, --out <dir>       directory to write into (created if missing; default: the current directory)
      --zip             one ZIP archive of all files (named after the dropzone) instead of the files
  -f, --force           overwrite existing files
  -j, --parallel <n>    files at a time, 1-16 (default 3)
${CLIENT_FLAGS_HELP}`;

/** The file name of a Content-Disposition header (RFC 6266 `filename*` first), or undefined. */
export function dispositionName(header: string | null): string | undefined {
  if (!header) return undefined;
  const star = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(header);
  if (star) {
    try {
      return decodeURIComponent(star[1].trim());
    } catch {
      /* fall back to the plain name */
    }
  }
  return /filename\s*=\s*"([^"]*)"/i.exec(header)?.[1] ?? /filename\s*=\s*([^;\s]+)/i.exec(header)?.[1];
}

/** `dropzone pull <id>`: exit 0 when everything was written, 1 when anything failed, 2 on usage errors. */
export async function pullCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseClientArgs(args, { ...CLIENT_FLAGS, out: { type: 'string', short: 'o' }, zip: { type: 'boolean' }, force: { type: 'boolean', short: 'f' }, parallel: { type: 'string', short: 'j' } });
  if (values.help) {
    io.out(PULL_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('pull needs exactly one dropzone id');
  const parallel = parallelism(values.parallel);
  const client = clientFrom(values, io);
  const id = positionals[0];
  const out = resolve(values.out ?? '.');
  if (existsSync(out) && !statSync(out).isDirectory()) throw new UsageError(`--out: ${out} is not a directory`);
  const force = values.force === true;

  if (values.zip) {
    const res = await client.zip(id);
    const name = localName(dispositionName(res.headers.get('content-disposition')) ?? 'dropzone.zip', 'dropzone.zip');
    const dest = join(out, name);
    if (existsSync(dest) && !force) {
      await res.body?.cancel();
      io.err(`${dest} exists; pass --force to overwrite it.`);
      return 1;
    }
    mkdirSync(out, { recursive: true });
    const progress = createRenderer(io, 'downloaded');
    const view = progress.item(name);
    try {
      await saveResponse(res, dest, { force, start: (t) => view.start(t), progress: (d) => view.update(d) });
      view.succeed(`→ ${dest}`);
    } catch (e) {
      view.fail(problem(e));
      return 1;
    } finally {
      progress.stop();
    }
    return 0;
  }

  const files = (await client.listFiles(id)).filter((f) => f.meta.s3Status === 'uploaded');
  if (files.length === 0) {
    io.out('No uploaded files in this dropzone.');
    return 0;
  }
  mkdirSync(out, { recursive: true });
  const names = localNames(files);
  return transferAll(io, files, { parallel, verb: 'downloaded', labelOf: (_file, i) => names[i] }, async (file, i, view) => {
    const dest = join(out, names[i]);
    if (existsSync(dest) && !force) throw new TransferError(`${dest} exists; pass --force to overwrite it`);
    const res = await client.download(file._id);
    await saveResponse(res, dest, { force, start: (t) => view.start(t), progress: (d) => view.update(d) });
    return `→ ${dest}`;
  });
}
