/**
 * Timeouts that fit uploads: the HTTP server has no total request cap below the upload URL's lifetime (Node's default
 * 300 s `requestTimeout` cut every longer PUT with 408), a header timeout, and an idle timeout (no bytes for N seconds).
 * The limits are configured short here so the suite does not wait minutes: a trickling PUT that outlives them succeeds,
 * one that stalls is cut, stores nothing and leaves its reservation usable for a retry.
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileCost } from '../../src/core/quota.js';
import { type TestServer, startTestServer } from '../helpers/server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('HTTP timeouts', () => {
  it('defaults: headers 60 s, idle 120 s, no total request cap (Node would cut every request at 300 s)', async () => {
    const t = await startTestServer();
    try {
      const http = t.server.http;
      expect(http.requestTimeout).toBe(0);
      expect(http.headersTimeout).toBe(60_000);
      expect(http.timeout).toBe(120_000);
    } finally {
      await t.close();
    }
  });

  it('a configured total cap is applied, and refused at start when it is below the upload URL lifetime', async () => {
    await expect(startTestServer({ settings: { 'server.requestTimeoutSeconds': 300, 'uploads.urlTtlSeconds': 3600 } })).rejects.toThrow(
      /server\.requestTimeoutSeconds.*uploads\.urlTtlSeconds/,
    );
    const t = await startTestServer({ settings: { 'server.requestTimeoutSeconds': 7200, 'uploads.urlTtlSeconds': 3600 } });
    try {
      expect(t.server.http.requestTimeout).toBe(7_200_000);
    } finally {
      await t.close();
    }
  });

  describe('with short limits (idle 1 s, headers 1 s)', () => {
    let t: TestServer;
    beforeAll(async () => {
      t = await startTestServer({ settings: { 'server.idleTimeoutSeconds': 1, 'server.headersTimeoutSeconds': 1 } });
    });
    afterAll(async () => {
      await t?.close();
    });

    it('a PUT that trickles for longer than every configured limit but keeps sending bytes succeeds', async () => {
      const dz = await t.createDropzone(t.adminKey);
      const up = await t.requestUpload(t.adminKey, dz._id, 'slow.bin', 1000);
      const chunks = 10;
      const res = await new Promise<number>((resolve, reject) => {
        const req = request(up.signedUrl, { method: 'PUT', headers: up.headers }, (r) => {
          r.resume();
          r.on('end', () => resolve(r.statusCode!));
        });
        req.on('error', reject);
        req.flushHeaders();
        void (async () => {
          // 10 × 300 ms = 3 s in all: three times the idle limit and the header limit
          for (let i = 0; i < chunks; i++) {
            await sleep(300);
            if (i === chunks - 1) req.end(Buffer.alloc(100, i));
            else req.write(Buffer.alloc(100, i));
          }
        })();
      });
      expect(res).toBe(200);
      expect((await t.req('POST', `/files/${up.fileId}/confirm`, { key: t.adminKey })).status).toBe(200);
    });

    it('a PUT that stalls past the idle limit is cut: nothing stored, reservation kept, the same URL works on retry', async () => {
      const dz = await t.createDropzone(t.adminKey);
      const up = await t.requestUpload(t.adminKey, dz._id, 'stall.bin', 1000);
      const u = new URL(up.signedUrl);
      const head = [`PUT ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`, ...Object.entries(up.headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
      // half the body, then silence: the server must close the connection (the test would hang otherwise)
      const closedBy = await new Promise<string>((resolve) => {
        const sock = connect(Number(u.port), u.hostname, () => {
          sock.write(head);
          sock.write(Buffer.alloc(500, 1));
        });
        sock.resume();
        sock.on('close', () => resolve('server'));
        sock.on('error', () => resolve('server'));
      });
      expect(closedBy).toBe('server');
      for (let i = 0; i < 100 && t.blobFiles().some((f) => f.endsWith('.part')); i++) await sleep(20);
      const key = (await t.server.app.ctx.meta.fileById(up.fileId))!.blobKey;
      expect(t.blobFiles().filter((f) => f === key || f.endsWith('.part'))).toEqual([]);
      expect((await t.req('GET', `/files/${up.fileId}`, { key: t.adminKey })).body.meta.s3Status).toBe('pending');
      expect((await t.req('GET', `/dropzones/${dz._id}`, { key: t.adminKey })).body.data.usedSpace).toBe(fileCost({ size: 1000, name: 'stall.bin', type: 'application/octet-stream' }));
      expect((await t.put(up, Buffer.alloc(1000, 2))).status).toBe(200);
      expect((await t.req('POST', `/files/${up.fileId}/confirm`, { key: t.adminKey })).status).toBe(200);
      expect(t.logs.map((l) => JSON.parse(l)).filter((l) => l.level === 'error')).toEqual([]);
    });

    it('a client that never finishes its headers is cut after the header timeout', async () => {
      const u = new URL(t.url);
      const answer = await new Promise<string>((resolve) => {
        let got = '';
        const sock = connect(Number(u.port), u.hostname, () => sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'));
        sock.on('data', (d) => (got += d.toString()));
        sock.on('close', () => resolve(got));
        sock.on('error', () => resolve(got));
      });
      // Node answers 408 (or just closes) once the header timeout passed
      expect(answer === '' || answer.startsWith('HTTP/1.1 408')).toBe(true);
    });
  });
});
