import type { Config } from '../config/schema.js';
import { randomId } from './ids.js';
import type { MetadataOps } from './ports/metadata-store.js';

/**
 * The server's HMAC secret for signed upload URLs and page tokens: `security.signingSecret` when configured,
 * otherwise one generated on first use and persisted in the database's settings (so URLs survive restarts and work
 * on every process sharing the database).
 */
export async function signingSecret(config: Config, meta: Pick<MetadataOps, 'getSetting' | 'initSetting'>): Promise<string> {
  if (config.security.signingSecret) return config.security.signingSecret;
  // created once: when several processes start at once, the first stored value wins and every one uses it
  return (await meta.getSetting('signing_secret')) ?? (await meta.initSetting('signing_secret', randomId(32)));
}
