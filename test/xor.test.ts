import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { bindXor, xorInto } from '../src/xor.js';
import { referenceXor, seededBytes } from './support/helpers.js';

describe('XOR kernel', () => {
  const sizes = [0, 1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65, 4095, 4096, 4097, 65_543];

  it.each(sizes)('matches byte-wise XOR for %i bytes', (n) => {
    const a = seededBytes(n, n + 1);
    const b = seededBytes(n, n + 99);
    const dst = Buffer.from(a);
    xorInto(dst, b, n);
    expect(dst.equals(referenceXor(a, b))).toBe(true);
  });

  it('touches only the first `length` bytes (zero-padding is a shorter length)', () => {
    const a = seededBytes(100, 3);
    const b = seededBytes(100, 4);
    const dst = Buffer.from(a);
    xorInto(dst, b, 37);
    expect(dst.subarray(0, 37).equals(referenceXor(a.subarray(0, 37), b))).toBe(true);
    expect(dst.subarray(37).equals(a.subarray(37))).toBe(true);
  });

  it('handles buffers that are not 8-byte aligned (falls back to bytes)', () => {
    const backingA = seededBytes(4103, 5);
    const backingB = seededBytes(4103, 6);
    const a = backingA.subarray(3); // byteOffset 3 inside its ArrayBuffer pool
    const b = backingB.subarray(5);
    const expected = referenceXor(a.subarray(0, 4097), b.subarray(0, 4097));
    xorInto(a, b, 4097);
    expect(a.subarray(0, 4097).equals(expected)).toBe(true);
  });

  it('reuses a bound kernel across calls of different lengths', () => {
    const dst = Buffer.alloc(64);
    const src = seededBytes(64, 8);
    const xor = bindXor(dst, src);
    xor(64);
    expect(dst.equals(src)).toBe(true);
    xor(13); // undo the first 13 bytes only
    expect(dst.subarray(0, 13).every((v) => v === 0)).toBe(true);
    expect(dst.subarray(13).equals(src.subarray(13))).toBe(true);
  });

  it('refuses a length beyond either buffer', () => {
    expect(() => xorInto(Buffer.alloc(4), Buffer.alloc(8), 5)).toThrow(RangeError);
  });

  it('is its own inverse: decode(encode(x)) == x for random data and lengths (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }), (fine, base) => {
        const n = Math.min(fine.length, base.length);
        const encoded = Buffer.from(fine);
        xorInto(encoded, base, n);
        expect(encoded.equals(referenceXor(fine, base))).toBe(true);
        xorInto(encoded, base, n);
        expect(encoded.equals(Buffer.from(fine))).toBe(true);
      }),
    );
  });
});
