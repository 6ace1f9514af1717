import type { Config } from '../config/schema.js';
import type { Repositories } from '../db/repositories.js';
import { randomId } from './ids.js';

/**
 * The server's HMAC secret for signed upload URLs and page tokens: `security.signingSecret` when configured,
 * otherwise one generated on first use and persisted in the database's settings (so URLs survive restarts and work
 * on every process sharing the database).
 */
export function signingSecret(config: Config, repo: Repositories): string {
  if (config.security.signingSecret) return config.security.signingSecret;
  // created once: when several processes start at once, the first stored value wins and every one uses it
  return repo.getSetting('signing_secret') ?? repo.initSetting('signing_secret', randomId(32));
}
