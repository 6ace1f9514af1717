/**
 * The Node response class of the server: headers the middleware sets for every answer (request id, CORS) wait beside the
 * response and join the answer's own headers when its head is written, one `writeHead(status, headers)` call as the
 * `@hono/node-server` adapter makes it. Setting them with `setHeader()` instead (what a plain ServerResponse offers) put
 * every response on Node's "progressive" path: each `setHeader` validates and lowercases its name and stores it in a
 * prototype-less (dictionary) object, and `writeHead` then merges the answer's headers through `setHeader` one by one —
 * some 4,300 instructions per API answer more than this (callgrind, Node 24).
 */
import { type IncomingMessage, ServerResponse } from 'node:http';

type HeaderValue = number | string | readonly string[];
type HeadersArg = Record<string, HeaderValue | undefined> | readonly HeaderValue[] | readonly (readonly HeaderValue[])[];

export class PresetHeadersResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
  /** Names (lower case) and values of the preset headers; undefined until one is set. */
  #names: string[] | undefined = undefined;
  #values: string[] | undefined = undefined;

  /**
   * Sets response header `name` (in lower case, as Node keeps header names and HTTP/2 writes them) for whatever answer
   * this response gets, unless the answer sets it itself (then the answer's value counts, as with `setHeader` before
   * `writeHead`). Setting the same name again replaces the value.
   */
  presetHeader(name: string, value: string): void {
    if (this.#names === undefined || this.#values === undefined) {
      this.#names = [name];
      this.#values = [value];
      return;
    }
    const i = this.#names.indexOf(name);
    if (i >= 0) this.#values[i] = value;
    else {
      this.#names.push(name);
      this.#values.push(value);
    }
  }

  /** A preset header's value, before the head is written. */
  presetHeaderValue(name: string): string | undefined {
    const i = this.#names?.indexOf(name.toLowerCase()) ?? -1;
    return i < 0 ? undefined : this.#values![i];
  }

  // Node's signature: writeHead(status, [reason], [headers])
  override writeHead(statusCode: number, reason?: string | HeadersArg, headers?: HeadersArg): this {
    if (this.#names !== undefined && !this.headersSent) {
      if (typeof reason === 'string') headers = this.#merge(this.#names, this.#values!, headers);
      else {
        headers = this.#merge(this.#names, this.#values!, reason ?? headers);
        reason = undefined;
      }
    }
    return super.writeHead(statusCode, reason as string, headers as never);
  }

  /** `headers` with every preset header it does not name itself (nor `setHeader()` set) added; `headers` itself is left as it is. */
  #merge(names: string[], values: string[], headers: HeadersArg | undefined): HeadersArg {
    const n = names.length;
    // bit i set: preset i is to be added. Set with setHeader(): Node merges the answer's headers into those, so a preset
    // must not override them either.
    let add = 0;
    for (let i = 0; i < n; i++) if (!this.hasHeader(names[i])) add |= 1 << i;
    if (headers === undefined || headers === null) {
      const out: Record<string, string> = {};
      for (let i = 0; i < n; i++) if (add & (1 << i)) out[names[i]] = values[i];
      return out;
    }
    if (Array.isArray(headers)) {
      // [[name, value], …] or [name, value, name, value, …]
      const nested = headers.length > 0 && Array.isArray(headers[0]);
      const step = nested ? 1 : 2;
      for (let j = 0; j < headers.length; j += step) add &= ~namedBy(names, String(nested ? (headers[j] as readonly HeaderValue[])[0] : headers[j]));
      const out: unknown[] = [...headers];
      for (let i = 0; i < n; i++) if (add & (1 << i)) nested ? out.push([names[i], values[i]]) : out.push(names[i], values[i]);
      return out as HeadersArg;
    }
    const obj = headers as Record<string, HeaderValue | undefined>;
    for (const key in obj) add &= ~namedBy(names, key);
    const out: Record<string, HeaderValue | undefined> = { ...obj };
    for (let i = 0; i < n; i++) if (add & (1 << i)) out[names[i]] = values[i];
    return out;
  }
}

/** The bit of the name in `names` (lower case) that `key` names, in any case; 0 for none. */
function namedBy(names: string[], key: string): number {
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    if (key.length !== name.length) continue;
    // the first character compared first (as is, or as the upper case of a letter): lower-casing allocates
    const c = key.charCodeAt(0);
    const first = name.charCodeAt(0);
    if ((c === first || (c | 0x20) === first) && (key === name || key.toLowerCase() === name)) return 1 << i;
  }
  return 0;
}
