import { describe, expect, it } from 'vitest';
import { hashSecret, sameDigest } from '../../src/core/ids.js';

describe('hashSecret', () => {
  it('is the SHA-256 hex of the UTF-8 secret', () => {
    // FIPS 180-2 test vector, and a non-ASCII secret against its UTF-8 bytes
    expect(hashSecret('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hashSecret('é')).toBe(hashSecret(Buffer.from('c3a9', 'hex').toString('utf8')));
    expect(hashSecret('é')).not.toBe(hashSecret('e'));
  });
});

describe('sameDigest', () => {
  const a = hashSecret('one');
  it('is true only for equal digests', () => {
    expect(sameDigest(a, hashSecret('one'))).toBe(true);
    expect(sameDigest(a, hashSecret('two'))).toBe(false);
    // a difference in the last character only, and different lengths
    const last = a.slice(0, -1) + (a.endsWith('0') ? '1' : '0');
    expect(sameDigest(a, last)).toBe(false);
    expect(sameDigest(a, a.slice(0, -1))).toBe(false);
    expect(sameDigest('', '')).toBe(true);
  });
});
