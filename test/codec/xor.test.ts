import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createXorMemory, xorInto } from '../../src/codec/xor.js';
import { referenceXor, seededBytes } from '../support/helpers.js';

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

describe.each([
  ['wasm-simd', true],
  ['javascript', false],
] as const)('shared-memory kernel (%s)', (kind, simd) => {
  const memory = createXorMemory(1 << 20, { simd });

  it('is the kernel asked for', () => {
    expect(memory.kind).toBe(kind);
    expect(memory.buffer).toBeInstanceOf(SharedArrayBuffer);
  });

  it.each([0, 1, 15, 16, 63, 64, 65, 127, 4095, 4096, 4097, 65_599])('matches byte-wise XOR for %i bytes at odd offsets', (n) => {
    const view = new Uint8Array(memory.buffer);
    const dstOffset = 8;
    const srcOffset = 300_000 + 3;
    const a = seededBytes(n + 32, n + 1);
    const b = seededBytes(n, n + 2);
    view.set(a, dstOffset);
    view.set(b, srcOffset);
    memory.xor(dstOffset, srcOffset, n);
    const got = Buffer.from(view.subarray(dstOffset, dstOffset + n + 32));
    expect(got.subarray(0, n).equals(referenceXor(a.subarray(0, n), b))).toBe(true);
    // Bytes past `length` are untouched.
    expect(got.subarray(n).equals(a.subarray(n))).toBe(true);
  });
});
