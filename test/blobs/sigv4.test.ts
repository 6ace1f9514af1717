import { PutObjectCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { describe, expect, it } from 'vitest';
import {
  awsUriEncode,
  canonicalQueryString,
  formatAmzDate,
  parseAmzDate,
  presignUrl,
  verifyPresignedRequest,
  type VerifyPresignedInput,
} from '../../src/blobs/sigv4.js';

const ACCESS_KEY = 'AKIDEXAMPLE0000TEST';
const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const REGION = 'eu-central-1';
const SIGNING_DATE = new Date(Date.UTC(2026, 2, 14, 9, 26, 53));
const ENDPOINT = 'http://127.0.0.1:9999';

function client(): S3Client {
  return new S3Client({
    region: REGION,
    endpoint: ENDPOINT,
    forcePathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET },
    // Keep the SDK from adding checksum headers we would then have to send.
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
}

interface SdkPut {
  url: URL;
  headers: Record<string, string>;
}

async function sdkPresignPut(key: string, body: { length: number; type: string }, expiresIn = 900): Promise<SdkPut> {
  const url = await getSignedUrl(
    client(),
    new PutObjectCommand({ Bucket: 'bucket', Key: key, ContentLength: body.length, ContentType: body.type }),
    {
      expiresIn,
      signingDate: SIGNING_DATE,
      signableHeaders: new Set(['content-length', 'content-type']),
      unhoistableHeaders: new Set(['content-length', 'content-type']),
    },
  );
  return {
    url: new URL(url),
    headers: { host: '127.0.0.1:9999', 'content-length': String(body.length), 'content-type': body.type },
  };
}

function verifyInput(p: SdkPut, overrides: Partial<VerifyPresignedInput> = {}): VerifyPresignedInput {
  return {
    method: 'PUT',
    path: p.url.pathname,
    query: new URLSearchParams(p.url.search),
    headers: p.headers,
    secret: SECRET,
    accessKeyId: ACCESS_KEY,
    region: REGION,
    now: SIGNING_DATE.getTime() + 1000,
    ...overrides,
  };
}

function withParam(url: URL, name: string, value: string): URLSearchParams {
  const q = new URLSearchParams(url.search);
  q.set(name, value);
  return q;
}

describe('sigv4 against @aws-sdk/s3-request-presigner', () => {
  const KEY = 'uploads/2026/ä weird+key (1)~.bin';

  it('accepts a URL the SDK signed, with content-length and content-type signed', async () => {
    const p = await sdkPresignPut(KEY, { length: 11, type: 'application/octet-stream' });
    expect(p.url.searchParams.get('X-Amz-SignedHeaders')).toBe('content-length;content-type;host');
    expect(p.url.searchParams.get('X-Amz-Date')).toBe(formatAmzDate(SIGNING_DATE.getTime()));
    const res = verifyPresignedRequest(verifyInput(p));
    expect(res).toEqual({
      ok: true,
      signedHeaders: { host: '127.0.0.1:9999', 'content-length': '11', 'content-type': 'application/octet-stream' },
      expiresAt: SIGNING_DATE.getTime() + 900_000,
    });
  });

  it('accepts the decoded form of the path as well as the raw one', async () => {
    const p = await sdkPresignPut(KEY, { length: 11, type: 'text/plain' });
    const decoded = p.url.pathname.split('/').map(decodeURIComponent).join('/');
    expect(decoded).toBe(`/bucket/${KEY}`);
    expect(verifyPresignedRequest(verifyInput(p, { path: decoded })).ok).toBe(true);
  });

  it('accepts an SDK-signed GET URL', async () => {
    const url = new URL(
      await getSignedUrl(client(), new GetObjectCommand({ Bucket: 'bucket', Key: 'a/b.txt' }), { expiresIn: 60, signingDate: SIGNING_DATE }),
    );
    const res = verifyPresignedRequest({
      method: 'GET',
      path: url.pathname,
      query: url.searchParams,
      headers: (name) => (name === 'host' ? '127.0.0.1:9999' : undefined),
      secret: SECRET,
      accessKeyId: ACCESS_KEY,
      region: REGION,
      now: SIGNING_DATE.getTime(),
    });
    expect(res.ok).toBe(true);
  });

  it('produces exactly the SDK signature for the same request', async () => {
    const p = await sdkPresignPut('a/b c.bin', { length: 5, type: 'image/png' });
    const ours = presignUrl({
      method: 'PUT',
      baseUrl: ENDPOINT,
      path: '/bucket/a/b c.bin',
      headers: { 'Content-Length': '5', 'Content-Type': 'image/png' },
      accessKeyId: ACCESS_KEY,
      secret: SECRET,
      region: REGION,
      now: SIGNING_DATE.getTime(),
      expiresIn: 900,
      // What the SDK adds on its own; everything else must come out byte-identical, signature included.
      extraQuery: { 'x-id': 'PutObject', 'X-Amz-Content-Sha256': 'UNSIGNED-PAYLOAD' },
    });
    const sdkQuery = new URLSearchParams(p.url.search);
    const ourUrl = new URL(ours.url);
    expect(ourUrl.pathname).toBe(p.url.pathname);
    expect([...ourUrl.searchParams.keys()].sort()).toEqual([...sdkQuery.keys()].sort());
    for (const [name, value] of sdkQuery) expect(ourUrl.searchParams.get(name), name).toBe(value);
    expect(ours.expiresAt).toBe(SIGNING_DATE.getTime() + 900_000);
    expect(ours.signedHeaders).toEqual(['content-length', 'content-type', 'host']);
  });

  describe('tampering makes verification fail', () => {
    const cases: Array<[string, (p: SdkPut) => Partial<VerifyPresignedInput>, string]> = [
      ['signature', (p) => ({ query: withParam(p.url, 'X-Amz-Signature', flipHex(p.url.searchParams.get('X-Amz-Signature')!)) }), 'SignatureDoesNotMatch'],
      ['X-Amz-Expires (longer)', (p) => ({ query: withParam(p.url, 'X-Amz-Expires', '3600') }), 'SignatureDoesNotMatch'],
      ['X-Amz-Expires (over a week)', (p) => ({ query: withParam(p.url, 'X-Amz-Expires', '604801') }), 'Malformed'],
      ['X-Amz-Date (earlier)', (p) => ({ query: withParam(p.url, 'X-Amz-Date', formatAmzDate(SIGNING_DATE.getTime() - 1000)) }), 'SignatureDoesNotMatch'],
      ['X-Amz-Date (other day)', (p) => ({ query: withParam(p.url, 'X-Amz-Date', formatAmzDate(SIGNING_DATE.getTime() - 86_400_000)) }), 'Malformed'],
      ['X-Amz-SignedHeaders', (p) => ({ query: withParam(p.url, 'X-Amz-SignedHeaders', 'content-length;host') }), 'SignatureDoesNotMatch'],
      ['X-Amz-SignedHeaders without host', (p) => ({ query: withParam(p.url, 'X-Amz-SignedHeaders', 'content-length;content-type') }), 'Malformed'],
      ['X-Amz-Algorithm', (p) => ({ query: withParam(p.url, 'X-Amz-Algorithm', 'AWS4-HMAC-SHA512') }), 'Malformed'],
      [
        'X-Amz-Credential key id',
        (p) => ({ query: withParam(p.url, 'X-Amz-Credential', p.url.searchParams.get('X-Amz-Credential')!.replace(ACCESS_KEY, 'AKIDOTHER')) }),
        'AccessDenied',
      ],
      [
        'X-Amz-Credential region',
        (p) => ({ query: withParam(p.url, 'X-Amz-Credential', p.url.searchParams.get('X-Amz-Credential')!.replace(REGION, 'us-east-1')) }),
        'Malformed',
      ],
      ['x-id', (p) => ({ query: withParam(p.url, 'x-id', 'GetObject') }), 'SignatureDoesNotMatch'],
      [
        'added parameter',
        (p) => {
          const q = new URLSearchParams(p.url.search);
          q.append('response-content-type', 'text/html');
          return { query: q };
        },
        'SignatureDoesNotMatch',
      ],
      ['path', (p) => ({ path: p.url.pathname.replace('uploads', 'uploadz') }), 'SignatureDoesNotMatch'],
      ['path (bucket)', (p) => ({ path: p.url.pathname.replace('/bucket/', '/other/') }), 'SignatureDoesNotMatch'],
      ['method', () => ({ method: 'POST' }), 'SignatureDoesNotMatch'],
      ['host header', (p) => ({ headers: { ...p.headers, host: '127.0.0.1:9998' } }), 'SignatureDoesNotMatch'],
      ['content-length header', (p) => ({ headers: { ...p.headers, 'content-length': '12' } }), 'SignatureDoesNotMatch'],
      ['content-type header', (p) => ({ headers: { ...p.headers, 'content-type': 'text/html' } }), 'SignatureDoesNotMatch'],
      [
        'missing content-type header',
        (p) => {
          const { 'content-type': _dropped, ...rest } = p.headers;
          return { headers: rest };
        },
        'SignatureDoesNotMatch',
      ],
      ['secret', () => ({ secret: SECRET + 'x' }), 'SignatureDoesNotMatch'],
      ['expired', () => ({ now: SIGNING_DATE.getTime() + 900_001 }), 'Expired'],
      ['not yet valid', () => ({ now: SIGNING_DATE.getTime() - 16 * 60_000 }), 'AccessDenied'],
      ['no auth at all', () => ({ query: new URLSearchParams('x-id=PutObject') }), 'AccessDenied'],
      [
        'missing signature',
        (p) => {
          const q = new URLSearchParams(p.url.search);
          q.delete('X-Amz-Signature');
          return { query: q };
        },
        'Malformed',
      ],
      [
        'repeated signature',
        (p) => {
          const q = new URLSearchParams(p.url.search);
          q.append('X-Amz-Signature', q.get('X-Amz-Signature')!);
          return { query: q };
        },
        'Malformed',
      ],
    ];
    it.each(cases)('%s', async (_name, tamper, reason) => {
      const p = await sdkPresignPut(KEY, { length: 11, type: 'application/octet-stream' });
      expect(verifyPresignedRequest(verifyInput(p)).ok).toBe(true);
      const res = verifyPresignedRequest(verifyInput(p, tamper(p)));
      expect(res.ok).toBe(false);
      if (!res.ok) {
        expect(res.reason).toBe(reason);
        expect(res.message.length).toBeGreaterThan(0);
      }
    });

    it('is still valid at the last millisecond and expired one after', async () => {
      const p = await sdkPresignPut(KEY, { length: 1, type: 'a/b' }, 60);
      expect(verifyPresignedRequest(verifyInput(p, { now: SIGNING_DATE.getTime() + 60_000 })).ok).toBe(true);
      const late = verifyPresignedRequest(verifyInput(p, { now: SIGNING_DATE.getTime() + 60_001 }));
      expect(late).toMatchObject({ ok: false, reason: 'Expired' });
    });
  });
});

describe('sigv4 helpers', () => {
  it('encodes per RFC 3986 with upper-case hex', () => {
    expect(awsUriEncode("a b+c/~._-!*'()ü")).toBe('a%20b%2Bc%2F~._-%21%2A%27%28%29%C3%BC');
  });
  it('sorts the canonical query by name and drops the signature', () => {
    const q = new URLSearchParams('b=2&a=2&a=1&X-Amz-Signature=x&A=0');
    expect(canonicalQueryString(q)).toBe('A=0&a=1&a=2&b=2');
  });
  it('round-trips amz dates and rejects invalid ones', () => {
    expect(parseAmzDate('20260314T092653Z')).toBe(SIGNING_DATE.getTime());
    expect(parseAmzDate('20261314T092653Z')).toBeNull();
    expect(parseAmzDate('2026-03-14T09:26:53Z')).toBeNull();
  });
  it('refuses expiresIn outside 1..604800', () => {
    const base = { method: 'PUT', baseUrl: ENDPOINT, path: '/x', accessKeyId: ACCESS_KEY, secret: SECRET, region: REGION, now: 0 };
    expect(() => presignUrl({ ...base, expiresIn: 0 })).toThrow(RangeError);
    expect(() => presignUrl({ ...base, expiresIn: 604_801 })).toThrow(RangeError);
    expect(() => presignUrl({ ...base, expiresIn: 1.5 })).toThrow(RangeError);
  });
  it('keeps a base path prefix in the signed URI', () => {
    const res = presignUrl({
      method: 'PUT',
      baseUrl: 'https://files.example.com/dz/',
      path: '/_blobs/k',
      accessKeyId: ACCESS_KEY,
      secret: SECRET,
      region: REGION,
      now: SIGNING_DATE.getTime(),
      expiresIn: 60,
    });
    const url = new URL(res.url);
    expect(url.pathname).toBe('/dz/_blobs/k');
    expect(
      verifyPresignedRequest({
        method: 'PUT',
        path: url.pathname,
        query: url.searchParams,
        headers: { Host: 'files.example.com' },
        secret: SECRET,
        accessKeyId: ACCESS_KEY,
        region: REGION,
        now: SIGNING_DATE.getTime(),
      }).ok,
    ).toBe(true);
  });
});

function flipHex(sig: string): string {
  const last = sig.at(-1)!;
  return sig.slice(0, -1) + (last === '0' ? '1' : '0');
}
