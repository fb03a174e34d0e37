/**
 * Q8_0 quantization as hand-assembled WebAssembly SIMD functions, one for each source type (float32,
 * fp16 and bf16 values, widened in registers): the same bytes as `quantize_row_q8_0_ref` (and the
 * portable loop in gguf-numbers.ts), four values at a time. In JavaScript, widening and quantizing
 * cost about 7 ns a value here, which made a Q8_0 GGUF twice a plain decode.
 *
 * Why each step gives the reference's bytes (float32 arithmetic throughout, as in C):
 * - amax: `pmax(m, |x|)` is `m < |x| ? |x| : m`, which passes a NaN over as fmaxf does; the lanes
 *   then hold no NaN, and a maximum does not depend on order.
 * - d = amax / 127, id = d ? 1 / d : 0, x * id: IEEE float32 operations, as the C code's.
 * - roundf (half away from zero): trunc(x), plus 1 with x's sign where |x - trunc(x)| >= 0.5.
 * - fp16(d): the branch-free float arithmetic of ggml's fp32 -> fp16 conversion (as f32ToF16).
 * - fp16 -> float32: the bits moved into float32's places and scaled by 2^112 (exact, subnormals too);
 *   infinities and NaNs get float32's all-ones exponent; bf16 -> float32: the bits shifted up.
 * A NaN value gives 0, as the reference's cast does on x86 and the portable loop does.
 */
import { leb128, oneFunctionModule, sleb128, WASM_TYPE } from '../codec/wasm-binary.js';

const WASM_PAGE = 65536;

const { i32: I32, f32: F32, v128: V128 } = WASM_TYPE;

/** The locals after the three parameters (src, n, dst): index, then value type. */
const END = 3;
const M = 4;
const AMAX = 5;
const D = 6;
const ID = 7;
const IDS = 8;
const W = 9;
const SHL1 = 10;
const BIAS = 11;
const BASE = 12;
const BITS = 13;
const X = 14;
const T = 15;
/** Constants held in registers rather than rebuilt for every four values. */
const HALF = 16;
const SIGN = 17;
const ONE = 18;
/** The block's 32 values as eight float32x4 (V0..V0+7), and two scratch registers for widening fp16. */
const V0 = 19;
const H = 27;
const A = 28;
const LOCAL_TYPES = [I32, V128, F32, F32, F32, V128, I32, I32, I32, F32, I32, ...new Array<number>(A - X + 1).fill(V128)];

const get = (i: number) => [0x20, i];
const set = (i: number) => [0x21, i];
const tee = (i: number) => [0x22, i];
const i32 = (v: number) => [0x41, ...sleb128(v)];
const f32 = (v: number) => [0x43, ...new Uint8Array(new Float32Array([v]).buffer)];
const simd = (op: number, ...rest: number[]) => [0xfd, ...leb128(op), ...rest];
const splat4 = (bits: number) => simd(12, ...Array.from({ length: 4 }, () => [bits & 0xff, (bits >>> 8) & 0xff, (bits >>> 16) & 0xff, bits >>> 24]).flat());
const load = (offset: number) => simd(0, 0x00, ...leb128(offset));
const store = (offset: number) => simd(11, 0x00, ...leb128(offset));
const OP = {
  i32Add: 0x6a, i32Mul: 0x6c, i32And: 0x71, i32Or: 0x72, i32ShrU: 0x76, i32LtU: 0x49, i32GtU: 0x4b, i32GeU: 0x4f,
  f32Ne: 0x5c, f32Abs: 0x8b, f32Add: 0x92, f32Mul: 0x94, f32Div: 0x95, f32Max: 0x97,
  i32FromF32Bits: 0xbc, f32FromI32Bits: 0xbe, select: 0x1b, i32Store16: 0x3b,
  block: 0x02, loop: 0x03, noResult: 0x40, brIf: 0x0d, br: 0x0c, end: 0x0b,
} as const;
const F32X4 = { splat: 19, extract: 31, ge: 70, trunc: 105, abs: 224, add: 228, sub: 229, mul: 230, pmax: 235 } as const;
const V128_AND = 78;
const V128_OR = 80;
const V128_BITSELECT = 82;
const V128_LOAD16X4_U = 4;
const I32X4_GT_S = 59;
const I32X4_SHL = 171;
const I32X4_TRUNC_SAT_F32X4_S = 248;
const I16X8_NARROW_I32X4_S = 133;
const I8X16_NARROW_I16X8_S = 101;

export type Q8Source = 'F32' | 'F16' | 'BF16';

/** Bytes of one value of each source type. */
const SOURCE_BYTES: Record<Q8Source, number> = { F32: 4, F16: 2, BF16: 2 };

/** The four values at src + 4k (as float32x4) onto the stack. */
function loadValues(source: Q8Source, k: number): number[] {
  if (source === 'F32') return [...get(0), ...load(16 * k)];
  const halves = [...get(0), ...simd(V128_LOAD16X4_U, 0x00, ...leb128(8 * k))];
  if (source === 'BF16') return [...halves, ...i32(16), ...simd(I32X4_SHL)];
  const moved = [...get(A), ...i32(13), ...simd(I32X4_SHL)];
  return [
    ...halves, ...tee(H), ...splat4(0x7fff), ...simd(V128_AND), ...set(A),
    ...moved, ...splat4(0x7f800000), ...simd(V128_OR),
    ...moved, ...splat4(0x77800000), ...simd(F32X4.mul),
    ...get(A), ...splat4(0x7bff), ...simd(I32X4_GT_S), ...simd(V128_BITSELECT),
    ...get(H), ...splat4(0x8000), ...simd(V128_AND), ...i32(16), ...simd(I32X4_SHL), ...simd(V128_OR),
  ];
}

/** roundf(x * id) of the block's values 4k..4k+3, as i32 lanes. */
function roundedLanes(k: number): number[] {
  return [
    ...get(V0 + k), ...get(IDS), ...simd(F32X4.mul), ...tee(X),
    ...simd(F32X4.trunc), ...tee(T),
    ...get(X), ...get(T), ...simd(F32X4.sub), ...simd(F32X4.abs), ...get(HALF), ...simd(F32X4.ge),
    ...get(X), ...get(SIGN), ...simd(V128_AND), ...get(ONE), ...simd(V128_OR),
    ...simd(V128_AND), ...simd(F32X4.add), ...simd(I32X4_TRUNC_SAT_F32X4_S),
  ];
}

/** The 16 int8 quants of values [16 * first, 16 * first + 16) of the block, stored at dst + at. */
function storeQuants(first: number, at: number): number[] {
  const lanes = (k: number) => roundedLanes(first + k);
  return [
    ...get(2),
    ...lanes(0), ...lanes(1), ...simd(I16X8_NARROW_I32X4_S),
    ...lanes(2), ...lanes(3), ...simd(I16X8_NARROW_I32X4_S),
    ...simd(I8X16_NARROW_I16X8_S), ...store(at),
  ];
}

/**
 *   (func (export "q8_0") (param $src i32) (param $n i32) (param $dst i32)
 *     $end = $src + $n * (bytes a value)
 *     (block (loop (br_if 1 (i32.ge_u $src $end))
 *       $v0..$v7 = the block's values, widened to float32
 *       $m = pmax over the eight |$v|, from zero; $amax = the largest lane
 *       $d = $amax / 127; $id = $d != 0 ? 1 / $d : 0
 *       (i32.store16 $dst fp16($d))
 *       (v128.store offset=2 $dst quants 0..15) (v128.store offset=18 $dst quants 16..31)
 *       $src += 32 * (bytes a value); $dst += 34; (br 0)))
 */
function q8ModuleBytes(source: Q8Source): Uint8Array {
  const code: number[] = [...get(0), ...get(1), ...i32(SOURCE_BYTES[source]), OP.i32Mul, OP.i32Add, ...set(END)];
  code.push(...splat4(0x3f000000), ...set(HALF), ...splat4(0x80000000), ...set(SIGN), ...splat4(0x3f800000), ...set(ONE));
  code.push(OP.block, OP.noResult, OP.loop, OP.noResult, ...get(0), ...get(END), OP.i32GeU, OP.brIf, 1);
  for (let k = 0; k < 8; k++) code.push(...loadValues(source, k), ...set(V0 + k));
  code.push(...splat4(0), ...set(M));
  for (let k = 0; k < 8; k++) code.push(...get(M), ...get(V0 + k), ...simd(F32X4.abs), ...simd(F32X4.pmax), ...set(M));
  const lane = (l: number) => [...get(M), ...simd(F32X4.extract, l)];
  code.push(...lane(0), ...lane(1), OP.f32Max, ...lane(2), ...lane(3), OP.f32Max, OP.f32Max, ...set(AMAX));
  code.push(...get(AMAX), ...f32(127), OP.f32Div, ...tee(D));
  code.push(...f32(1), ...get(D), OP.f32Div, ...f32(0), ...get(D), ...f32(0), OP.f32Ne, OP.select, ...set(ID));
  // fp16(d), as ggml_compute_fp32_to_fp16 (d >= 0).
  code.push(...get(D), OP.i32FromF32Bits, ...tee(W), ...get(W), OP.i32Add, ...tee(SHL1), ...i32(0xff000000), OP.i32And, ...set(BIAS));
  code.push(...i32(0x71000000), ...get(BIAS), ...get(BIAS), ...i32(0x71000000), OP.i32LtU, OP.select, ...set(BIAS));
  code.push(...get(D), OP.f32Abs, ...f32(2 ** 112), OP.f32Mul, ...f32(2 ** -110), OP.f32Mul, ...set(BASE));
  code.push(...get(BIAS), ...i32(1), OP.i32ShrU, ...i32(0x07800000), OP.i32Add, OP.f32FromI32Bits, ...get(BASE), OP.f32Add, OP.i32FromF32Bits, ...set(BITS));
  code.push(...get(2));
  code.push(...get(W), ...i32(0x80000000), OP.i32And, ...i32(16), OP.i32ShrU);
  code.push(...i32(0x7e00), ...get(BITS), ...i32(13), OP.i32ShrU, ...i32(0x7c00), OP.i32And, ...get(BITS), ...i32(0x0fff), OP.i32And, OP.i32Add);
  code.push(...get(SHL1), ...i32(0xff000000), OP.i32GtU, OP.select, OP.i32Or);
  code.push(OP.i32Store16, 0x00, 0x00);
  code.push(...get(ID), ...simd(F32X4.splat), ...set(IDS));
  code.push(...storeQuants(0, 2), ...storeQuants(4, 18));
  code.push(...get(0), ...i32(32 * SOURCE_BYTES[source]), OP.i32Add, ...set(0), ...get(2), ...i32(34), OP.i32Add, ...set(2));
  code.push(OP.br, 0, OP.end, OP.end, OP.end);
  return oneFunctionModule('q8_0', [0x00, 0x01], LOCAL_TYPES, code);
}

/** The kernels of this thread: their own memory, grown to the largest block they were given. */
export interface Q8Kernel {
  /** Values of `source` type (a multiple of 32 of them, in `src`) as Q8_0 blocks into `out` from `at`. */
  quantize(src: Uint8Array, source: Q8Source, out: Uint8Array, at: number): void;
}

let kernel: Q8Kernel | null | undefined;

/** This thread's kernel; none where WebAssembly SIMD is not available (or METHARME_XOR_NO_SIMD is set). */
export function q8Kernel(): Q8Kernel | undefined {
  if (kernel === undefined) kernel = process.env.METHARME_XOR_NO_SIMD ? null : makeKernel();
  return kernel ?? undefined;
}

type Run = (src: number, n: number, dst: number) => void;

function makeKernel(): Q8Kernel | null {
  let memory: WebAssembly.Memory;
  const runs = {} as Record<Q8Source, Run>;
  try {
    memory = new WebAssembly.Memory({ initial: 1 });
    for (const source of Object.keys(SOURCE_BYTES) as Q8Source[]) {
      const instance = new WebAssembly.Instance(new WebAssembly.Module(q8ModuleBytes(source)), { env: { memory } });
      runs[source] = instance.exports.q8_0 as Run;
    }
  } catch {
    // No WebAssembly SIMD in this runtime: the portable loop gives the same bytes.
    return null;
  }
  return {
    quantize(src, source, out, at) {
      const n = src.length / SOURCE_BYTES[source];
      const outBytes = (n / 32) * 34;
      const need = src.length + outBytes;
      if (memory.buffer.byteLength < need) memory.grow(Math.ceil((need - memory.buffer.byteLength) / WASM_PAGE));
      new Uint8Array(memory.buffer, 0, src.length).set(src);
      runs[source](0, n, src.length);
      out.set(new Uint8Array(memory.buffer, src.length, outBytes), at);
    },
  };
}
