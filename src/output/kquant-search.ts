/**
 * The searches of Q4_K and Q6_K in JavaScript (ggml's make_qkx2_quants and make_qx_quants), where
 * WebAssembly SIMD is not available (kquant-search-wasm.ts does the same work four sub-blocks at a
 * time): float32 arithmetic step by step (Math.fround after every operation, no fused multiply-add),
 * sums in index order, and ggml's nearest_int (round half to even through a float add).
 */
const f = Math.fround;

export const GROUP_MAX_EPS = f(1e-15);
const RDELTA = f(0.1);


/**
 * ggml's nearest_int: the float32 sum with 1.5 * 2^23 is the value rounded half to even (|x| < 2^22,
 * as ggml asserts); read back as a number rather than from its bits, which cost a store and a load.
 */
export function nearestInt(x: number): number {
  return f(x + 12582912) - 12582912;
}

const nearestF32 = new Float32Array(1);
const nearestBits = new Int32Array(nearestF32.buffer);

/**
 * ggml's nearest_int exactly, from the bits as C reads them: the same as nearestInt for |x| < 2^22,
 * and for the rest what C gives (a NaN 0, an infinity -2^22). For values that may be far from a level:
 * a block whose d overflowed fp16 divides by an infinity or a NaN.
 */
export function nearestIntBits(x: number): number {
  nearestF32[0] = x + 12582912;
  return (nearestBits[0]! & 0x7fffff) - 0x400000;
}

export const clamp = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, v));

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
export function makeQxQuants(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array): number {
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
  // C's truth of a float: a NaN is true.
  let scale = qxSumL2 !== 0 ? f(qxSumLX / qxSumL2) : 0;
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

/** Each of the 8 sub-blocks' scale and -min (quantize_row_q4_K_ref's search), and the block's levels into L. */
export function searchQ4K(x: Float32Array, L: Uint8Array, scales: Float32Array, mins: Float32Array): void {
  for (let j = 0; j < 8; j++) {
    const xo = 32 * j;
    let sumX2 = 0;
    for (let l = xo; l < xo + 32; l++) sumX2 = f(sumX2 + f(x[l]! * x[l]!));
    const avX = f(Math.sqrt(f(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = f(avX + Math.abs(x[xo + l]!));
    makeQkx2Quants(32, 15, x, xo, weights, L, Laux, -1, 20);
    scales[j] = qkx2Scale;
    mins[j] = qkx2Min;
  }
}

const weights = new Float32Array(32);
const Laux = new Uint8Array(32);
