/**
 * The last steps of Q4_K and Q6_K blocks as hand-assembled WebAssembly SIMD, after the search
 * (kquant-search-wasm.ts): for each block, first its scales coded into its bytes
 * (kquant-head-wasm.ts, which puts each sub-block's dj, and Q4_K's dm, in place of the search's scales),
 * then each sub-block's values quantized again at the scale its 6-bit (Q4_K) or 8-bit (Q6_K) code
 * gives, and the levels packed into the block's bytes. Here the order of operations is per value, so
 * the lanes carry neighbouring values; a sub-block whose scale is 0 keeps the search's levels, as in
 * the C code.
 */
import { oneFunctionModule } from '../codec/wasm-binary.js';
import { bin, f32Load, f32x4, get, i32, load, Locals, OP, pick, set, simd, splat4, store, V } from '../codec/wasm-ops.js';
import { Q4_K_BYTES, Q6_K_BYTES } from './ggml-blocks.js';
import { q4kHeadCode, q6kHeadCode, zeroBlock } from './kquant-head-wasm.js';
import { LEVELS_AT, MAGIC, overBlocks, RESULT_BYTES } from './kquant-search-wasm.js';

/**
 * ggml's nearest_int exactly, lanes on the stack to i32 lanes, clamped to lo..hi: the float add of
 * 1.5 * 2^23, then the low 23 bits less 2^22. Unlike the search's (whose arguments stay small), the
 * values here can be infinite or NaN, where a block's d overflowed fp16 (a NaN gives 0, an infinity
 * -2^22), and the bits decide as they do in C.
 */
const nearestClamped = (lo: number, hi: number) => [
  ...f32x4(MAGIC), ...simd(V.f32x4Add), ...splat4(0x7fffff), ...simd(V.and), ...splat4(0x400000), ...simd(V.i32x4Sub),
  ...splat4(hi), ...simd(V.i32x4MinS), ...splat4(lo), ...simd(V.i32x4MaxS),
];

/**
 * The 16 levels of values [first, first + 16) of the block (`scaled` on each value's lanes, then
 * nearestClamped, then `after` on the i32 lanes), into the result's levels unless the sub-block's
 * scale is 0 (the mask `keep`).
 */
function requantize(first: number, scaled: number[], lo: number, hi: number, after: number[], keep: number): number[] {
  const quad = (q: number) => [...get(0), ...load(4 * (first + 4 * q)), ...scaled, ...nearestClamped(lo, hi), ...after];
  const fresh = [
    ...quad(0), ...quad(1), ...simd(V.i16x8NarrowI32x4S), ...quad(2), ...quad(3), ...simd(V.i16x8NarrowI32x4S), ...simd(V.i8x16NarrowI16x8S),
  ];
  return [...get(2), ...pick(keep, [...get(2), ...load(LEVELS_AT + first)], fresh), ...store(LEVELS_AT + first)];
}

/** The levels at `at` of the result, 16 bytes. */
const levels = (at: number) => [...get(2), ...load(LEVELS_AT + at)];

/**
 *   (func (export "q4k") (param $src i32) (param $blocks i32) (param $dst i32))
 * The block's head (q4kHeadCode: d, dmin, the 6-bit codes; dj and dm at $dst + 4j and $dst + 32 + 4j),
 * then each sub-block j's values x to clamp(nearest_int((x + dm) / dj), 0, 15) where dj != 0, and two
 * levels a byte into the block's last 128 bytes.
 * The blocks follow the results, at $dst + $blocks * RESULT_BYTES.
 */
export function q4kFinishBytes(): Uint8Array {
  const loc = new Locals(3);
  const OUT = loc.i32();
  const DJ = loc.v128();
  const DM = loc.v128();
  const KEEP = loc.v128();
  const body: number[] = q4kHeadCode(loc, OUT);
  for (let j = 0; j < 8; j++) {
    body.push(...get(2), ...f32Load(4 * j), ...simd(V.f32x4Splat), ...set(DJ), ...get(2), ...f32Load(32 + 4 * j), ...simd(V.f32x4Splat), ...set(DM));
    body.push(...bin(get(DJ), f32x4(0), V.f32x4Eq), ...set(KEEP));
    const scaled = [...get(DM), ...simd(V.f32x4Add), ...get(DJ), ...simd(V.f32x4Div)];
    for (let k = 0; k < 2; k++) body.push(...requantize(32 * j + 16 * k, scaled, 0, 15, [], KEEP));
  }
  for (let j = 0; j < 256; j += 64) {
    for (let h = 0; h < 32; h += 16) {
      body.push(...get(OUT), ...levels(j + h), ...levels(j + 32 + h), ...i32(4), ...simd(V.i16x8Shl), ...simd(V.or), ...store(16 + j / 2 + h));
    }
  }
  const next = [...get(OUT), ...i32(Q4_K_BYTES), OP.i32Add, ...set(OUT)];
  const start = [...get(2), ...get(1), ...i32(RESULT_BYTES), OP.i32Mul, OP.i32Add, ...set(OUT)];
  return oneFunctionModule('q4k', [0x00, 0x01], loc.types, [...start, ...overBlocks(body, 1024, RESULT_BYTES, next), OP.end]);
}

/**
 *   (func (export "q6k") (param $src i32) (param $blocks i32) (param $dst i32))
 * The block's head (q6kHeadCode: the 8-bit codes and d; dj at $dst + 4j), then each sub-block j's
 * values x to clamp(nearest_int(x / dj), -32, 31) + 32 where dj != 0, their low four bits into the
 * block's first 128 bytes and their high two into the next 64; a block of scales below
 * GROUP_MAX_EPS all zeros. The blocks follow the results, at $dst + $blocks * RESULT_BYTES.
 */
export function q6kFinishBytes(): Uint8Array {
  const loc = new Locals(3);
  const OUT = loc.i32();
  const DJ = loc.v128();
  const KEEP = loc.v128();
  const [A, B, C, D] = [loc.v128(), loc.v128(), loc.v128(), loc.v128()];
  const ZERO = loc.i32();
  const body: number[] = q6kHeadCode(loc, OUT, ZERO);
  for (let j = 0; j < 16; j++) {
    body.push(...get(2), ...f32Load(4 * j), ...simd(V.f32x4Splat), ...set(DJ));
    body.push(...get(DJ), ...f32x4(0), ...simd(V.f32x4Eq), ...set(KEEP));
    body.push(...requantize(16 * j, [...get(DJ), ...simd(V.f32x4Div)], -32, 31, [...splat4(32), ...simd(V.i32x4Add)], KEEP));
  }
  const low = (v: number) => [...get(v), ...splat4(0x0f0f0f0f), ...simd(V.and)];
  const high = (v: number, shift: number) => [...get(v), ...i32(4), ...simd(V.i8x16ShrU), ...(shift ? [...i32(shift), ...simd(V.i8x16Shl)] : [])];
  const shl4 = (v: number) => [...get(v), ...i32(4), ...simd(V.i8x16Shl)];
  for (let j = 0; j < 256; j += 128) {
    for (let h = 0; h < 32; h += 16) {
      body.push(...levels(j + h), ...set(A), ...levels(j + 32 + h), ...set(B), ...levels(j + 64 + h), ...set(C), ...levels(j + 96 + h), ...set(D));
      body.push(...get(OUT), ...low(A), ...shl4(C), ...simd(V.or), ...store(j / 2 + h));
      body.push(...get(OUT), ...low(B), ...shl4(D), ...simd(V.or), ...store(j / 2 + 32 + h));
      body.push(...get(OUT), ...high(A, 0), ...high(B, 2), ...simd(V.or), ...high(C, 4), ...simd(V.or), ...high(D, 6), ...simd(V.or), ...store(128 + j / 4 + h));
    }
  }
  body.push(...zeroBlock(OUT, ZERO));
  const next = [...get(OUT), ...i32(Q6_K_BYTES), OP.i32Add, ...set(OUT)];
  const start = [...get(2), ...get(1), ...i32(RESULT_BYTES), OP.i32Mul, OP.i32Add, ...set(OUT)];
  return oneFunctionModule('q6k', [0x00, 0x01], loc.types, [...start, ...overBlocks(body, 1024, RESULT_BYTES, next), OP.end]);
}
