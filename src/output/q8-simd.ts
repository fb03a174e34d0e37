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
import { oneFunctionModule, WASM_TYPE } from '../codec/wasm-binary.js';
import { get, i32, i32Store16, f32, OP, set, simd, splat4, store, tee, V } from '../codec/wasm-ops.js';
import { toF16 } from './fp16-wasm.js';
import { Q8_0_BLOCK, Q8_0_BYTES, SOURCE_BYTES, type SourceType } from './ggml-blocks.js';
import { loadValues } from './widen-wasm.js';

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

/** roundf(x * id) of the block's values 4k..4k+3, as i32 lanes. */
function roundedLanes(k: number): number[] {
  return [
    ...get(V0 + k), ...get(IDS), ...simd(V.f32x4Mul), ...tee(X),
    ...simd(V.f32x4Trunc), ...tee(T),
    ...get(X), ...get(T), ...simd(V.f32x4Sub), ...simd(V.f32x4Abs), ...get(HALF), ...simd(V.f32x4Ge),
    ...get(X), ...get(SIGN), ...simd(V.and), ...get(ONE), ...simd(V.or),
    ...simd(V.and), ...simd(V.f32x4Add), ...simd(V.i32x4TruncSatF32x4S),
  ];
}

/** The 16 int8 quants of values [16 * first, 16 * first + 16) of the block, stored at dst + at. */
function storeQuants(first: number, at: number): number[] {
  const lanes = (k: number) => roundedLanes(first + k);
  return [
    ...get(2),
    ...lanes(0), ...lanes(1), ...simd(V.i16x8NarrowI32x4S),
    ...lanes(2), ...lanes(3), ...simd(V.i16x8NarrowI32x4S),
    ...simd(V.i8x16NarrowI16x8S), ...store(at),
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
function q8ModuleBytes(source: SourceType): Uint8Array {
  const code: number[] = [...get(0), ...get(1), ...i32(SOURCE_BYTES[source]), OP.i32Mul, OP.i32Add, ...set(END)];
  code.push(...splat4(0x3f000000), ...set(HALF), ...splat4(0x80000000), ...set(SIGN), ...splat4(0x3f800000), ...set(ONE));
  code.push(OP.block, OP.noResult, OP.loop, OP.noResult, ...get(0), ...get(END), OP.i32GeU, OP.brIf, 1);
  for (let k = 0; k < 8; k++) code.push(...loadValues(source, k, { h: H, a: A }), ...set(V0 + k));
  code.push(...splat4(0), ...set(M));
  for (let k = 0; k < 8; k++) code.push(...get(M), ...get(V0 + k), ...simd(V.f32x4Abs), ...simd(V.f32x4Pmax), ...set(M));
  const lane = (l: number) => [...get(M), ...simd(V.f32x4Extract, l)];
  code.push(...lane(0), ...lane(1), OP.f32Max, ...lane(2), ...lane(3), OP.f32Max, OP.f32Max, ...set(AMAX));
  code.push(...get(AMAX), ...f32(127), OP.f32Div, ...tee(D));
  code.push(...f32(1), ...get(D), OP.f32Div, ...f32(0), ...get(D), ...f32(0), OP.f32Ne, OP.select, ...set(ID));
  // fp16(d), as ggml_compute_fp32_to_fp16.
  code.push(...get(2), ...get(D), ...toF16({ x: D, base: BASE, w: W, shl1: SHL1, bias: BIAS, bits: BITS }), ...i32Store16(0));
  code.push(...get(ID), ...simd(V.f32x4Splat), ...set(IDS));
  code.push(...storeQuants(0, 2), ...storeQuants(4, 18));
  code.push(...get(0), ...i32(Q8_0_BLOCK * SOURCE_BYTES[source]), OP.i32Add, ...set(0), ...get(2), ...i32(Q8_0_BYTES), OP.i32Add, ...set(2));
  code.push(OP.br, 0, OP.end, OP.end, OP.end);
  return oneFunctionModule('q8_0', [0x00, 0x01], LOCAL_TYPES, code);
}

/** The kernels of this thread: their own memory, grown to the largest block they were given. */
export interface Q8Kernel {
  /** Values of `source` type (a multiple of 32 of them, in `src`) as Q8_0 blocks into `out` from `at`. */
  quantize(src: Uint8Array, source: SourceType, out: Uint8Array, at: number): void;
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
  const runs = {} as Record<SourceType, Run>;
  try {
    memory = new WebAssembly.Memory({ initial: 1 });
    for (const source of Object.keys(SOURCE_BYTES) as SourceType[]) {
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
      const outBytes = (n / Q8_0_BLOCK) * Q8_0_BYTES;
      const need = src.length + outBytes;
      if (memory.buffer.byteLength < need) memory.grow(Math.ceil((need - memory.buffer.byteLength) / WASM_PAGE));
      new Uint8Array(memory.buffer, 0, src.length).set(src);
      runs[source](0, n, src.length);
      out.set(new Uint8Array(memory.buffer, src.length, outBytes), at);
    },
  };
}
