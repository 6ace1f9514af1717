import type { Config } from '../config/schema.js';
import type { Repositories } from '../db/repositories.js';
import { randomId } from './ids.js';

/**
 * The server's HMAC secret for signed upload URLs and page tokens: `security.signingSecret` when configured,
 * otherwise one generated on first use and persisted in the database's settings (so URLs survive restarts).
 */
export function signingSecret(config: Config, repo: Repositories): string {
  if (config.security.signingSecret) return config.security.signingSecret;
  let secret = repo.getSetting('signing_secret');
  if (!secret) {
    secret = randomId(32);
    repo.setSetting('signing_secret', secret);
  }
  return secret;
}
