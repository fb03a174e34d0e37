/**
 * Q4_K and Q6_K with their searches in WebAssembly SIMD (output/kquant-simd.ts) against the JavaScript
 * quantizers and the compiled reference's vectors: weights of many magnitudes, blocks and sub-blocks
 * that are zero, constant, one-signed or sparse, values at the rounding ties of the levels, and every
 * finite fp16 and bf16 bit pattern widened in the kernel.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Q4_K_BYTES, Q6_K_BYTES, QK_K } from '../../src/output/ggml-blocks.js';
import { GGML_TYPE } from '../../src/output/gguf-format.js';
import { quantizeQ4K, quantizeQ4KPortable, quantizeQ6K, quantizeQ6KPortable } from '../../src/output/gguf-kquants.js';
import { bf16ToF32, f16ToF32 } from '../../src/output/gguf-numbers.js';
import { convertRows } from '../../src/output/gguf-tensors.js';
import { KQUANT_MODULES, kquantKernel, moduleBytes } from '../../src/output/kquant-simd.js';
import { ROOT } from '../support/helpers.js';

const v = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'gguf', 'kquant-vectors.json'), 'utf8')) as { f32Bits: number[]; q4_K: string; q6_K: string };

const KINDS = [
  { name: 'Q4_K', type: GGML_TYPE.Q4_K, bytes: Q4_K_BYTES, simd: quantizeQ4K, portable: quantizeQ4KPortable, reference: v.q4_K },
  { name: 'Q6_K', type: GGML_TYPE.Q6_K, bytes: Q6_K_BYTES, simd: quantizeQ6K, portable: quantizeQ6KPortable, reference: v.q6_K },
] as const;

/** The first block where two outputs differ, for a readable failure. */
function firstDiff(a: Buffer, b: Buffer, blockBytes: number): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return Math.floor(i / blockBytes);
  return -1;
}

function random(seed: number): () => number {
  return () => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
}

/** Blocks of 256 float32 values of the kinds that take the searches' every branch. */
function hardBlocks(): Float32Array {
  const next = random(424242);
  const gauss = () => Math.sqrt(-2 * Math.log(next() + 1e-12)) * Math.cos(2 * Math.PI * next());
  const blocks: number[][] = [];
  for (const scale of [1e-6, 1e-3, 0.02, 1, 300]) {
    for (let k = 0; k < 6; k++) blocks.push(Array.from({ length: QK_K }, () => scale * gauss()));
  }
  blocks.push(new Array<number>(QK_K).fill(0));
  blocks.push(new Array<number>(QK_K).fill(0.25));
  blocks.push(new Array<number>(QK_K).fill(-0.75));
  blocks.push(Array.from({ length: QK_K }, () => Math.abs(gauss())));
  blocks.push(Array.from({ length: QK_K }, () => -Math.abs(gauss())));
  // Sub-blocks of zeros and constants beside ordinary ones: lanes that end early, next to lanes that search.
  blocks.push(Array.from({ length: QK_K }, (_, i) => (Math.floor(i / 32) % 2 ? 0.01 * gauss() : 0)));
  blocks.push(Array.from({ length: QK_K }, (_, i) => (Math.floor(i / 16) % 3 === 0 ? -0.5 : 0.01 * gauss())));
  // Positive and nearly constant (the min clamped to 0): every candidate's levels are equal, where
  // the fit divides by a D of 0 or of rounding's sign.
  blocks.push(Array.from({ length: QK_K }, () => 1 + 1e-4 * next()));
  blocks.push(Array.from({ length: QK_K }, (_, i) => (i % 3 ? 0.5 : Math.fround(0.5 + 2 ** -24))));
  // Sparse: one value of size among zeros, with either sign.
  blocks.push(Array.from({ length: QK_K }, (_, i) => (i % 37 === 0 ? (i % 2 ? 3 : -3) : 0)));
  // Halves: values at the ties of a 0..15 and a -32..31 grid.
  blocks.push(Array.from({ length: QK_K }, (_, i) => ((i % 32) - 16 + 0.5) / 8));
  blocks.push(Array.from({ length: QK_K }, (_, i) => (i % 64) - 32 + 0.5));
  // One tiny sub-block in a block of larger ones, and a block of values below Q6_K's 1e-15.
  blocks.push(Array.from({ length: QK_K }, (_, i) => (i < 16 ? 1e-20 * gauss() : gauss())));
  blocks.push(Array.from({ length: QK_K }, () => 1e-17 * gauss()));
  return Float32Array.from(blocks.flat());
}

/** Every finite 16-bit pattern of a format, shuffled, to whole blocks. */
function finiteHalves(finite: (h: number) => boolean): Uint16Array {
  const all = Array.from({ length: 65536 }, (_, i) => i).filter(finite);
  const next = random(777);
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  return Uint16Array.from(all.slice(0, all.length - (all.length % QK_K)));
}

describe('K-quants with the searches in WebAssembly SIMD', () => {
  it('are available on this Node (else a Q4_K_M GGUF takes the slow path)', () => {
    expect(kquantKernel()).toBeDefined();
  });

  it('a module file that is missing or not a valid module (an install cut short) is assembled instead', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mxor-kernels-'));
    try {
      const good = Buffer.from(KQUANT_MODULES['q4k-search']());
      writeFileSync(join(dir, 'q4k-search.wasm'), good.subarray(0, good.length - 100));
      expect(Buffer.from(moduleBytes('q4k-search', pathToFileURL(`${dir}/`))).equals(good)).toBe(true);
      expect(Buffer.from(moduleBytes('q6k-search', pathToFileURL(`${dir}/`))).equals(Buffer.from(KQUANT_MODULES['q6k-search']()))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the module files that `npm run build` writes for the workers are the modules assembled here', () => {
    for (const [name, assemble] of Object.entries(KQUANT_MODULES)) {
      const file = readFileSync(join(ROOT, 'dist', 'output', 'kernels', `${name}.wasm`));
      expect(file.equals(Buffer.from(assemble())), name).toBe(true);
    }
  });

  for (const k of KINDS) {
    it(`${k.name}: both quantizers give the compiled reference's bytes`, () => {
      const x = new Float32Array(new Uint32Array(v.f32Bits).buffer);
      const want = Buffer.from(k.reference, 'hex');
      for (const quantize of [k.simd, k.portable]) {
        const out = Buffer.alloc((x.length / QK_K) * k.bytes);
        quantize(x, out, 0);
        expect(firstDiff(out, want, k.bytes), quantize.name).toBe(-1);
      }
    });

    it(`${k.name}: zero, constant, one-signed, sparse, tied and tiny blocks give the JavaScript quantizer's bytes`, () => {
      const x = hardBlocks();
      const got = Buffer.alloc((x.length / QK_K) * k.bytes);
      const want = Buffer.alloc(got.length);
      k.simd(x, got, 0);
      k.portable(x, want, 0);
      expect(firstDiff(got, want, k.bytes)).toBe(-1);
    });

    for (const [dtype, widen, finite] of [
      ['F16', f16ToF32, (h: number) => (h & 0x7c00) !== 0x7c00],
      ['BF16', bf16ToF32, (h: number) => (h & 0x7f80) !== 0x7f80],
    ] as const) {
      it(`${k.name}: every finite ${dtype} bit pattern, widened in the kernel, quantizes as the JavaScript quantizer does`, () => {
        const halves = finiteHalves(finite);
        // Also made smaller, so that not every block is ruled by its largest values.
        const tame = halves.map((h) => h & 0xbfff);
        for (const bits of [halves, tame]) {
          const got = convertRows(Buffer.from(bits.buffer), dtype, k.type, QK_K);
          const want = Buffer.alloc(got.length);
          k.portable(Float32Array.from(bits, widen), want, 0);
          expect(firstDiff(got, want, k.bytes)).toBe(-1);
        }
      });
    }
  }
});
