/**
 * The Q8_0 quantizer in WebAssembly SIMD (output/q8-simd.ts) against the portable one and the
 * compiled reference's vectors: every fp16 and every bf16 bit pattern (infinities, NaNs,
 * subnormals, both zeros) widened in registers and quantized, and random float32 bit patterns,
 * give the bytes the portable loop gives from the same values.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GGML_TYPE } from '../../src/output/gguf-format.js';
import { Q8_0_BYTES } from '../../src/output/ggml-blocks.js';
import { bf16ToF32, f16ToF32, quantizeQ8_0, quantizeQ8_0Portable } from '../../src/output/gguf-numbers.js';
import { convertRows } from '../../src/output/gguf-tensors.js';
import { q8Kernel } from '../../src/output/q8-simd.js';
import { ROOT } from '../support/helpers.js';

const v = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'gguf', 'kquant-vectors.json'), 'utf8')) as { f32Bits: number[]; q8_0: string };

/** The first block where two outputs differ, for a readable failure. */
function firstDiff(a: Buffer, b: Buffer): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return Math.floor(i / Q8_0_BYTES);
  return -1;
}

/** Every 16-bit pattern once, shuffled so that blocks mix magnitudes and specials. */
function allHalves(): Uint16Array {
  const h = new Uint16Array(65536).map((_, i) => i);
  let seed = 12345;
  for (let i = h.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const j = seed % (i + 1);
    [h[i], h[j]] = [h[j]!, h[i]!];
  }
  return h;
}

describe('Q8_0 in WebAssembly SIMD', () => {
  it('is available on this Node (else every Q8_0 GGUF takes the slow path)', () => {
    expect(q8Kernel()).toBeDefined();
  });

  it('both quantizers give the compiled reference\'s bytes', () => {
    const x = new Float32Array(new Uint32Array(v.f32Bits).buffer);
    const want = Buffer.from(v.q8_0, 'hex');
    for (const quantize of [quantizeQ8_0, quantizeQ8_0Portable]) {
      const out = Buffer.alloc((x.length / 32) * Q8_0_BYTES);
      quantize(x, out, 0);
      expect(firstDiff(out, want), quantize.name).toBe(-1);
    }
  });

  for (const [dtype, widen] of [['F16', f16ToF32], ['BF16', bf16ToF32]] as const) {
    it(`every ${dtype} bit pattern, widened in registers, quantizes as the portable loop quantizes its value`, () => {
      const halves = allHalves();
      // Blocks made smaller in magnitude too, so that not every block's scale comes from an infinity.
      const tame = halves.map((h) => h & 0xbfff);
      for (const bits of [halves, tame]) {
        const got = convertRows(Buffer.from(bits.buffer), dtype, GGML_TYPE.Q8_0, 256);
        const want = Buffer.alloc(got.length);
        quantizeQ8_0Portable(Float32Array.from(bits, widen), want, 0);
        expect(firstDiff(got, want)).toBe(-1);
      }
    });
  }

  it('random float32 bit patterns (NaNs, infinities, subnormals among them) and near-ties quantize as the portable loop does', () => {
    const n = 32 * 8192;
    let seed = 987654321;
    const bits = new Uint32Array(n).map(() => (seed = (seed * 1664525 + 1013904223) >>> 0));
    // One block in eight of small normal values, as weights are.
    for (let b = 0; b < n / 32; b += 8) {
      for (let i = b * 32; i < b * 32 + 32; i++) bits[i] = ((bits[i]! & 0x807fffff) | ((112 + ((bits[i]! >>> 8) % 16)) << 23)) >>> 0;
    }
    const x = new Float32Array(bits.buffer);
    // Blocks whose scale is 1 (largest magnitude 127), holding halves and their float32 neighbours:
    // roundf's ties and near-ties, both signs.
    const step = (v: number, by: number) => new Float32Array(new Uint32Array([new Uint32Array(new Float32Array([v]).buffer)[0]! + by]).buffer)[0]!;
    const near = (k: number) => [k + 0.5, step(k + 0.5, -1), step(k + 0.5, 1), step(k + 0.5, -2)];
    const ties = Array.from({ length: 127 }, (_, k) => near(k)).flat().flatMap((t) => [t, -t]);
    for (let b = 0; b * 31 < ties.length; b++) x.set([127, ...ties.slice(b * 31, b * 31 + 31)], b * 32);
    const got = Buffer.alloc((n / 32) * Q8_0_BYTES);
    const want = Buffer.alloc(got.length);
    quantizeQ8_0(x, got, 0);
    quantizeQ8_0Portable(x, want, 0);
    expect(firstDiff(got, want)).toBe(-1);
  });
});
