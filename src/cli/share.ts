import { CLIENT_FLAGS, CLIENT_FLAGS_HELP, parseClientArgs, clientFrom } from './client-common.js';
import { type CliIo, UsageError } from './common.js';

/** Help of `dropzone share`. */
export const SHARE_HELP = `Usage: dropzone share <file id> --public [options]

Makes a file downloadable by anybody without credentials (grants file.download to "anyone") and prints its
public link, <url>/cdn/<file id>/download. Undo it with DELETE /api/v1/files/<file id>/permissions.

Options:
      --public          grant file.download to anyone (required: it is what share does)
${CLIENT_FLAGS_HELP}`;

/** `dropzone share <fileId> --public`: prints the public URL; exit 1 when the server refuses, 2 on usage errors. */
export async function shareCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseClientArgs(args, { ...CLIENT_FLAGS, public: { type: 'boolean' } });
  if (values.help) {
    io.out(SHARE_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('share needs exactly one file id');
  if (!values.public) throw new UsageError('share needs --public (the file becomes downloadable by anybody who has the link)');
  const client = clientFrom(values, io);
  await client.grantFile(positionals[0], 'anyone', ['file.download']);
  io.out(client.publicDownloadUrl(positionals[0]));
  return 0;
}
