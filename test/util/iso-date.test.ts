import { describe, expect, it } from 'vitest';
import { isoDate } from '../../src/util/iso-date.js';

const viaDate = (ms: number) => new Date(ms).toISOString();

describe('isoDate', () => {
  it('answers what Date#toISOString answers at the edges of its range, of days, months, years and centuries', () => {
    const edges = [
      0, -0, 1, -1, 999, 1000, 59_999, 86_399_999, 86_400_000, -86_400_000, -86_400_001,
      Date.UTC(2000, 1, 28, 23, 59, 59, 999), Date.UTC(2000, 1, 29), Date.UTC(2000, 2, 1), // 2000: leap (÷400)
      Date.UTC(1900, 1, 28, 12), Date.UTC(1900, 2, 1), Date.UTC(2100, 1, 28), Date.UTC(2100, 2, 1) - 1, // not leap (÷100)
      Date.UTC(2024, 1, 29, 7, 8, 9, 10), Date.UTC(2024, 11, 31, 23, 59, 59, 999), Date.UTC(2025, 0, 1),
      Date.UTC(1969, 11, 31, 23, 59, 59, 999), Date.UTC(1600, 1, 29), Date.UTC(400, 2, 1) - 1,
      -62_167_219_200_000, // 0000-01-01T00:00:00.000Z, the first this formats itself
      253_402_300_799_999, // 9999-12-31T23:59:59.999Z, the last
    ];
    for (const ms of edges) expect(isoDate(ms), String(ms)).toBe(viaDate(ms));
  });

  it('answers what Date#toISOString answers for random times across years 0000-9999', () => {
    let seed = 12345;
    const next = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 20_000; i++) {
      const ms = Math.floor(-62_167_219_200_000 + next() * (253_402_300_799_999 + 62_167_219_200_000));
      expect(isoDate(ms)).toBe(viaDate(ms));
    }
    // and every day of two 400-year cycles around 1970, at a time of day that changes
    for (let d = -146_097; d < 146_097; d++) {
      const ms = d * 86_400_000 + ((d * 7_919_993) % 86_400_000 + 86_400_000) % 86_400_000;
      if (isoDate(ms) !== viaDate(ms)) expect(isoDate(ms), String(ms)).toBe(viaDate(ms));
    }
  });

  it('leaves extended years, fractions and invalid times to Date (same string, same RangeError)', () => {
    for (const ms of [-62_167_219_200_001, 253_402_300_800_000, 8.64e15, -8.64e15, 1.5, -0.5, 1_700_000_000_000.7])
      expect(isoDate(ms), String(ms)).toBe(viaDate(ms));
    for (const ms of [NaN, Infinity, -Infinity, 8.64e15 + 1]) expect(() => isoDate(ms)).toThrow(RangeError);
  });
});
