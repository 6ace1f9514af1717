/** Request ids (src/http/middleware.ts requestIdSource): 16 hex characters, a per-process prefix and a counter. */
import { describe, expect, it } from 'vitest';
import { requestIdSource } from '../../src/http/middleware.js';

describe('requestIdSource', () => {
  it('gives 16 hex characters: one prefix per source, then a counter of eight digits counting up', () => {
    const next = requestIdSource();
    const ids = Array.from({ length: 1000 }, next);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(new Set(ids.map((id) => id.slice(0, 8))).size).toBe(1);
    expect(new Set(ids).size).toBe(1000);
    const counters = ids.map((id) => parseInt(id.slice(8), 16));
    for (let i = 1; i < counters.length; i++) expect(counters[i]).toBe(counters[i - 1] + 1);
  });

  it('keeps eight digits after the largest counter: it starts again at 10000000', () => {
    const next = requestIdSource(0xfffffffe);
    expect([next(), next(), next()].map((id) => id.slice(8))).toEqual(['fffffffe', 'ffffffff', '10000000']);
  });

  it('draws another prefix for another source (another process)', () => {
    const prefixes = new Set(Array.from({ length: 8 }, () => requestIdSource()().slice(0, 8)));
    expect(prefixes.size).toBeGreaterThan(1);
  });
});
