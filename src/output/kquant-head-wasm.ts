/**
 * The scalar step between a K-quant's search and its finish, as WebAssembly code the finishing
 * kernels (kquant-finish-wasm.ts) run first for each block: the block's scales coded (Q4_K: d, dmin
 * and each sub-block's 6-bit scale and min; Q6_K: each sub-block's 8-bit scale and d) into its
 * bytes, and each sub-block's dj (and dm) as the coded bytes give them back, written over the
 * search's results for the requantizing that follows. In JavaScript (q4kHead and q6kHead in
 * gguf-kquants.ts, still the portable path's) this step took about 0.7 ns a value of Q4_K's 15.6
 * and 0.4 ns of Q6_K's 7.7 (interleaved runs).
 *
 * Float32 operations in the C code's order, with its comparisons (a NaN never replaces a maximum)
 * and nearest_int read from the bits, so every block gets the reference's bytes.
 */
import { f32, f32Load, f32Store, get, i32, i32Store16, i32Store8, Locals, OP, set, splat4, store, tee } from '../codec/wasm-ops.js';
import { fp16Scratch, fromF16, toF16 } from './fp16-wasm.js';
import { Q6_K_BYTES } from './ggml-blocks.js';
import { GROUP_MAX_EPS } from './kquant-search.js';
import { MAGIC } from './kquant-search-wasm.js';

/** The block's search result (local 2 points at it): float32 at `offset`. */
const result = (offset: number) => [...get(2), ...f32Load(offset)];

/** ggml's nearest_int of the float32 on the stack, from its bits: (bits(x + 1.5 * 2^23) & 0x7fffff) - 0x400000. */
const nearestInt = [...f32(MAGIC), OP.f32Add, OP.i32FromF32Bits, ...i32(0x7fffff), OP.i32And, ...i32(0x400000), OP.i32Sub];

/** Local `v` := min(`hi`, v), signed. */
const atMost = (v: number, hi: number) => [...i32(hi), ...get(v), ...get(v), ...i32(hi), OP.i32GtS, OP.select, ...set(v)];

/** Local `max` := value at `offset` if it is greater (`if (x > max) max = x`). */
const raise = (max: number, v: number, offset: number) => [...result(offset), ...tee(v), ...get(max), ...get(v), ...get(max), OP.f32Gt, OP.select, ...set(max)];

/** Local `to` := `c / max` if max > 0, else 0. */
const inverse = (to: number, c: number, max: number) => [...f32(c), ...get(max), OP.f32Div, ...f32(0), ...get(max), ...f32(0), OP.f32Gt, OP.select, ...set(to)];

/**
 * quantize_row_q4_K_ref's step after make_qkx2_quants, for the block whose results local 2 points at
 * (scales at 0, -mins at 32) and whose output local `out` points at: d and dmin as fp16 at out + 0
 * and + 2, the 12 bytes of 6-bit scales and mins from out + 4; dj and dm in place of the scales and -mins.
 */
export function q4kHeadCode(loc: Locals, out: number): number[] {
  const s = fp16Scratch(loc);
  const [maxS, maxM, invS, invM, dF, dminF, v] = [loc.f32(), loc.f32(), loc.f32(), loc.f32(), loc.f32(), loc.f32(), loc.f32()];
  const h = loc.i32();
  const ls = Array.from({ length: 8 }, () => loc.i32());
  const lm = Array.from({ length: 8 }, () => loc.i32());
  const code = [...f32(0), ...set(maxS), ...f32(0), ...set(maxM)];
  for (let j = 0; j < 8; j++) code.push(...raise(maxS, v, 4 * j), ...raise(maxM, v, 32 + 4 * j));
  code.push(...inverse(invS, 63, maxS), ...inverse(invM, 63, maxM));
  code.push(...get(out), ...get(maxS), ...f32(63), OP.f32Div, ...toF16(s), ...tee(h), ...i32Store16(0), ...get(h), ...fromF16(s), ...set(dF));
  code.push(...get(out), ...get(maxM), ...f32(63), OP.f32Div, ...toF16(s), ...tee(h), ...i32Store16(2), ...get(h), ...fromF16(s), ...set(dminF));
  for (let j = 0; j < 8; j++) {
    for (const [l, inv, d, at] of [[ls[j]!, invS, dF, 4 * j], [lm[j]!, invM, dminF, 32 + 4 * j]] as const) {
      code.push(...get(inv), ...result(at), OP.f32Mul, ...nearestInt, ...i32(0xff), OP.i32And, ...set(l), ...atMost(l, 63));
      code.push(...get(2), ...get(d), ...get(l), OP.f32FromI32, OP.f32Mul, ...f32Store(at));
    }
  }
  // The 6-bit codes: sub-blocks 0-3 in the low bits of bytes 0-7, 4-7 split over bytes 8-11 and the top bits of 0-7.
  const top = (low: number, high: number) => [...get(low), ...get(high), ...i32(4), OP.i32ShrU, ...i32(6), OP.i32Shl, OP.i32Or];
  for (let j = 0; j < 4; j++) {
    code.push(...get(out), ...top(ls[j]!, ls[j + 4]!), ...i32Store8(4 + j));
    code.push(...get(out), ...top(lm[j]!, lm[j + 4]!), ...i32Store8(8 + j));
  }
  for (let j = 4; j < 8; j++) {
    code.push(...get(out), ...get(ls[j]!), ...i32(0xf), OP.i32And, ...get(lm[j]!), ...i32(0xf), OP.i32And, ...i32(4), OP.i32Shl, OP.i32Or, ...i32Store8(8 + j));
  }
  return code;
}

/**
 * quantize_row_q6_K_ref's step after make_qx_quants, for the block whose results local 2 points at
 * (16 scales) and whose output local `out` points at: the 8-bit scales at out + 192, d as fp16 at
 * out + 208, dj in place of the scales. `zero` is set for a block whose scales are all below
 * GROUP_MAX_EPS, which the C code leaves all zeros: zeroBlock clears it once it is packed.
 */
export function q6kHeadCode(loc: Locals, out: number, zero: number): number[] {
  const s = fp16Scratch(loc);
  const [maxS, maxA, isc, dF, v, a] = [loc.f32(), loc.f32(), loc.f32(), loc.f32(), loc.f32(), loc.f32()];
  const [greater, h, l] = [loc.i32(), loc.i32(), loc.i32()];
  const code = [...f32(0), ...set(maxS), ...f32(0), ...set(maxA)];
  for (let j = 0; j < 16; j++) {
    code.push(...result(4 * j), ...tee(v), OP.f32Abs, ...tee(a), ...get(maxA), OP.f32Gt, ...set(greater));
    code.push(...get(a), ...get(maxA), ...get(greater), OP.select, ...set(maxA), ...get(v), ...get(maxS), ...get(greater), OP.select, ...set(maxS));
  }
  code.push(...get(maxA), ...f32(GROUP_MAX_EPS), OP.f32Lt, ...set(zero));
  code.push(...f32(-128), ...get(maxS), OP.f32Div, ...set(isc));
  code.push(...get(out), ...f32(1), ...get(isc), OP.f32Div, ...toF16(s), ...tee(h), ...i32Store16(208), ...get(h), ...fromF16(s), ...set(dF));
  for (let j = 0; j < 16; j++) {
    // An int8, as the C code stores it.
    code.push(...get(isc), ...result(4 * j), OP.f32Mul, ...nearestInt, ...set(l), ...atMost(l, 127));
    code.push(...get(l), ...i32(24), OP.i32Shl, ...i32(24), OP.i32ShrS, ...set(l));
    code.push(...get(out), ...get(l), ...i32Store8(192 + j), ...get(2), ...get(dF), ...get(l), OP.f32FromI32, OP.f32Mul, ...f32Store(4 * j));
  }
  return code;
}

/** The Q6_K block at local `out` all zeros where local `zero` is set. */
export function zeroBlock(out: number, zero: number): number[] {
  const code = [...get(zero), OP.if, OP.noResult];
  for (let at = 0; at + 16 <= Q6_K_BYTES; at += 16) code.push(...get(out), ...splat4(0), ...store(at));
  code.push(...get(out), ...i32(0), ...i32Store16(Q6_K_BYTES - (Q6_K_BYTES % 16)));
  return [...code, OP.end];
}
