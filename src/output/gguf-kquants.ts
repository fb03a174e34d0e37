/**
 * The K-quants of a Q4_K_M GGUF, Q4_K and Q6_K, as llama-quantize makes them without an importance
 * matrix (its reference quantizers; shared/reference/gguf.md 4.5-4.8): a search for each sub-block's
 * scale, the block's scales coded in a few bits, then every value quantized again at its coded scale
 * and the levels packed. In WebAssembly (kquant-simd.ts) where it runs, else in JavaScript here.
 * Float32 arithmetic step by step throughout, held byte for byte to the C reference's output
 * (fixtures/make-kquant-vectors.py).
 */
import { Q4_K_BYTES, Q6_K_BYTES, QK_K, SOURCE_BYTES, type SourceType } from './ggml-blocks.js';
import { f16ToF32, f32ToF16 } from './gguf-numbers.js';
import { clamp, GROUP_MAX_EPS, makeQxQuants, nearestIntBits, searchQ4K } from './kquant-search.js';
import { KQUANT_BLOCK_BYTES, kquantKernel, type KquantKernel, type KquantKind } from './kquant-simd.js';

const f = Math.fround;

/** `values` (a multiple of 256 float32 values) as Q4_K blocks into `out` from `at` (quantize_row_q4_K_ref). */
export function quantizeQ4K(values: Float32Array, out: Buffer, at: number): void {
  const kernel = kquantKernel();
  if (kernel) quantizeKquantRows(kernel, 'q4k', floatBytes(values), 'F32', out, at);
  else q4K(values, out, at);
}

/** `src`'s values of `source` type (whole blocks of 256) as Q4_K or Q6_K blocks into `out` from `at`, in the kernel. */
export function quantizeKquantRows(kernel: KquantKernel, kind: KquantKind, src: Uint8Array, source: SourceType, out: Buffer, at: number): void {
  const chunk = KERNEL_BLOCKS * QK_K * SOURCE_BYTES[source];
  for (let from = 0; from < src.length; from += chunk) {
    out.set(kernel.quantize(kind, src.subarray(from, from + chunk), source), at + (from / chunk) * KERNEL_BLOCKS * KQUANT_BLOCK_BYTES[kind]);
  }
}

/**
 * Blocks the kernel takes at a time. Its memory grows to the largest run and stays, in every
 * conversion worker: a whole half-MiB block of rows made it 2 MiB; 64 blocks need about 130 KiB and
 * cost no time that shows.
 */
const KERNEL_BLOCKS = 64;

const floatBytes = (values: Float32Array) => new Uint8Array(values.buffer, values.byteOffset, values.byteLength);

/** quantizeQ4K in JavaScript alone, where WebAssembly SIMD is not available. */
export function quantizeQ4KPortable(values: Float32Array, out: Buffer, at: number): void {
  q4K(values, out, at);
}

/**
 * A Q4_K block's first 16 bytes into `head` from `ho` (d, dmin, and each sub-block's 6-bit scale and
 * min), from the search's scales and -mins; each sub-block's dj and dm, as the coded bytes give them.
 */
function q4kHead(scales: Float32Array, mins: Float32Array, head: Uint8Array, ho: number, dj: Float32Array, dm: Float32Array): void {
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    if (scales[j]! > maxScale) maxScale = scales[j]!;
    if (mins[j]! > maxMin) maxMin = mins[j]!;
  }
  const invScale = maxScale > 0 ? f(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? f(63 / maxMin) : 0;
  const d = f32ToF16(f(maxScale / 63));
  const dmin = f32ToF16(f(maxMin / 63));
  head[ho] = d & 0xff;
  head[ho + 1] = d >> 8;
  head[ho + 2] = dmin & 0xff;
  head[ho + 3] = dmin >> 8;
  const dF = f16ToF32(d);
  const dminF = f16ToF32(dmin);
  const sc = ho + 4;
  head.fill(0, sc, sc + 12);
  for (let j = 0; j < 8; j++) {
    // The packed bytes give these back when read.
    const ls = Math.min(63, nearestIntBits(f(invScale * scales[j]!)) & 0xff);
    const lm = Math.min(63, nearestIntBits(f(invMin * mins[j]!)) & 0xff);
    if (j < 4) {
      head[sc + j] = ls;
      head[sc + j + 4] = lm;
    } else {
      head[sc + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      head[sc + j - 4]! |= (ls >> 4) << 6;
      head[sc + j]! |= (lm >> 4) << 6;
    }
    dj[j] = f(dF * ls);
    dm[j] = f(dminF * lm);
  }
}

/** Q4_K in JavaScript alone. */
function q4K(values: Float32Array, out: Buffer, at: number): void {
  const count = values.length / QK_K;
  const scales = new Float32Array(8);
  const mins = new Float32Array(8);
  const dj = new Float32Array(8);
  const dm = new Float32Array(8);
  const L = new Uint8Array(QK_K);
  for (let b = 0; b < count; b++) {
    const xo = b * QK_K;
    const o = at + b * Q4_K_BYTES;
    searchQ4K(values.subarray(xo, xo + QK_K), L, scales, mins);
    q4kHead(scales, mins, out, o, dj, dm);
    for (let j = 0; j < 8; j++) {
      // C's `if (!d)`: a NaN goes on.
      if (dj[j] === 0) continue;
      for (let i = 32 * j; i < 32 * j + 32; i++) L[i] = clamp(nearestIntBits(f(f(values[xo + i]! + dm[j]!) / dj[j]!)), 0, 15);
    }
    for (let j = 0; j < QK_K; j += 64) {
      for (let l = 0; l < 32; l++) out[o + 16 + j / 2 + l] = L[j + l]! | (L[j + l + 32]! << 4);
    }
  }
}

/** `values` (a multiple of 256 float32 values) as Q6_K blocks into `out` from `at` (quantize_row_q6_K_ref). */
export function quantizeQ6K(values: Float32Array, out: Buffer, at: number): void {
  const kernel = kquantKernel();
  if (kernel) quantizeKquantRows(kernel, 'q6k', floatBytes(values), 'F32', out, at);
  else q6K(values, out, at);
}

/** quantizeQ6K in JavaScript alone, where WebAssembly SIMD is not available. */
export function quantizeQ6KPortable(values: Float32Array, out: Buffer, at: number): void {
  q6K(values, out, at);
}

/**
 * A Q6_K block's last 18 bytes into `head` from `ho` (each sub-block's 8-bit scale, then d) from the
 * search's scales, and each sub-block's dj; false for a block whose scales are all about 0, which the
 * C code leaves all zeros.
 */
function q6kHead(scales: Float32Array, head: Uint8Array, ho: number, dj: Float32Array): boolean {
  let maxScale = 0;
  let maxAbsScale = 0;
  for (let ib = 0; ib < 16; ib++) {
    const scale = scales[ib]!;
    if (Math.abs(scale) > maxAbsScale) {
      maxAbsScale = Math.abs(scale);
      maxScale = scale;
    }
  }
  if (maxAbsScale < GROUP_MAX_EPS) return false;
  const iscale = f(-128 / maxScale);
  const d = f32ToF16(f(1 / iscale));
  head[ho + 208] = d & 0xff;
  head[ho + 209] = d >> 8;
  const dF = f16ToF32(d);
  for (let j = 0; j < 16; j++) {
    // An int8, as the C code stores it.
    const s = (Math.min(127, nearestIntBits(f(iscale * scales[j]!))) << 24) >> 24;
    head[ho + 192 + j] = s & 0xff;
    dj[j] = f(dF * s);
  }
  return true;
}

/** Q6_K in JavaScript alone. */
function q6K(values: Float32Array, out: Buffer, at: number): void {
  const count = values.length / QK_K;
  const scales = new Float32Array(16);
  const dj = new Float32Array(16);
  const L = new Int8Array(QK_K);
  for (let b = 0; b < count; b++) {
    const xo = b * QK_K;
    const o = at + b * Q6_K_BYTES;
    out.fill(0, o, o + Q6_K_BYTES);
    const x = values.subarray(xo, xo + QK_K);
    for (let ib = 0; ib < 16; ib++) scales[ib] = makeQxQuants(16, 32, x, 16 * ib, L);
    if (!q6kHead(scales, out, o, dj)) continue;
    for (let j = 0; j < 16; j++) {
      // C's `if (!d)`: a NaN goes on.
      if (dj[j] === 0) continue;
      for (let i = 16 * j; i < 16 * j + 16; i++) L[i] = clamp(nearestIntBits(f(x[i]! / dj[j]!)), -32, 31) + 32;
    }
    for (let j = 0; j < QK_K; j += 128) {
      const ql = o + j / 2;
      const qh = o + 128 + j / 4;
      for (let l = 0; l < 32; l++) {
        const l0 = L[j + l]!;
        const l1 = L[j + l + 32]!;
        const l2 = L[j + l + 64]!;
        const l3 = L[j + l + 96]!;
        out[ql + l] = (l0 & 0xf) | ((l2 & 0xf) << 4);
        out[ql + l + 32] = (l1 & 0xf) | ((l3 & 0xf) << 4);
        out[qh + l] = (l0 >> 4) | ((l1 >> 4) << 2) | ((l2 >> 4) << 4) | ((l3 >> 4) << 6);
      }
    }
  }
}
