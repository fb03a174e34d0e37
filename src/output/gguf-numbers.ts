/**
 * The number formats a GGUF holds, converted exactly as ggml converts them (shared/reference/gguf.md,
 * 4.2-4.4): fp16 and bf16 to and from float32 with round-to-nearest-even, and Q8_0 and Q5_0 as
 * `quantize_row_q8_0_ref` and `quantize_row_q5_0_ref` make them (float32 arithmetic throughout), so
 * a file written here equals the reference's bytes.
 */
import { Q5_0_BLOCK, Q5_0_BYTES, Q8_0_BLOCK, Q8_0_BYTES } from './ggml-blocks.js';
import { q8Kernel } from './q8-simd.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

const bitsOf = (x: number): number => {
  f32[0] = x;
  return u32[0]!;
};
const fromBits = (bits: number): number => {
  u32[0] = bits >>> 0;
  return f32[0]!;
};

/** IEEE binary16 to float32 (exact). */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  // A normal value's bits moved into float32's places (2 ** (exp - 15) cost 50 ns a call).
  return fromBits(((h & 0x8000) << 16) | ((exp + 112) << 23) | (frac << 13));
}

const SCALE_TO_INF = 2 ** 112;
const SCALE_TO_ZERO = 2 ** -110;

/** float32 to binary16 as ggml_compute_fp32_to_fp16 does: nearest even, overflow to inf, NaN to 0x7e00. */
export function f32ToF16(x: number): number {
  let base = Math.fround(Math.fround(Math.abs(x) * SCALE_TO_INF) * SCALE_TO_ZERO);
  const w = bitsOf(x);
  const shl1 = (w * 2) >>> 0;
  const sign = (w & 0x80000000) >>> 0;
  let bias = (shl1 & 0xff000000) >>> 0;
  if (bias < 0x71000000) bias = 0x71000000;
  base = Math.fround(fromBits(((bias >>> 1) + 0x07800000) >>> 0) + base);
  const bits = bitsOf(base);
  const nonsign = ((bits >>> 13) & 0x7c00) + (bits & 0x0fff);
  return (sign >>> 16) | (shl1 > 0xff000000 ? 0x7e00 : nonsign);
}

/** bfloat16 to float32 (exact). */
export function bf16ToF32(h: number): number {
  return fromBits(h << 16);
}

/** float32 to bfloat16 as ggml_compute_fp32_to_bf16 does: nearest even, NaN made quiet. */
export function f32ToBf16(x: number): number {
  const i = bitsOf(x);
  if ((i & 0x7fffffff) >>> 0 > 0x7f800000) return ((i >>> 16) | 64) & 0xffff;
  return Math.floor((i + (0x7fff + ((i >>> 16) & 1))) / 65536) & 0xffff;
}



/** `values` (float32, a multiple of 32 of them) as Q8_0 blocks into `out` from `at`. */
export function quantizeQ8_0(values: Float32Array, out: Buffer, at: number): void {
  const kernel = q8Kernel();
  if (kernel) kernel.quantize(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), 'F32', out, at);
  else quantizeQ8_0Portable(values, out, at);
}

/** quantizeQ8_0 in JavaScript, where WebAssembly SIMD is not available: the same bytes, about 5x slower. */
export function quantizeQ8_0Portable(values: Float32Array, out: Buffer, at: number): void {
  const q = new Int8Array(out.buffer, out.byteOffset, out.length);
  const blocks = values.length / Q8_0_BLOCK;
  for (let b = 0; b < blocks; b++) {
    const start = b * Q8_0_BLOCK;
    // fmaxf(amax, fabsf(x)): a NaN is passed over, as C's fmaxf does.
    let amax = 0;
    for (let j = start; j < start + Q8_0_BLOCK; j++) {
      const a = Math.abs(values[j]!);
      amax = a > amax ? a : amax;
    }
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    const block = at + b * Q8_0_BYTES;
    out.writeUInt16LE(f32ToF16(d), block);
    const to = block + 2 - start;
    for (let j = start; j < start + Q8_0_BLOCK; j++) {
      // roundf (half away from zero) of the float32 product, |x| <= 127, without a branch on its sign
      // (random signs made that the cost): truncated, plus one toward its sign when |fraction| >= 1/2.
      const x = Math.fround(values[j]! * id);
      const t = x | 0;
      q[to + j] = t + (((x - t) * 2) | 0);
    }
  }
}


/**
 * `values` (float32, a multiple of 32 of them) as Q5_0 blocks into `out` from `at`, as
 * `quantize_row_q5_0_ref` makes them: d = max / -16 of the value largest in magnitude, each value
 * times 1/d plus 16.5 truncated to 0..31; the low four bits of values j and j+16 share byte j, the
 * fifth bits go into a little-endian uint32 (bit j for value j). llama-quantize writes it where a
 * Q4_K tensor's rows are not whole 256-value blocks.
 */
export function quantizeQ5_0(values: Float32Array, out: Buffer, at: number): void {
  const blocks = values.length / Q5_0_BLOCK;
  const half = Q5_0_BLOCK / 2;
  for (let b = 0; b < blocks; b++) {
    const start = b * Q5_0_BLOCK;
    let amax = 0;
    let max = 0;
    for (let j = start; j < start + Q5_0_BLOCK; j++) {
      const v = values[j]!;
      // `amax < fabsf(v)`: the first of equal magnitudes keeps its sign, and a NaN never wins.
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = Math.fround(max / -16);
    const id = d ? Math.fround(1 / d) : 0;
    const block = at + b * Q5_0_BYTES;
    out.writeUInt16LE(f32ToF16(d), block);
    let qh = 0;
    for (let j = 0; j < half; j++) {
      // (int8_t)(x + 16.5f): a float32 sum truncated toward zero, at most 32 here.
      const xi0 = Math.min(31, Math.trunc(Math.fround(Math.fround(values[start + j]! * id) + 16.5)));
      const xi1 = Math.min(31, Math.trunc(Math.fround(Math.fround(values[start + half + j]! * id) + 16.5)));
      out[block + 6 + j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
      qh |= ((xi0 & 0x10) >>> 4) << j;
      qh |= ((xi1 & 0x10) >>> 4) << (j + half);
    }
    out.writeUInt32LE(qh >>> 0, block + 2);
  }
}
