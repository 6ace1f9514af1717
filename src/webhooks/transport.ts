import { type LookupAddress, lookup as dnsLookup } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP } from 'node:net';
import { AppError } from '../core/errors.js';
import type { WebhookTransport } from '../core/webhooks.js';

/** Ranges a webhook may not reach unless allow-listed, with the name a refusal gives. */
const FORBIDDEN: [string, number, 'ipv4' | 'ipv6', string][] = [
  ['0.0.0.0', 8, 'ipv4', 'unspecified'],
  ['10.0.0.0', 8, 'ipv4', 'private'],
  ['100.64.0.0', 10, 'ipv4', 'CGNAT'],
  ['127.0.0.0', 8, 'ipv4', 'loopback'],
  ['169.254.0.0', 16, 'ipv4', 'link-local/metadata'],
  ['172.16.0.0', 12, 'ipv4', 'private'],
  ['192.0.0.0', 24, 'ipv4', 'reserved'],
  ['192.168.0.0', 16, 'ipv4', 'private'],
  ['198.18.0.0', 15, 'ipv4', 'benchmarking'],
  ['224.0.0.0', 4, 'ipv4', 'multicast'],
  ['240.0.0.0', 4, 'ipv4', 'reserved'],
  ['::', 128, 'ipv6', 'unspecified'],
  ['::1', 128, 'ipv6', 'loopback'],
  ['64:ff9b::', 96, 'ipv6', 'NAT64'],
  ['100::', 64, 'ipv6', 'discard'],
  ['fc00::', 7, 'ipv6', 'ULA (private)'],
  ['fe80::', 10, 'ipv6', 'link-local'],
  ['ff00::', 8, 'ipv6', 'multicast'],
];

/** `::ffff:a.b.c.d` (also written `::ffff:xxxx:yyyy`) → `a.b.c.d`; other addresses unchanged. */
function unmapIpv4(address: string): string {
  const m = /^::ffff:(?:0:)?(.+)$/i.exec(address);
  if (!m) return address;
  if (isIP(m[1]) === 4) return m[1];
  const hex = /^([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(m[1]);
  if (!hex) return address;
  const hi = parseInt(hex[1], 16);
  const lo = parseInt(hex[2], 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/**
 * The target policy of `webhooks.allowTargets`: entries are host names (exact, case-insensitive) or IP addresses and
 * CIDR ranges. Throws an Error naming a malformed entry.
 */
export function targetPolicy(allowTargets: readonly string[]) {
  const forbidden = new BlockList();
  const names = new Map<string, string>();
  for (const [net, prefix, type, name] of FORBIDDEN) {
    forbidden.addSubnet(net, prefix, type);
    names.set(`${net}/${prefix}`, name);
  }
  const allowed = new BlockList();
  const allowedHosts = new Set<string>();
  for (const entry of allowTargets) {
    const [addr, prefix, extra] = entry.split('/');
    const family = isIP(addr);
    if (extra !== undefined || (prefix !== undefined && (!family || !/^\d+$/.test(prefix)))) throw new Error(`webhooks.allowTargets: "${entry}" is neither a host name nor an IP/CIDR`);
    if (!family) {
      if (!/^[A-Za-z0-9.-]+$/.test(entry)) throw new Error(`webhooks.allowTargets: "${entry}" is neither a host name nor an IP/CIDR`);
      allowedHosts.add(entry.toLowerCase());
      continue;
    }
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) allowed.addAddress(addr, type);
    else {
      const bits = Number(prefix);
      if (bits > (family === 4 ? 32 : 128)) throw new Error(`webhooks.allowTargets: "${entry}" has a prefix longer than the address`);
      allowed.addSubnet(addr, bits, type);
    }
  }

  return {
    /** Why `address` (reached as `host`) is refused, or undefined when it may be used. */
    refusal(host: string, address: string): string | undefined {
      if (allowedHosts.has(host.toLowerCase())) return undefined;
      const a = unmapIpv4(address);
      const type = isIP(a) === 4 ? 'ipv4' : 'ipv6';
      if (allowed.check(a, type)) return undefined;
      if (!forbidden.check(a, type)) return undefined;
      const hit = FORBIDDEN.find(([net, prefix, t]) => {
        if (t !== type) return false;
        const one = new BlockList();
        one.addSubnet(net, prefix, t);
        return one.check(a, type);
      });
      return `${address} is a ${hit?.[3] ?? 'reserved'} address (allow it with webhooks.allowTargets)`;
    },
  };
}

/** The host name of a URL without IPv6 brackets. */
const bareHost = (u: URL) => u.hostname.replace(/^\[(.*)\]$/, '$1');

/**
 * The {@link WebhookTransport} over node:http(s): only `http:`/`https:` URLs; every address a host resolves to is
 * checked, at creation and again in the connection's own DNS lookup (so a name that later resolves elsewhere — DNS
 * rebinding — is refused at connect time); redirects are not followed; the answer's body is not read.
 */
export function createHttpTransport(allowTargets: readonly string[]): WebhookTransport {
  const policy = targetPolicy(allowTargets);
  const refused = (message: string) => new AppError('WEBHOOK_TARGET_REFUSED', `Webhook URL refused: ${message}.`, { field: 'url' });

  const parse = (url: string): URL => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw refused('not an absolute URL');
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw refused(`the scheme must be http or https, not ${u.protocol.replace(/:$/, '')}`);
    return u;
  };

  /** A `lookup` for http.request that fails when any resolved address is refused. */
  const guardedLookup = (host: string) =>
    ((hostname: string, options: { all?: boolean }, cb: (err: Error | null, address: string | LookupAddress[], family?: number) => void) => {
      dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
        if (err) return cb(err, []);
        for (const a of addresses) {
          const why = policy.refusal(host, a.address);
          if (why) return cb(Object.assign(new Error(`target refused: ${why}`), { code: 'EWEBHOOKTARGET' }), []);
        }
        if (options.all) cb(null, addresses);
        else cb(null, addresses[0]!.address, addresses[0]!.family);
      });
    }) as unknown as typeof dnsLookup;

  return {
    async checkTarget(url) {
      const u = parse(url);
      const host = bareHost(u);
      const addresses = isIP(host)
        ? [host]
        : await new Promise<string[]>((resolve, reject) =>
            dnsLookup(host, { all: true }, (err, list) => (err ? reject(refused(`the host ${host} does not resolve`)) : resolve(list.map((a) => a.address)))),
          );
      for (const a of addresses) {
        const why = policy.refusal(host, a);
        if (why) throw refused(why);
      }
    },

    post(url, body, headers, timeoutMs) {
      return new Promise((resolve, reject) => {
        let u: URL;
        try {
          u = parse(url);
        } catch (e) {
          return reject(new Error((e as Error).message));
        }
        const host = bareHost(u);
        // an IP literal is connected to without a lookup: check it here
        if (isIP(host)) {
          const why = policy.refusal(host, host);
          if (why) return reject(new Error(`target refused: ${why}`));
        }
        const request = (u.protocol === 'https:' ? https : http).request(u, {
          method: 'POST',
          headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
          lookup: guardedLookup(host),
          agent: false,
          timeout: timeoutMs,
        });
        const timer = setTimeout(() => request.destroy(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
        request.once('timeout', () => request.destroy(new Error(`timed out after ${timeoutMs} ms`)));
        request.on('error', (err) => {
          clearTimeout(timer);
          reject(new Error(err.message));
        });
        request.once('response', (res) => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0 });
          res.destroy();
        });
        request.end(body);
      });
    },
  };
}
