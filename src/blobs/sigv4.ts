/**
 * AWS Signature Version 4, query-string flavour (presigned URLs), for the `s3` service.
 *
 * Written from the published SigV4 description:
 * canonical request → string to sign → HMAC with a key derived from the secret, date, region and service.
 * The payload is never hashed (`UNSIGNED-PAYLOAD`), as for every S3 presigned URL.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** The only algorithm this module speaks. */
export const SIGV4_ALGORITHM = 'AWS4-HMAC-SHA256';

/** Longest validity S3 accepts for a presigned URL, in seconds (7 days). */
export const MAX_PRESIGN_EXPIRES_SECONDS = 604_800;

/** How far in the future an `X-Amz-Date` may lie before a request is refused, in ms (15 minutes, like S3). */
export const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;

const SERVICE = 's3';
const TERMINATOR = 'aws4_request';
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
const OWN_PARAMS = new Set(['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature']);

/** Input for {@link presignUrl}. */
export interface PresignUrlInput {
  /** HTTP method the URL is valid for (upper-cased before signing). */
  method: string;
  /** Origin plus optional path prefix, e.g. `https://files.example.com` or `https://x.example/dz`; no query. */
  baseUrl: string;
  /**
   * Path appended to the base URL's path, starting with `/`, *not* percent-encoded: every segment is
   * encoded here with the AWS rules (unreserved characters kept, everything else `%XX`).
   */
  path: string;
  /**
   * Headers to sign (names in any case). `host` is added from `baseUrl` unless given.
   * The client must send every one of them with exactly these values.
   */
  headers?: Record<string, string>;
  accessKeyId: string;
  secret: string;
  region: string;
  /** Signing time, epoch ms (becomes `X-Amz-Date`, truncated to whole seconds). */
  now: number;
  /** Validity in whole seconds, 1…{@link MAX_PRESIGN_EXPIRES_SECONDS}. */
  expiresIn: number;
  /**
   * Further query parameters to include (and sign), e.g. `X-Amz-Content-Sha256`; must not name one of the
   * six parameters this function sets itself.
   */
  extraQuery?: Record<string, string>;
}

/** Result of {@link presignUrl}. */
export interface PresignedUrl {
  /** The full URL including all six `X-Amz-*` query parameters. */
  url: string;
  /** Epoch ms after which the URL is refused (`X-Amz-Date` + `X-Amz-Expires`). */
  expiresAt: number;
  /** Lower-cased names of the signed headers, sorted (what `X-Amz-SignedHeaders` lists). */
  signedHeaders: string[];
}

/**
 * Where request headers come from for {@link verifyPresignedRequest}: a lookup function (called with a
 * lower-case name; return undefined when absent) or a plain record (names matched case-insensitively;
 * array values are joined with `,` as HTTP does).
 */
export type HeaderSource = ((name: string) => string | undefined | null) | Record<string, string | string[] | undefined>;

/** Input for {@link verifyPresignedRequest}. */
export interface VerifyPresignedInput {
  /** The request's method. */
  method: string;
  /**
   * The request's path as received, without the query. Either the raw (percent-encoded) form or the
   * decoded form is accepted: each segment is decoded and then re-encoded with the AWS rules.
   */
  path: string;
  /** The request's query parameters (decoded, as `URLSearchParams` gives them). */
  query: URLSearchParams;
  /** The request's headers. */
  headers: HeaderSource;
  /** The secret belonging to `accessKeyId`. */
  secret: string;
  /** The only access key id accepted. */
  accessKeyId: string;
  /** The only region accepted in the credential scope. */
  region: string;
  /** Current time, epoch ms. */
  now: number;
}

/** Why {@link verifyPresignedRequest} refused a request. */
export type VerifyFailureReason = 'SignatureDoesNotMatch' | 'AccessDenied' | 'Expired' | 'Malformed';

/** Outcome of {@link verifyPresignedRequest}. */
export type VerifyPresignedResult =
  | {
      ok: true;
      /** Lower-cased signed header name → the (trimmed, space-collapsed) value the request carried. */
      signedHeaders: Record<string, string>;
      /** Epoch ms at which the URL expires. */
      expiresAt: number;
    }
  | { ok: false; reason: VerifyFailureReason; message: string };

/**
 * Percent-encodes `value` the way SigV4 requires (RFC 3986): `A-Z a-z 0-9 - _ . ~` stay, every other
 * UTF-8 byte becomes `%XX` with upper-case hex. Throws URIError on lone surrogates.
 */
export function awsUriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

/**
 * Canonical URI of a path: split on `/`, each segment decoded when it holds valid percent-escapes and then
 * encoded with {@link awsUriEncode}. An empty path becomes `/`. Throws URIError on unencodable input.
 */
export function canonicalUri(path: string): string {
  if (path === '') return '/';
  return path
    .split('/')
    .map((segment) => awsUriEncode(safeDecode(segment)))
    .join('/');
}

function safeDecode(segment: string): string {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * Canonical query string: every parameter except `X-Amz-Signature`, name and value encoded with
 * {@link awsUriEncode}, sorted by encoded name then encoded value, joined as `name=value&…`.
 */
export function canonicalQueryString(query: URLSearchParams): string {
  const pairs: Array<[string, string]> = [];
  for (const [name, value] of query) {
    if (name === 'X-Amz-Signature') continue;
    pairs.push([awsUriEncode(name), awsUriEncode(value)]);
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([n, v]) => `${n}=${v}`).join('&');
}

/** A header value as SigV4 canonicalises it: trimmed, runs of whitespace collapsed to one space. */
export function canonicalHeaderValue(value: string): string {
  return value.trim().replace(/\s+/g, ' ');
}

/** Formats epoch ms as the SigV4 timestamp `YYYYMMDDTHHMMSSZ` (UTC, whole seconds). */
export function formatAmzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/** Parses a SigV4 timestamp `YYYYMMDDTHHMMSSZ` to epoch ms, or null when it is not a valid one. */
export function parseAmzDate(value: string): number | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return null;
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  // Reject out-of-range fields (month 13, second 61…) that Date.UTC would silently roll over.
  return Number.isFinite(ms) && formatAmzDate(ms) === value ? ms : null;
}

function sha256Hex(data: string): string {
  return createHash('sha256').update(data, 'utf8').digest('hex');
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function signingKey(secret: string, date: string, region: string): Buffer {
  return hmac(hmac(hmac(hmac('AWS4' + secret, date), region), SERVICE), TERMINATOR);
}

/**
 * The hex signature of a canonical request. `headers` maps lower-cased names to canonical values and
 * must hold exactly the signed headers.
 */
function computeSignature(p: {
  method: string;
  canonicalUri: string;
  canonicalQuery: string;
  headers: Record<string, string>;
  amzDate: string;
  region: string;
  secret: string;
}): string {
  const names = Object.keys(p.headers).sort();
  const canonicalRequest = [
    p.method,
    p.canonicalUri,
    p.canonicalQuery,
    names.map((n) => `${n}:${p.headers[n]}\n`).join(''),
    names.join(';'),
    UNSIGNED_PAYLOAD,
  ].join('\n');
  const date = p.amzDate.slice(0, 8);
  const stringToSign = [SIGV4_ALGORITHM, p.amzDate, `${date}/${p.region}/${SERVICE}/${TERMINATOR}`, sha256Hex(canonicalRequest)].join('\n');
  return createHmac('sha256', signingKey(p.secret, date, p.region)).update(stringToSign, 'utf8').digest('hex');
}

/**
 * Builds a presigned URL for `method` on `baseUrl` + `path`, signing `host` plus `headers`.
 * Throws RangeError when `expiresIn` is not an integer in 1…604800, `path` does not start with `/` or
 * `extraQuery` names one of the six signing parameters,
 * TypeError when `baseUrl` is not an absolute http(s) URL without query or fragment.
 */
export function presignUrl(input: PresignUrlInput): PresignedUrl {
  const { expiresIn } = input;
  if (!Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > MAX_PRESIGN_EXPIRES_SECONDS) {
    throw new RangeError(`expiresIn must be an integer between 1 and ${MAX_PRESIGN_EXPIRES_SECONDS} seconds`);
  }
  if (!input.path.startsWith('/')) throw new RangeError('path must start with /');
  const base = new URL(input.baseUrl);
  if ((base.protocol !== 'http:' && base.protocol !== 'https:') || base.search || base.hash) {
    throw new TypeError('baseUrl must be an http(s) URL without query or fragment');
  }
  const basePath = base.pathname.replace(/\/+$/, '');
  const uri = canonicalUri(basePath + input.path);

  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(input.headers ?? {})) headers[name.toLowerCase()] = canonicalHeaderValue(value);
  if (headers.host === undefined) headers.host = base.host;
  const signedHeaders = Object.keys(headers).sort();

  const signedAt = Math.floor(input.now / 1000) * 1000;
  const amzDate = formatAmzDate(signedAt);
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(input.extraQuery ?? {})) {
    if (OWN_PARAMS.has(name)) throw new RangeError(`extraQuery must not set ${name}`);
    query.append(name, value);
  }
  query.set('X-Amz-Algorithm', SIGV4_ALGORITHM);
  query.set('X-Amz-Credential', `${input.accessKeyId}/${amzDate.slice(0, 8)}/${input.region}/${SERVICE}/${TERMINATOR}`);
  query.set('X-Amz-Date', amzDate);
  query.set('X-Amz-Expires', String(expiresIn));
  query.set('X-Amz-SignedHeaders', signedHeaders.join(';'));
  const canonicalQuery = canonicalQueryString(query);
  const signature = computeSignature({
    method: input.method.toUpperCase(),
    canonicalUri: uri,
    canonicalQuery,
    headers,
    amzDate,
    region: input.region,
    secret: input.secret,
  });
  const url = `${base.protocol}//${base.host}${uri}?${canonicalQuery}&X-Amz-Signature=${signature}`;
  return { url, expiresAt: signedAt + expiresIn * 1000, signedHeaders };
}

function headerLookup(source: HeaderSource): (name: string) => string | undefined {
  if (typeof source === 'function') return (name) => source(name) ?? undefined;
  const lower = new Map<string, string>();
  for (const [k, v] of Object.entries(source)) {
    if (v === undefined) continue;
    const value = Array.isArray(v) ? v.join(',') : v;
    const key = k.toLowerCase();
    const prev = lower.get(key);
    lower.set(key, prev === undefined ? value : `${prev},${value}`);
  }
  return (name) => lower.get(name);
}

function fail(reason: VerifyFailureReason, message: string): VerifyPresignedResult {
  return { ok: false, reason, message };
}

/** The single value of a query parameter, `null` when absent, `undefined` when repeated. */
function single(query: URLSearchParams, name: string): string | null | undefined {
  const all = query.getAll(name);
  if (all.length === 0) return null;
  return all.length === 1 ? all[0] : undefined;
}

/**
 * Checks a request made with a presigned URL. Order of checks: parameters well-formed (`Malformed`),
 * access key known (`AccessDenied`), not expired (`Expired`; now > X-Amz-Date + X-Amz-Expires), not dated
 * more than {@link MAX_CLOCK_SKEW_MS} in the future (`AccessDenied`), then the signature over method, path,
 * query and signed headers (`SignatureDoesNotMatch`, compared in constant time). A request without any
 * SigV4 query parameter is `AccessDenied` (anonymous). `host` must be among the signed headers. Never throws.
 */
export function verifyPresignedRequest(input: VerifyPresignedInput): VerifyPresignedResult {
  const q = input.query;
  const algorithm = single(q, 'X-Amz-Algorithm');
  const credential = single(q, 'X-Amz-Credential');
  const amzDate = single(q, 'X-Amz-Date');
  const expires = single(q, 'X-Amz-Expires');
  const signedHeaderList = single(q, 'X-Amz-SignedHeaders');
  const signature = single(q, 'X-Amz-Signature');

  if (algorithm === null && credential === null && signature === null) {
    return fail('AccessDenied', 'Anonymous access is forbidden; the request must be presigned.');
  }
  for (const [name, value] of [
    ['X-Amz-Algorithm', algorithm],
    ['X-Amz-Credential', credential],
    ['X-Amz-Date', amzDate],
    ['X-Amz-Expires', expires],
    ['X-Amz-SignedHeaders', signedHeaderList],
    ['X-Amz-Signature', signature],
  ] as const) {
    if (value === null) return fail('Malformed', `Query-string authentication requires the ${name} parameter.`);
    if (value === undefined) return fail('Malformed', `The ${name} parameter is repeated.`);
  }
  // All six are now plain strings.
  if (algorithm !== SIGV4_ALGORITHM) return fail('Malformed', `X-Amz-Algorithm only supports "${SIGV4_ALGORITHM}".`);

  const dateMs = parseAmzDate(amzDate as string);
  if (dateMs === null) return fail('Malformed', 'X-Amz-Date must be in the ISO8601 basic format YYYYMMDDTHHMMSSZ.');

  const credParts = (credential as string).split('/');
  if (credParts.length !== 5 || credParts[0] === '') {
    return fail('Malformed', 'Error parsing the X-Amz-Credential parameter; expected <key>/<date>/<region>/s3/aws4_request.');
  }
  const [keyId, credDate, credRegion, credService, credTerminator] = credParts;
  if (credDate !== (amzDate as string).slice(0, 8)) {
    return fail('Malformed', 'Error parsing the X-Amz-Credential parameter; the date does not match X-Amz-Date.');
  }
  if (credRegion !== input.region) {
    return fail('Malformed', `Error parsing the X-Amz-Credential parameter; the region '${credRegion}' is wrong; expecting '${input.region}'.`);
  }
  if (credService !== SERVICE) return fail('Malformed', `Error parsing the X-Amz-Credential parameter; incorrect service "${credService}".`);
  if (credTerminator !== TERMINATOR) return fail('Malformed', 'Error parsing the X-Amz-Credential parameter; incorrect terminal "aws4_request".');

  if (!/^\d{1,7}$/.test(expires as string)) return fail('Malformed', 'X-Amz-Expires should be a number.');
  const expiresSec = Number(expires);
  if (expiresSec > MAX_PRESIGN_EXPIRES_SECONDS) {
    return fail('Malformed', `X-Amz-Expires must be less than a week (in seconds) that is; ${MAX_PRESIGN_EXPIRES_SECONDS}.`);
  }

  const names = (signedHeaderList as string).split(';');
  const seen = new Set<string>();
  for (const name of names) {
    if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name) || seen.has(name)) {
      return fail('Malformed', 'X-Amz-SignedHeaders must be a ;-separated list of distinct lower-case header names.');
    }
    seen.add(name);
  }
  if (!seen.has('host')) return fail('Malformed', 'X-Amz-SignedHeaders must include host.');

  if (keyId !== input.accessKeyId) return fail('AccessDenied', 'The access key id in X-Amz-Credential is not known.');

  const expiresAt = dateMs + expiresSec * 1000;
  if (input.now > expiresAt) return fail('Expired', 'Request has expired');
  if (dateMs - input.now > MAX_CLOCK_SKEW_MS) return fail('AccessDenied', 'Request is not valid yet');

  const lookup = headerLookup(input.headers);
  const signed: Record<string, string> = {};
  for (const name of names) signed[name] = canonicalHeaderValue(lookup(name) ?? '');

  let uri: string;
  let canonicalQuery: string;
  try {
    const rawPath = input.path === '' ? '/' : input.path;
    if (!rawPath.startsWith('/')) return fail('Malformed', 'The request path must start with /.');
    uri = canonicalUri(rawPath);
    canonicalQuery = canonicalQueryString(q);
  } catch {
    return fail('Malformed', 'The request path or query cannot be encoded.');
  }
  const expected = computeSignature({
    method: input.method.toUpperCase(),
    canonicalUri: uri,
    canonicalQuery,
    headers: signed,
    amzDate: amzDate as string,
    region: input.region,
    secret: input.secret,
  });
  const given = Buffer.from(signature as string, 'utf8');
  const want = Buffer.from(expected, 'utf8');
  const match = given.length === want.length && timingSafeEqual(given, want);
  if (!match) {
    return fail('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.');
  }
  return { ok: true, signedHeaders: signed, expiresAt };
}
