import { CLIENT_FLAGS, CLIENT_FLAGS_HELP, parseClientArgs, clientFrom, problem } from './client-common.js';
import { type CliIo, UsageError } from './common.js';

/** Help of `dropzone rm`. */
export const RM_HELP = `Usage: dropzone rm <file id…> [options]
       dropzone rm --dropzone <dropzone id> [options]

Deletes files (their space is released), or a whole dropzone with all its files. Each id gets its own result;
the exit code is 1 when any could not be deleted.

Options:
      --dropzone <id>   delete this dropzone and all its files (needs dropzone.own)
${CLIENT_FLAGS_HELP}`;

/** `dropzone rm …`: exit 0 when everything named was deleted, 1 when anything failed, 2 on usage errors. */
export async function rmCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseClientArgs(args, { ...CLIENT_FLAGS, dropzone: { type: 'string' } });
  if (values.help) {
    io.out(RM_HELP);
    return 0;
  }
  if (values.dropzone !== undefined && positionals.length > 0) throw new UsageError('rm takes either file ids or --dropzone <id>, not both');
  if (values.dropzone === undefined && positionals.length === 0) throw new UsageError('rm needs file ids or --dropzone <id>');
  const client = clientFrom(values, io);
  if (values.dropzone !== undefined) {
    await client.deleteDropzone(values.dropzone);
    io.out('Dropzone deleted with all its files.');
    return 0;
  }
  let failed = 0;
  for (const id of positionals) {
    try {
      await client.deleteFile(id);
      io.out(`${id}: deleted`);
    } catch (e) {
      failed++;
      io.err(`${id}: FAILED: ${problem(e)}`);
    }
  }
  return failed > 0 ? 1 : 0;
}
