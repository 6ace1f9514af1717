/**
 * The webhook target policy and transport (src/webhooks/transport.ts): which addresses are refused unless
 * allow-listed, and that the check also runs at connect time (an allowed-looking name resolving to a refused address,
 * as after DNS rebinding, never reaches the receiver).
 */
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpTransport, targetPolicy } from '../../src/webhooks/transport.js';

describe('target policy', () => {
  it('refuses loopback, private, link-local, metadata, ULA, CGNAT, multicast and IPv4-mapped forms of them', () => {
    const p = targetPolicy([]);
    for (const a of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '224.0.0.1', '0.0.0.0', '::1', 'fd12::1', 'fe80::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:a9fe:a9fe'])
      expect(p.refusal('h', a), a).toBeDefined();
    for (const a of ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946', '172.32.0.1', '100.128.0.1']) expect(p.refusal('h', a), a).toBeUndefined();
    expect(p.refusal('h', '169.254.169.254')).toMatch(/metadata/);
  });

  it('allows listed addresses, CIDR ranges and host names only', () => {
    const p = targetPolicy(['127.0.0.1', '10.1.0.0/16', 'hooks.internal', 'fd00::/8']);
    expect(p.refusal('x', '127.0.0.1')).toBeUndefined();
    expect(p.refusal('x', '127.0.0.2')).toBeDefined();
    expect(p.refusal('x', '10.1.200.3')).toBeUndefined();
    expect(p.refusal('x', '10.2.0.1')).toBeDefined();
    expect(p.refusal('x', 'fd00::5')).toBeUndefined();
    expect(p.refusal('Hooks.Internal', '192.168.1.1')).toBeUndefined();
    expect(p.refusal('other.internal', '192.168.1.1')).toBeDefined();
  });

  it('names a malformed allow-list entry', () => {
    expect(() => targetPolicy(['10.0.0.0/40'])).toThrow(/10\.0\.0\.0\/40/);
    expect(() => targetPolicy(['not a host'])).toThrow(/not a host/);
    expect(() => targetPolicy(['example.com/8'])).toThrow(/example\.com\/8/);
  });
});

describe('HTTP transport', () => {
  let server: Server;
  let port = 0;
  let hits = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      hits++;
      req.resume();
      res.writeHead(204).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('posts to an allowed target and answers its status', async () => {
    const t = createHttpTransport(['127.0.0.1']);
    await expect(t.post(`http://127.0.0.1:${port}/x`, '{}', { 'content-type': 'application/json' }, 5000)).resolves.toEqual({ status: 204 });
  });

  it('refuses at connect time: an IP literal, and a name resolving to a refused address, never reach the receiver', async () => {
    const before = hits;
    const t = createHttpTransport([]);
    await expect(t.post(`http://127.0.0.1:${port}/x`, '{}', {}, 5000)).rejects.toThrow(/target refused: 127\.0\.0\.1 is a loopback/);
    // `localhost` passes no check by name: its addresses are checked in the connection's own lookup
    await expect(t.post(`http://localhost:${port}/x`, '{}', {}, 5000)).rejects.toThrow(/target refused/);
    expect(hits).toBe(before);
  });

  it('checkTarget refuses localhost without an allow-list, with a 4xx naming the address', async () => {
    const t = createHttpTransport([]);
    await expect(t.checkTarget(`http://localhost:${port}/`)).rejects.toMatchObject({ code: 'WEBHOOK_TARGET_REFUSED', status: 400, message: /loopback/ });
    await expect(t.checkTarget('http://10.0.0.1/')).rejects.toMatchObject({ code: 'WEBHOOK_TARGET_REFUSED', message: /10\.0\.0\.1 is a private address/ });
    await expect(createHttpTransport(['localhost']).checkTarget(`http://localhost:${port}/`)).resolves.toBeUndefined();
  });
});

describe('webhooks.allowTargets in the configuration', () => {
  it('a malformed entry is a configuration error naming it', async () => {
    const { loadConfig } = await import('../../src/config/load.js');
    expect(() => loadConfig({ env: {}, overrides: { 'webhooks.allowTargets': ['10.0.0.0/99'] } })).toThrow(/webhooks\.allowTargets.*10\.0\.0\.0\/99/);
    expect(loadConfig({ env: {}, overrides: { 'webhooks.allowTargets': ['10.0.0.0/8', 'hooks.internal'] } }).webhooks.allowTargets).toHaveLength(2);
  });
});
