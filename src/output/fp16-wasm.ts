/**
 * fp16 conversions as WebAssembly code, for the kernels that code a block's scales (Q8_0, and the
 * K-quants' block heads): the same bits as gguf-numbers.ts's f32ToF16 and f16ToF32, which are
 * ggml_compute_fp32_to_fp16 and an exact widening.
 */
import { get, i32, f32, Locals, OP, set, tee } from '../codec/wasm-ops.js';

/** Scratch locals of the conversions, made once per function. */
export interface Fp16Scratch {
  x: number;
  base: number;
  w: number;
  shl1: number;
  bias: number;
  bits: number;
}

export function fp16Scratch(loc: Locals): Fp16Scratch {
  return { x: loc.f32(), base: loc.f32(), w: loc.i32(), shl1: loc.i32(), bias: loc.i32(), bits: loc.i32() };
}

/**
 * The float32 on the stack to its fp16 bits (an i32) as ggml_compute_fp32_to_fp16 makes them:
 * nearest even, overflow to infinity, a NaN to 0x7e00 (with its sign).
 */
export function toF16(s: Fp16Scratch): number[] {
  return [
    ...tee(s.x), OP.i32FromF32Bits, ...tee(s.w), ...get(s.w), OP.i32Add, ...tee(s.shl1), ...i32(0xff000000), OP.i32And, ...set(s.bias),
    ...i32(0x71000000), ...get(s.bias), ...get(s.bias), ...i32(0x71000000), OP.i32LtU, OP.select, ...set(s.bias),
    ...get(s.x), OP.f32Abs, ...f32(2 ** 112), OP.f32Mul, ...f32(2 ** -110), OP.f32Mul, ...set(s.base),
    ...get(s.bias), ...i32(1), OP.i32ShrU, ...i32(0x07800000), OP.i32Add, OP.f32FromI32Bits, ...get(s.base), OP.f32Add, OP.i32FromF32Bits, ...set(s.bits),
    ...get(s.w), ...i32(0x80000000), OP.i32And, ...i32(16), OP.i32ShrU,
    ...i32(0x7e00), ...get(s.bits), ...i32(13), OP.i32ShrU, ...i32(0x7c00), OP.i32And, ...get(s.bits), ...i32(0x0fff), OP.i32And, OP.i32Add,
    ...get(s.shl1), ...i32(0xff000000), OP.i32GtU, OP.select, OP.i32Or,
  ];
}

/**
 * The fp16 bits on the stack (an i32) to the float32 they are, exactly: the magnitude's bits moved
 * into float32's places and scaled by 2^112 (exact, subnormals included), infinities and NaNs
 * made directly; then the sign.
 */
export function fromF16(s: Fp16Scratch): number[] {
  return [
    ...set(s.w), ...get(s.w), ...i32(0x7fff), OP.i32And, ...set(s.bits),
    ...get(s.bits), ...i32(13), OP.i32Shl, OP.f32FromI32Bits, ...f32(2 ** 112), OP.f32Mul, OP.i32FromF32Bits,
    ...get(s.bits), ...i32(0x3ff), OP.i32And, ...i32(13), OP.i32Shl, ...i32(0x7f800000), OP.i32Or,
    ...get(s.bits), ...i32(0x7c00), OP.i32LtU, OP.select,
    ...get(s.w), ...i32(0x8000), OP.i32And, ...i32(16), OP.i32Shl, OP.i32Or, OP.f32FromI32Bits,
  ];
}
