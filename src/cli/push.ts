import { DropzoneClient } from '../client/api.js';
import { type UploadTarget, apiTarget, pageTarget, parsePageUrl } from '../client/targets.js';
import { uploadFile } from '../client/transfer.js';
import { CLIENT_FLAGS, CLIENT_FLAGS_HELP, parseClientArgs, clientFrom, parallelism, transferAll } from './client-common.js';
import { type CliIo, UsageError } from './common.js';

/** Help of `dropzone push`. */
export const PUSH_HELP = `Usage: dropzone push <files…> --to <dropzone id | page URL> [options]

Uploads files into a dropzone, several at a time, with a progress bar per file on a terminal (plain lines
otherwise). A file that fails (unreadable, too large, dropzone full, …) gets its own error and the others go on;
the exit code is 1 when any failed. Each uploaded file's id is printed.

--to is either a dropzone id (its _id or shareId; needs --url and an API key) or the dropzone's page URL
https://host/d/<code>, which needs neither: the page link alone allows uploading.

Options:
      --to <id|url>     where to upload (required)
  -j, --parallel <n>    files at a time, 1-16 (default 3)
${CLIENT_FLAGS_HELP}`;

/** `dropzone push <files…> --to …`: exit 0 when every file was uploaded, 1 when any failed, 2 on usage errors. */
export async function pushCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseClientArgs(args, { ...CLIENT_FLAGS, to: { type: 'string' }, parallel: { type: 'string', short: 'j' } });
  if (values.help) {
    io.out(PUSH_HELP);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('push needs at least one file');
  if (!values.to) throw new UsageError('push needs --to <dropzone id | page URL>');
  const parallel = parallelism(values.parallel);
  let target: UploadTarget;
  if (parsePageUrl(values.to)) {
    target = await pageTarget(values.to);
  } else {
    if (/^https?:\/\//i.test(values.to)) throw new UsageError(`--to: "${values.to}" is not a dropzone page URL (https://host/d/<code>)`);
    const client: DropzoneClient = clientFrom(values, io);
    target = apiTarget(client, values.to);
  }

  return transferAll(io, positionals, { parallel, verb: 'uploaded', labelOf: (file) => file }, async (file, _i, view) => {
    const { fileId } = await uploadFile(target, file, { start: (t) => view.start(t), progress: (d) => view.update(d) });
    return `→ ${fileId}`;
  });
}
