/**
 * The Node response class of the server: headers the middleware sets for every answer (request id, CORS) wait beside the
 * response and join the answer's own headers when its head is written, one `writeHead(status, headers)` call as the
 * `@hono/node-server` adapter makes it. Setting them with `setHeader()` instead (what a plain ServerResponse offers) put
 * every response on Node's "progressive" path: each `setHeader` validates and lowercases its name and stores it in a
 * prototype-less (dictionary) object, and `writeHead` then merges the answer's headers through `setHeader` one by one —
 * some 4,300 instructions per API answer more than this (callgrind, Node 24).
 *
 * It also carries a body parked for the answer ({@link PresetHeadersResponse.parkBody}): a download's file stream goes
 * out once the adapter has written the head of the bodiless answer the app made for it, when the adapter ends the
 * response. Nothing wraps the app's answer to find it, so an answer that waits costs no extra promise.
 */
import { type IncomingMessage, ServerResponse } from 'node:http';

type HeaderValue = number | string | readonly string[];
type HeadersArg = Record<string, HeaderValue | undefined> | readonly HeaderValue[] | readonly (readonly HeaderValue[])[];

export class PresetHeadersResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
  /**
   * The preset headers, name (lower case) and value in turn, in `#length` slots; undefined until one is set. Made with
   * room for four (request id and CORS take three), so that presetting never grows it.
   */
  #presets: string[] | undefined = undefined;
  #length = 0;
  /** The body parked for the answer: sent by `end()` after a bodiless head, dropped otherwise. */
  #parked: ParkedBody | undefined = undefined;

  /**
   * Sets response header `name` (in lower case, as Node keeps header names and HTTP/2 writes them) for whatever answer
   * this response gets, unless the answer sets it itself (then the answer's value counts, as with `setHeader` before
   * `writeHead`). Setting the same name again replaces the value.
   */
  presetHeader(name: string, value: string): void {
    const presets = (this.#presets ??= new Array<string>(PRESET_SLOTS));
    const n = this.#length;
    for (let i = 0; i < n; i += 2) {
      if (presets[i] === name) {
        presets[i + 1] = value;
        return;
      }
    }
    presets[n] = name;
    presets[n + 1] = value;
    this.#length = n + 2;
  }

  /** A preset header's value, before the head is written. */
  presetHeaderValue(name: string): string | undefined {
    const lower = name.toLowerCase();
    for (let i = 0; i < this.#length; i += 2) if (this.#presets![i] === lower) return this.#presets![i + 1];
    return undefined;
  }

  /**
   * Parks a body for this response's answer: when the head is written and the response is then ended without a body of
   * its own (a bodiless answer, as the adapter ends one), `send(this)` sends it instead — and ends the response itself.
   * An answer that ends with a body of its own, or that can have none (HEAD, 204, 304), drops it (`drop()`), as does a
   * response that closes before it is ended, or a later parked body.
   */
  parkBody(send: (res: this) => void, drop: () => void): void {
    this.#parked?.drop();
    const parked: ParkedBody = { send: send as (res: ServerResponse) => void, drop };
    this.#parked = parked;
    this.once('close', () => {
      if (this.#parked !== parked) return;
      this.#parked = undefined;
      drop();
    });
  }

  // Node's signatures: end([cb]), end(chunk, [cb]), end(chunk, encoding, [cb])
  override end(chunk?: unknown, encoding?: unknown, cb?: unknown): this {
    const parked = this.#parked;
    if (parked === undefined) return super.end(chunk as never, encoding as never, cb as never);
    this.#parked = undefined;
    const bodiless = chunk === undefined || chunk === null || typeof chunk === 'function';
    if (!bodiless || !this.headersSent || this.statusCode === 204 || this.statusCode === 304 || this.req?.method === 'HEAD') {
      parked.drop();
      return super.end(chunk as never, encoding as never, cb as never);
    }
    const done = typeof chunk === 'function' ? chunk : typeof encoding === 'function' ? encoding : cb;
    if (typeof done === 'function') this.once('finish', done as () => void);
    parked.send(this);
    return this;
  }

  // Node's signature: writeHead(status, [reason], [headers])
  override writeHead(statusCode: number, reason?: string | HeadersArg, headers?: HeadersArg): this {
    if (this.#length > 0 && !this.headersSent) {
      if (typeof reason === 'string') headers = this.#merge(this.#presets!, this.#length, headers);
      else {
        headers = this.#merge(this.#presets!, this.#length, reason ?? headers);
        reason = undefined;
      }
    }
    return super.writeHead(statusCode, reason as string, headers as never);
  }

  /**
   * `headers` with every preset header (`presets`: `length` slots of name and value in turn) it does not name itself (nor
   * `setHeader()` set) added; `headers` itself is left as it is.
   */
  #merge(presets: string[], length: number, headers: HeadersArg | undefined): HeadersArg {
    // bit i set: the preset in slots 2i, 2i+1 is to be added. Set with setHeader(): Node merges the answer's headers
    // into those, so a preset must not override them either.
    let add = 0;
    for (let i = 0; i < length; i += 2) if (!this.hasHeader(presets[i])) add |= 1 << (i >> 1);
    if (headers === undefined || headers === null) {
      const out: Record<string, string> = {};
      for (let i = 0; i < length; i += 2) if (add & (1 << (i >> 1))) out[presets[i]] = presets[i + 1];
      return out;
    }
    if (Array.isArray(headers)) {
      // [[name, value], …] or [name, value, name, value, …]
      const nested = headers.length > 0 && Array.isArray(headers[0]);
      const step = nested ? 1 : 2;
      for (let j = 0; j < headers.length; j += step) add &= ~namedBy(presets, length, String(nested ? (headers[j] as readonly HeaderValue[])[0] : headers[j]));
      const out: unknown[] = [...headers];
      for (let i = 0; i < length; i += 2) if (add & (1 << (i >> 1))) nested ? out.push([presets[i], presets[i + 1]]) : out.push(presets[i], presets[i + 1]);
      return out as HeadersArg;
    }
    // an object: the same head as a flat list, which Node reads by index, where an object costs a copy, a property
    // added per preset and a keyed read per name (850 instructions per API GET, callgrind, Node 24)
    const obj = headers as Record<string, HeaderValue | undefined>;
    const out: (HeaderValue | undefined)[] = [];
    for (const key in obj) {
      if (!Object.hasOwn(obj, key)) continue;
      add &= ~namedBy(presets, length, key);
      out.push(key, obj[key]);
    }
    for (let i = 0; i < length; i += 2) if (add & (1 << (i >> 1))) out.push(presets[i], presets[i + 1]);
    return out as HeadersArg;
  }
}

interface ParkedBody {
  send(res: ServerResponse): void;
  drop(): void;
}

/** Slots a response's preset headers are made with: four headers, name and value each. */
const PRESET_SLOTS = 8;

/** The bit of the preset (in `presets`' `length` slots, names in lower case) that `key` names, in any case; 0 for none. */
function namedBy(presets: string[], length: number, key: string): number {
  for (let i = 0; i < length; i += 2) {
    const name = presets[i];
    if (key.length !== name.length) continue;
    // the first character compared first (as is, or as the upper case of a letter): lower-casing allocates
    const c = key.charCodeAt(0);
    const first = name.charCodeAt(0);
    if ((c === first || (c | 0x20) === first) && (key === name || key.toLowerCase() === name)) return 1 << (i >> 1);
  }
  return 0;
}
