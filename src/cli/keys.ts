import { createApiKeyService } from '../core/api-keys.js';
import { systemClock } from '../core/clock.js';
import { AppError } from '../core/errors.js';
import { createLogger } from '../log/logger.js';
import { presentApiKey } from '../http/presenters.js';
import { openMetadata } from '../server.js';
import { CONFIG_FLAGS, CONFIG_FLAGS_HELP, type CliIo, UsageError, configFrom, parse } from './common.js';

/** Help of `dropzone keys`. */
export const KEYS_HELP = `Usage: dropzone keys <subcommand> [options]

Manages API keys directly in the database (works while the server runs).

Subcommands:
  create [--name <n>] [--gb-months <x>] [--can-create-keys]
                                create a key; prints its publicId and secret (the secret only now)
  list                          list keys (publicId, name, balance, permissions, revoked)
  revoke <publicId>             revoke a key
  gbmonths <publicId> <amount>  set a key's GB-months balance ("unlimited" for no limit)

Options:
${CONFIG_FLAGS_HELP}`;

/** `dropzone keys …`. Exit 0 on success, 1 when the key does not exist, 2 on usage errors. */
export async function keysCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(
    args,
    { ...CONFIG_FLAGS, name: { type: 'string' }, 'gb-months': { type: 'string' }, 'can-create-keys': { type: 'boolean' }, json: { type: 'boolean' } },
    true,
  );
  const [sub, ...rest] = positionals;
  if (values.help || !sub) {
    io.out(KEYS_HELP);
    return values.help ? 0 : 2;
  }
  const config = configFrom(values, io);
  const meta = await openMetadata(config);
  try {
    const keys = createApiKeyService({ config, meta, clock: systemClock() });
    switch (sub) {
      case 'create': {
        const gb = values['gb-months'] === undefined ? 0 : Number(values['gb-months']);
        if (!Number.isFinite(gb) || gb < 0) throw new UsageError(`--gb-months must be a number >= 0, got "${values['gb-months']}"`);
        const { row, secret } = await keys.create(undefined, { name: values.name, permissions: values['can-create-keys'] ? ['apikey.create'] : [], gbMonths: gb });
        if (values.json) io.out(JSON.stringify({ ...presentApiKey(row), key: secret }));
        else io.out(`publicId: ${row.publicId}\nsecret:   ${secret}\n(the secret is shown only now)`);
        return 0;
      }
      case 'list': {
        const rows = await keys.list();
        if (values.json) io.out(JSON.stringify(rows.map((r) => ({ ...presentApiKey(r), revoked: r.revokedAt !== null }))));
        else
          for (const r of rows) {
            const k = presentApiKey(r);
            io.out(
              [k.publicId, k.name || '-', k.gbMonths === null ? 'unlimited' : `${k.gbMonths} GB-months`, k.permissions.join(',') || '-', k.admin ? 'admin' : '', r.revokedAt ? 'REVOKED' : '']
                .filter(Boolean)
                .join('\t'),
            );
          }
        return 0;
      }
      case 'revoke': {
        if (rest.length !== 1) throw new UsageError('keys revoke needs exactly one publicId');
        if (!(await keys.revoke(rest[0]))) {
          io.err(`No active API key with publicId ${rest[0]}.`);
          return 1;
        }
        io.out(`Revoked ${rest[0]}.`);
        return 0;
      }
      case 'gbmonths': {
        if (rest.length !== 2) throw new UsageError('keys gbmonths needs <publicId> <amount>');
        const amount = rest[1] === 'unlimited' ? null : Number(rest[1]);
        if (amount !== null && (!Number.isFinite(amount) || amount < 0)) throw new UsageError(`amount must be a number >= 0 or "unlimited", got "${rest[1]}"`);
        const row = await keys.setBalance(rest[0], amount);
        io.out(`${row.publicId}: ${amount === null ? 'unlimited' : `${presentApiKey(row).gbMonths} GB-months`}`);
        return 0;
      }
      default:
        throw new UsageError(`unknown subcommand "keys ${sub}"`);
    }
  } catch (e) {
    if (e instanceof AppError) {
      io.err(e.message);
      return 1;
    }
    throw e;
  } finally {
    await meta.close();
  }
}
