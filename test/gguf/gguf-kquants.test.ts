/**
 * Q4_K and Q6_K, and their fallbacks Q5_0 and Q8_0, byte for byte against llama.cpp's reference
 * quantizers, compiled from ggml (fixtures/make-kquant-vectors.py): model-like weights, mixed
 * magnitudes, one-signed, zero and constant blocks, ties, bf16-like values, blocks whose largest
 * magnitude comes with both signs, and past a model's weights: block scales beyond fp16 (an infinite
 * d, a NaN dj), squares beyond float32, scales near float32's smallest, and nearly constant blocks
 * whose fit divides by a D of 0. quantizeQ4K and quantizeQ6K are the WebAssembly ones where this
 * Node has SIMD (kquant-simd.test.ts holds the JavaScript ones to the same vectors).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Q4_K_BYTES, Q5_0_BYTES, Q6_K_BYTES, Q8_0_BYTES, QK_K } from '../../src/output/ggml-blocks.js';
import { quantizeQ4K, quantizeQ6K } from '../../src/output/gguf-kquants.js';
import { quantizeQ5_0, quantizeQ8_0 } from '../../src/output/gguf-numbers.js';
import { ROOT } from '../support/helpers.js';

const v = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'gguf', 'kquant-vectors.json'), 'utf8')) as { f32Bits: number[]; q4_K: string; q6_K: string; q8_0: string; q5_0: string };
const x = new Float32Array(new Uint32Array(v.f32Bits).buffer);

/** The first block where two outputs differ, for a readable failure. */
function firstDiff(a: Buffer, b: Buffer, blockBytes: number): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return Math.floor(i / blockBytes);
  return -1;
}

describe('K-quants as llama.cpp makes them', () => {
  it('Q4_K: every block equals quantize_row_q4_K_ref', () => {
    const out = Buffer.alloc((x.length / QK_K) * Q4_K_BYTES);
    quantizeQ4K(x, out, 0);
    const want = Buffer.from(v.q4_K, 'hex');
    expect(firstDiff(out, want, Q4_K_BYTES)).toBe(-1);
  });

  it('Q6_K: every block equals quantize_row_q6_K_ref', () => {
    const out = Buffer.alloc((x.length / QK_K) * Q6_K_BYTES);
    quantizeQ6K(x, out, 0);
    const want = Buffer.from(v.q6_K, 'hex');
    expect(firstDiff(out, want, Q6_K_BYTES)).toBe(-1);
  });

  it('Q5_0 (where Q4_K does not fit): every block equals quantize_row_q5_0_ref', () => {
    const out = Buffer.alloc((x.length / 32) * Q5_0_BYTES);
    quantizeQ5_0(x, out, 0);
    expect(firstDiff(out, Buffer.from(v.q5_0, 'hex'), Q5_0_BYTES)).toBe(-1);
  });

  it('Q8_0 agrees with the compiled reference too', () => {
    const out = Buffer.alloc((x.length / 32) * Q8_0_BYTES);
    quantizeQ8_0(x, out, 0);
    expect(firstDiff(out, Buffer.from(v.q8_0, 'hex'), Q8_0_BYTES)).toBe(-1);
  });
});
