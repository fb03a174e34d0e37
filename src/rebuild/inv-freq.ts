/**
 * `rotary_emb.inv_freq` as the 2023 conversion saved it: `1 / 10000 ** (arange(0, head_dim, 2) / head_dim)`
 * in fp32, cast to fp16 when the reload set the model's dtype, and back to fp32 by accelerate 0.18
 * (shared/reference/llama-conversion.md 2.2): fp32 holding fp16-rounded values.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** An fp32 value rounded to the nearest fp16 (ties to even), returned as the fp32 it widens back to. */
export function roundToHalf(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = bits & 0x80000000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return x;
  const e = exp - 127 + 15;
  let half: number;
  if (e >= 0x1f) {
    half = 0x7c00;
  } else if (e <= 0) {
    // Subnormal in fp16: shift the mantissa (with its hidden bit) and round to nearest even.
    if (e < -10) return sign ? -0 : 0;
    mant |= 0x800000;
    const shift = 14 - e;
    const rest = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    half = mant >>> shift;
    if (rest > halfway || (rest === halfway && (half & 1) === 1)) half += 1;
  } else {
    const rest = mant & 0x1fff;
    half = (e << 10) | (mant >>> 13);
    if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half += 1;
  }
  return halfToFloat(half) * (sign ? -1 : 1);
}

function halfToFloat(h: number): number {
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return m * 2 ** -24;
  if (e === 0x1f) return m === 0 ? Infinity : NaN;
  return (1 + m / 1024) * 2 ** (e - 15);
}

/** The 2023 conversion's inv_freq bytes for a head of `headDim`: little-endian fp32, headDim / 2 values. */
export function invFreqBytes(headDim: number): Buffer {
  const out = Buffer.alloc((headDim / 2) * 4);
  for (let i = 0; i < headDim / 2; i++) {
    // torch computes in fp32: the exponent, the power and the reciprocal each round to fp32.
    const t = Math.fround(Math.fround(2 * i) / headDim);
    const p = Math.fround(10000 ** t);
    out.writeFloatLE(roundToHalf(Math.fround(1 / p)), i * 4);
  }
  return out;
}
