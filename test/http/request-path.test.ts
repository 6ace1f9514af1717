import { getPath as honoGetPath } from 'hono/utils/url';
import { describe, expect, it } from 'vitest';
import { requestPath } from '../../src/http/request-path.js';

describe('requestPath', () => {
  it("answers what Hono's getPath answers, with and without query, fragment and percent-encoding", () => {
    const urls = [
      'http://localhost/',
      'http://127.0.0.1:8080/api/v1/dropzones/abc',
      'http://127.0.0.1:8080/api/v1/dropzones/abc?limit=5&cursor=x',
      'https://files.example.test/d/code#top',
      'http://h/a?b#c',
      'http://h/a#b?c',
      'http://h/api/v1/files/a%20b/download',
      'http://h/a%2Fb?x=%20',
      'http://h/a?x=%20',
      'http://h/bad%zzpercent',
      'http://h/%E2%9C%93/x',
      'http://[::1]:9000/api/v1/dropzones',
      'http://h/?',
      'http://h/#',
    ];
    for (const url of urls) expect(requestPath(new Request(url)), url).toBe(honoGetPath(new Request(url)));
    expect(requestPath(new Request('http://127.0.0.1:8080/api/v1/dropzones/abc?x=1'))).toBe('/api/v1/dropzones/abc');
    expect(requestPath(new Request('http://h/a%20b'))).toBe('/a b');
  });
});
