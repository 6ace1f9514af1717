import { VERSION } from '../version.js';
import type { CliIo } from './common.js';

/** `dropzone version`: prints the program version and the Node.js it runs on. */
export async function versionCommand(_args: string[], io: CliIo): Promise<number> {
  io.out(`dropzone-server ${VERSION} (node ${process.version}, ${process.platform}-${process.arch})`);
  return 0;
}
