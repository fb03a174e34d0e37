/**
 * The GGUF number formats against vectors made without this code (fixtures/make-quant-vectors.py:
 * numpy's float16, torch's bfloat16, Q8_0 in numpy float32 as ggml's reference computes it).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Q8_0_BYTES } from '../../src/output/ggml-blocks.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, quantizeQ8_0 } from '../../src/output/gguf-numbers.js';
import { ROOT } from '../support/helpers.js';

const v = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'gguf', 'quant-vectors.json'), 'utf8')) as {
  f32Bits: number[];
  f16: number[];
  bf16: number[];
  q8_0: { f32Bits: number[]; blocks: { d: number; qs: number[] }[] };
};
const floats = (bits: number[]) => new Float32Array(new Uint32Array(bits).buffer);

describe('GGUF number formats', () => {
  it('float32 -> fp16 and bf16 round to nearest even, bit for bit with numpy and torch (overflow to inf, subnormals)', () => {
    const x = floats(v.f32Bits);
    expect(x.length).toBeGreaterThan(6000);
    const f16 = Array.from(x, f32ToF16);
    const bf16 = Array.from(x, f32ToBf16);
    expect(f16).toEqual(v.f16);
    expect(bf16).toEqual(v.bf16);
  });

  it('fp16 and bf16 -> float32 are exact (every fp16 value goes back to itself)', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00 && h & 0x3ff) continue;
      expect(f32ToF16(f16ToF32(h)), `0x${h.toString(16)}`).toBe(h);
    }
    for (const h of [0x3f80, 0xbf80, 0x0001, 0x7f7f, 0x0000]) expect(f32ToBf16(bf16ToF32(h))).toBe(h);
  });

  it('Q8_0 blocks equal the reference quantizer\'s, scale and values', () => {
    const x = floats(v.q8_0.f32Bits);
    const out = Buffer.alloc((x.length / 32) * Q8_0_BYTES);
    quantizeQ8_0(x, out, 0);
    const got = v.q8_0.blocks.map((_, b) => ({ d: out.readUInt16LE(b * Q8_0_BYTES), qs: Array.from(out.subarray(b * Q8_0_BYTES + 2, (b + 1) * Q8_0_BYTES), (u) => (u << 24) >> 24) }));
    expect(got).toEqual(v.q8_0.blocks);
  });
});
