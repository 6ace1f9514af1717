import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import type { Context } from 'hono';

/**
 * The address a request came from: the socket's peer, or — only when `trustProxy` — the last entry of
 * `X-Forwarded-For`, the one the trusted proxy appended itself (earlier entries are whatever the client sent).
 * Undefined when neither is known (requests not served over a socket, e.g. `app.request` in tests).
 */
export function clientAddress(c: Context, trustProxy: boolean): string | undefined {
  if (trustProxy) {
    const forwarded = c.req
      .header('x-forwarded-for')
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .pop();
    if (forwarded && (isIPv4(forwarded) || isIPv6(forwarded))) return forwarded;
  }
  const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming;
  return incoming?.socket?.remoteAddress;
}

/**
 * The network a visitor controls, used to count what one visitor holds: an IPv4 address as is (IPv4-mapped IPv6
 * too), an IPv6 address by its /64 prefix (one host usually has a whole /64 to pick addresses from).
 */
export function visitorNetwork(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1];
  if (!isIPv6(address)) return address;
  const [head, tail = ''] = address.split('%')[0].split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  // an embedded IPv4 tail counts as two groups; only the first four groups matter here
  const groups = address.includes('::') ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g || '0', 16).toString(16))
    .join(':')}::/64`;
}

/** An opaque, stable identity for the visitor behind `c` (a hash of its network), or undefined when unknown. */
export function visitorId(c: Context, trustProxy: boolean): string | undefined {
  const address = clientAddress(c, trustProxy);
  if (!address) return undefined;
  return createHash('sha256').update(`visitor:${visitorNetwork(address)}`).digest('base64url').slice(0, 22);
}
