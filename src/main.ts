import { ConfigError } from './config/load.js';
import { backupCommand } from './cli/backup.js';
import { clientCommand } from './cli/client-common.js';
import { type CliIo, UsageError, processIo } from './cli/common.js';
import { dbCommand } from './cli/db.js';
import { gcCommand } from './cli/gc.js';
import { keysCommand } from './cli/keys.js';
import { lsCommand } from './cli/ls.js';
import { migrateCommand } from './cli/migrate.js';
import { pullCommand } from './cli/pull.js';
import { pushCommand } from './cli/push.js';
import { rmCommand } from './cli/rm.js';
import { serveCommand } from './cli/serve.js';
import { shareCommand } from './cli/share.js';
import { versionCommand } from './cli/version.js';
import { capMallocArenas, runsServer } from './runtime/malloc-arenas.js';
import { webhooksCommand } from './cli/webhooks.js';

/** Top-level help. */
export const MAIN_HELP = `Usage: dropzone <command> [options]

Commands:
  serve             start the server (default)
  keys              create, list, revoke API keys; set GB-months
  backup <file>     consistent online copy of the database
  gc                remove orphaned blobs and expired uploads now
  migrate           apply pending schema migrations of the configured database
  db copy --from <url> --to <url>
                    copy all metadata between databases (SQLite ⇄ PostgreSQL)
  version           print the version

Client commands (talk to a server: --url/--key or DROPZONE_URL/DROPZONE_API_KEY):
  push <files…> --to <dropzone id | page URL>
                    upload files, several at a time, with progress
  pull <dropzone id> [--zip]
                    download every file (or one ZIP) into a directory
  ls [<dropzone id>]
                    list dropzones, or the files of one
  rm <file id…>     delete files (--dropzone <id>: a whole dropzone)
  share <file id> --public
                    make a file public and print its link
  webhooks list|add|rm|deliveries
                    manage the key's webhook subscriptions and read their delivery log

Run 'dropzone <command> --help' for a command's options.`;

const COMMANDS: Record<string, (args: string[], io: CliIo) => Promise<number>> = {
  serve: serveCommand,
  keys: keysCommand,
  backup: backupCommand,
  gc: gcCommand,
  migrate: migrateCommand,
  db: dbCommand,
  version: versionCommand,
  push: clientCommand(pushCommand),
  pull: clientCommand(pullCommand),
  ls: clientCommand(lsCommand),
  rm: clientCommand(rmCommand),
  share: clientCommand(shareCommand),
  webhooks: clientCommand(webhooksCommand),
};

/**
 * Runs the command line and resolves with the exit code: 0 success, 1 failure, 2 usage or configuration error.
 * Never throws.
 */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const [first, ...rest] = argv;
  if (first === '--help' || first === '-h' || first === 'help') {
    io.out(MAIN_HELP);
    return 0;
  }
  if (first === '--version' || first === '-v') return versionCommand([], io);
  const named = first !== undefined && !first.startsWith('-');
  const command = named ? COMMANDS[first] : serveCommand;
  if (!command) {
    io.err(`dropzone: unknown command "${first}"\n\n${MAIN_HELP}`);
    return 2;
  }
  try {
    return await command(named ? rest : argv, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`dropzone: ${e.message}\nRun 'dropzone ${named ? first : 'serve'} --help' for usage.`);
      return 2;
    }
    if (e instanceof ConfigError) {
      io.err(`dropzone: ${e.message}`);
      return 2;
    }
    io.err(`dropzone: ${(e as Error).message ?? String(e)}`);
    return 1;
  }
}

/** True in the single executable. */
const isSea = (() => {
  try {
    const sea = (process as unknown as { getBuiltinModule?: (n: string) => { isSea?: () => boolean } | undefined }).getBuiltinModule?.('node:sea');
    return sea?.isSea?.() === true;
  } catch {
    return false;
  }
})();

// In the single executable and under `tsx src/main.ts`, this module is the program.
const isEntry = isSea || /[\\/]main\.(ts|js|cjs|mjs)$/.test(process.argv[1] ?? '');

if (isEntry) {
  // the server runs with glibc's malloc arenas capped (re-executes in place once; see malloc-arenas.ts)
  if (runsServer(process.argv.slice(2))) capMallocArenas(isSea);
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`dropzone: ${(err as Error).stack ?? err}\n`);
      process.exit(1);
    },
  );
}
