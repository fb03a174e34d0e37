/**
 * Instructions of the hand-assembled WebAssembly kernels (XOR, the Q8_0 and K-quant quantizers), by name:
 * each helper gives one instruction's bytes, to be spread into a function body in stack order.
 */
import { leb128, sleb128, WASM_TYPE } from './wasm-binary.js';

/** Numbers the locals of one function body after its parameters, remembering their value types. */
export class Locals {
  readonly types: number[] = [];
  constructor(private readonly params: number) {}
  private add(type: number): number {
    this.types.push(type);
    return this.params + this.types.length - 1;
  }
  i32(): number {
    return this.add(WASM_TYPE.i32);
  }
  f32(): number {
    return this.add(WASM_TYPE.f32);
  }
  v128(): number {
    return this.add(WASM_TYPE.v128);
  }
}

export const get = (i: number): number[] => [0x20, ...leb128(i)];
export const set = (i: number): number[] => [0x21, ...leb128(i)];
export const tee = (i: number): number[] => [0x22, ...leb128(i)];
export const i32 = (v: number): number[] => [0x41, ...sleb128(v)];
export const f32 = (v: number): number[] => [0x43, ...new Uint8Array(new Float32Array([v]).buffer)];
export const simd = (op: number, ...rest: number[]): number[] => [0xfd, ...leb128(op), ...rest];
/** A v128 constant of four equal 32-bit lanes. */
export const splat4 = (bits: number): number[] =>
  simd(12, ...Array.from({ length: 4 }, () => [bits & 0xff, (bits >>> 8) & 0xff, (bits >>> 16) & 0xff, bits >>> 24]).flat());
/** Four float32 lanes of `value`. */
export const f32x4 = (value: number): number[] => splat4(new Uint32Array(new Float32Array([value]).buffer)[0]!);
/** v128.load / v128.store at the address on the stack plus `offset`; `align`: the alignment hint's log2 (0: none). */
export const load = (offset: number, align = 0): number[] => simd(0, align, ...leb128(offset));
export const store = (offset: number, align = 0): number[] => simd(11, align, ...leb128(offset));
/** `a` and `b` combined by the SIMD instruction `op`. */
export const bin = (a: number[], b: number[], op: number): number[] => [...a, ...b, ...simd(op)];
/** v128.bitselect: the lanes of `a` where local `mask` is set, else those of `b`. */
export const pick = (mask: number, a: number[], b: number[]): number[] => [...a, ...b, ...get(mask), ...simd(V.bitselect)];
/** f32.load / f32.store / i32.store8 at the address on the stack plus `offset`. */
export const f32Load = (offset: number): number[] => [0x2a, 0x02, ...leb128(offset)];
export const f32Store = (offset: number): number[] => [0x38, 0x02, ...leb128(offset)];
export const i32Store8 = (offset: number): number[] => [0x3a, 0x00, ...leb128(offset)];
/** i32.store16 at the address on the stack plus `offset`. */
export const i32Store16 = (offset: number): number[] => [0x3b, 0x00, ...leb128(offset)];

/** Scalar and control opcodes. */
export const OP = {
  i32Add: 0x6a, i32Sub: 0x6b, i32Mul: 0x6c, i32And: 0x71, i32Or: 0x72, i32Shl: 0x74, i32ShrS: 0x75, i32ShrU: 0x76,
  i32Eqz: 0x45, i32LtU: 0x49, i32GtS: 0x4a, i32LeS: 0x4c, i32GtU: 0x4b, i32GeU: 0x4f,
  f32Ne: 0x5c, f32Lt: 0x5d, f32Gt: 0x5e, f32Abs: 0x8b, f32Neg: 0x8c, f32Add: 0x92, f32Sub: 0x93, f32Mul: 0x94, f32Div: 0x95, f32Max: 0x97,
  f32FromI32: 0xb2, i32FromF32Bits: 0xbc, f32FromI32Bits: 0xbe, select: 0x1b,
  block: 0x02, loop: 0x03, if: 0x04, noResult: 0x40, brIf: 0x0d, br: 0x0c, end: 0x0b,
} as const;

/** SIMD opcodes (after the 0xfd prefix). */
export const V = {
  i32x4Splat: 17, i32x4Extract: 27, f32x4Splat: 19, f32x4Extract: 31,
  i8x16Shl: 107, i8x16ShrU: 109, i16x8Shl: 139, i32x4GtS: 59, f32x4Eq: 65, f32x4Ne: 66, f32x4Lt: 67, f32x4Gt: 68, f32x4Ge: 70,
  and: 78, andNot: 79, or: 80, xor: 81, bitselect: 82, anyTrue: 83,
  load16x4U: 4, i8x16NarrowI16x8S: 101, i16x8NarrowI32x4S: 133, i32x4Shl: 171, i32x4Add: 174, i32x4Sub: 177,
  i32x4MinS: 182, i32x4MaxS: 184,
  f32x4Trunc: 105, f32x4Nearest: 106, f32x4Abs: 224, f32x4Neg: 225, f32x4Sqrt: 227, f32x4Add: 228, f32x4Sub: 229,
  f32x4Mul: 230, f32x4Div: 231, f32x4Min: 232, f32x4Max: 233, f32x4Pmin: 234, f32x4Pmax: 235,
  i32x4TruncSatF32x4S: 248,
} as const;
