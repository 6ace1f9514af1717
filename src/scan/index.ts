import type { Config } from '../config/schema.js';
import type { Scanner } from '../core/ports/scanner.js';
import { createClamdScanner } from './clamd.js';
import { createCommandScanner } from './command.js';

/** The scanner `scan.*` configures, or undefined when scanning is off. */
export function createScanner(config: Config): Scanner | undefined {
  const s = config.scan;
  if (!s.enabled) return undefined;
  if (s.engine === 'command') return createCommandScanner(s.command);
  return createClamdScanner(s.clamd.socket ? { socket: s.clamd.socket } : { host: s.clamd.host, port: s.clamd.port });
}
