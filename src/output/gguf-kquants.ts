/**
 * The K-quants of a Q4_K_M GGUF, Q4_K and Q6_K, as llama-quantize makes them without an importance
 * matrix (its reference quantizers; shared/reference/gguf.md 4.5-4.8): float32 arithmetic step by
 * step (Math.fround after every operation, no fused multiply-add), sums in index order, and ggml's
 * nearest_int (round half to even through a float add). Held byte for byte to the C reference's
 * output (fixtures/make-kquant-vectors.py).
 */
import { f16ToF32, f32ToF16 } from './gguf-numbers.js';

const f = Math.fround;
export const QK_K = 256;
export const Q4_K_BYTES = 144;
export const Q6_K_BYTES = 210;
const GROUP_MAX_EPS = f(1e-15);
const RDELTA = f(0.1);


/**
 * ggml's nearest_int: the float32 sum with 1.5 * 2^23 is the value rounded half to even (|x| < 2^22,
 * as ggml asserts); read back as a number rather than from its bits, which cost a store and a load.
 */
function nearestInt(x: number): number {
  return f(x + 12582912) - 12582912;
}

const clamp = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, v));

/** make_qkx2_quants' result: written here rather than returned, so that the hot loop allocates nothing. */
let qkx2Scale = 0;
let qkx2Min = 0;

/**
 * make_qkx2_quants: a weighted search of scale and min for the `n` values of `x` from `xo` into
 * 0..nmax, their levels into L from `xo`; the result in qkx2Scale and qkx2Min (-min).
 */
function makeQkx2Quants(n: number, nmax: number, x: Float32Array, xo: number, weights: Float32Array, L: Uint8Array, Laux: Uint8Array, rmin: number, nstep: number): void {
  let min = x[xo]!;
  let max = x[xo]!;
  let sumW = weights[0]!;
  let sumX = f(sumW * x[xo]!);
  for (let i = 1; i < n; i++) {
    const v = x[xo + i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    const w = weights[i]!;
    sumW = f(sumW + w);
    sumX = f(sumX + f(w * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, xo, xo + n);
    qkx2Scale = 0;
    qkx2Min = -min;
    return;
  }
  let iscale = f(nmax / f(max - min));
  let scale = f(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i]!;
    const l = clamp(nearestInt(f(iscale * f(v - min))), 0, nmax);
    L[xo + i] = l;
    const diff = f(f(f(scale * l) + min) - v);
    bestError = f(bestError + f(weights[i]! * f(diff * diff)));
  }
  for (let is = 0; is <= nstep; is++) {
    // max - min with the min found so far, as ggml has it.
    iscale = f(f(f(rmin + f(RDELTA * is)) + nmax) / f(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i]!;
      const l = clamp(nearestInt(f(iscale * f(v - min))), 0, nmax);
      Laux[i] = l;
      const wl = f(weights[i]! * l);
      sumL = f(sumL + wl);
      sumL2 = f(sumL2 + f(wl * l));
      sumXL = f(sumXL + f(wl * v));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (D > 0) {
      let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / D);
      let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = f(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        const diff = f(f(f(thisScale * Laux[i]!) + thisMin) - x[xo + i]!);
        curError = f(curError + f(weights[i]! * f(diff * diff)));
      }
      if (curError < bestError) {
        for (let i = 0; i < n; i++) L[xo + i] = Laux[i]!;
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  qkx2Scale = scale;
  qkx2Min = -min;
}

/** make_qx_quants' sums for one candidate scale (see qkx2Scale for why they are not returned). */
let qxSumLX = 0;
let qxSumL2 = 0;

/** Σ w·x·l and Σ w·l² of the `n` values of `x` from `xo` at scale `iscale`; their levels + nmax into L when `store`. */
function qxSums(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array, iscale: number, store: boolean): void {
  let sumlx = 0;
  let suml2 = 0;
  for (let i = xo; i < xo + n; i++) {
    const v = x[i]!;
    const l = clamp(nearestInt(f(iscale * v)), -nmax, nmax - 1);
    if (store) L[i] = l + nmax;
    const w = f(v * v);
    sumlx = f(sumlx + f(f(w * v) * l));
    suml2 = f(suml2 + f(f(w * l) * l));
  }
  qxSumLX = sumlx;
  qxSumL2 = suml2;
}

/** make_qx_quants with rmse_type 1 (weights x*x): the scale of the `n` values of `x` from `xo` into -nmax..nmax-1 (L from `xo` holds l + nmax). */
function makeQxQuants(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array): number {
  let max = 0;
  let amax = 0;
  for (let i = xo; i < xo + n; i++) {
    const ax = Math.abs(x[i]!);
    if (ax > amax) {
      amax = ax;
      max = x[i]!;
    }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, xo, xo + n);
    return 0;
  }
  qxSums(n, nmax, x, xo, L, f(-nmax / max), true);
  let scale = qxSumL2 ? f(qxSumLX / qxSumL2) : 0;
  let best = f(scale * qxSumLX);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    const iscale = f(-f(nmax + f(RDELTA * is)) / max);
    qxSums(n, nmax, x, xo, L, iscale, false);
    const sumlx = qxSumLX;
    const suml2 = qxSumL2;
    if (suml2 > 0 && f(sumlx * sumlx) > f(best * suml2)) {
      qxSums(n, nmax, x, xo, L, iscale, true);
      scale = f(sumlx / suml2);
      best = f(scale * sumlx);
    }
  }
  return scale;
}

/** `values` (a multiple of 256 float32 values) as Q4_K blocks into `out` from `at` (quantize_row_q4_K_ref). */
export function quantizeQ4K(values: Float32Array, out: Buffer, at: number): void {
  const L = new Uint8Array(QK_K);
  const Laux = new Uint8Array(32);
  const weights = new Float32Array(32);
  const mins = new Float32Array(8);
  const scales = new Float32Array(8);
  for (let b = 0; b < values.length / QK_K; b++) {
    const x = values.subarray(b * QK_K, (b + 1) * QK_K);
    const block = out.subarray(at + b * Q4_K_BYTES, at + (b + 1) * Q4_K_BYTES);
    block.fill(0);
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 8; j++) {
      const xo = 32 * j;
      let sumX2 = 0;
      for (let l = xo; l < xo + 32; l++) sumX2 = f(sumX2 + f(x[l]! * x[l]!));
      const avX = f(Math.sqrt(f(sumX2 / 32)));
      for (let l = 0; l < 32; l++) weights[l] = f(avX + Math.abs(x[xo + l]!));
      makeQkx2Quants(32, 15, x, xo, weights, L, Laux, -1, 20);
      const scale = qkx2Scale;
      const min = qkx2Min;
      scales[j] = scale;
      mins[j] = min;
      if (scale > maxScale) maxScale = scale;
      if (min > maxMin) maxMin = min;
    }
    const invScale = maxScale > 0 ? f(63 / maxScale) : 0;
    const invMin = maxMin > 0 ? f(63 / maxMin) : 0;
    const sc = block.subarray(4, 16);
    for (let j = 0; j < 8; j++) {
      const ls = Math.min(63, nearestInt(f(invScale * scales[j]!)) & 0xff);
      const lm = Math.min(63, nearestInt(f(invMin * mins[j]!)) & 0xff);
      if (j < 4) {
        sc[j] = ls;
        sc[j + 4] = lm;
      } else {
        sc[j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
        sc[j - 4]! |= (ls >> 4) << 6;
        sc[j]! |= (lm >> 4) << 6;
      }
    }
    const d = f32ToF16(f(maxScale / 63));
    const dmin = f32ToF16(f(maxMin / 63));
    block.writeUInt16LE(d, 0);
    block.writeUInt16LE(dmin, 2);
    for (let j = 0; j < 8; j++) {
      const [s, m] = j < 4 ? [sc[j]! & 63, sc[j + 4]! & 63] : [(sc[j + 4]! & 0xf) | ((sc[j - 4]! >> 6) << 4), (sc[j + 4]! >> 4) | ((sc[j]! >> 6) << 4)];
      const dj = f(f16ToF32(d) * s);
      if (!dj) continue;
      const dm = f(f16ToF32(dmin) * m);
      for (let ii = 0; ii < 32; ii++) L[32 * j + ii] = clamp(nearestInt(f(f(x[32 * j + ii]! + dm) / dj)), 0, 15);
    }
    const q = block.subarray(16);
    for (let j = 0; j < QK_K; j += 64) {
      for (let l = 0; l < 32; l++) q[j / 2 + l] = L[j + l]! | (L[j + l + 32]! << 4);
    }
  }
}

/** `values` (a multiple of 256 float32 values) as Q6_K blocks into `out` from `at` (quantize_row_q6_K_ref). */
export function quantizeQ6K(values: Float32Array, out: Buffer, at: number): void {
  const L = new Int8Array(QK_K);
  const scales = new Float32Array(16);
  for (let b = 0; b < values.length / QK_K; b++) {
    const x = values.subarray(b * QK_K, (b + 1) * QK_K);
    const block = out.subarray(at + b * Q6_K_BYTES, at + (b + 1) * Q6_K_BYTES);
    block.fill(0);
    let maxScale = 0;
    let maxAbsScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      const scale = makeQxQuants(16, 32, x, 16 * ib, L);
      scales[ib] = scale;
      if (Math.abs(scale) > maxAbsScale) {
        maxAbsScale = Math.abs(scale);
        maxScale = scale;
      }
    }
    if (maxAbsScale < GROUP_MAX_EPS) continue;
    const iscale = f(-128 / maxScale);
    const d = f32ToF16(f(1 / iscale));
    block.writeUInt16LE(d, 208);
    const sc = new Int8Array(block.buffer, block.byteOffset + 192, 16);
    for (let ib = 0; ib < 16; ib++) sc[ib] = Math.min(127, nearestInt(f(iscale * scales[ib]!)));
    for (let j = 0; j < 16; j++) {
      const dj = f(f16ToF32(d) * sc[j]!);
      if (!dj) continue;
      for (let ii = 0; ii < 16; ii++) L[16 * j + ii] = clamp(nearestInt(f(x[16 * j + ii]! / dj)), -32, 31) + 32;
    }
    const ql = block.subarray(0, 128);
    const qh = block.subarray(128, 192);
    for (let j = 0; j < QK_K; j += 128) {
      const qlAt = j / 2;
      const qhAt = j / 4;
      for (let l = 0; l < 32; l++) {
        const l0 = L[j + l]!;
        const l1 = L[j + l + 32]!;
        const l2 = L[j + l + 64]!;
        const l3 = L[j + l + 96]!;
        ql[qlAt + l] = (l0 & 0xf) | ((l2 & 0xf) << 4);
        ql[qlAt + l + 32] = (l1 & 0xf) | ((l3 & 0xf) << 4);
        qh[qhAt + l] = (l0 >> 4) | ((l1 >> 4) << 2) | ((l2 >> 4) << 4) | ((l3 >> 4) << 6);
      }
    }
  }
}
