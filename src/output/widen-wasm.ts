/**
 * Checkpoint values widened to float32 in WebAssembly SIMD registers (fp16: the bits moved into
 * float32's places and scaled by 2^112, exact for subnormals too, infinities and NaNs given float32's
 * all-ones exponent; bf16: the bits shifted up): the loads of the Q8_0 kernel, and a kernel of its own
 * that fills the K-quant kernels' input, where the JavaScript table lookup cost 3 ns a value.
 */
import { leb128, oneFunctionModule } from '../codec/wasm-binary.js';
import { get, i32, load, Locals, OP, set, simd, splat4, store, tee, V } from '../codec/wasm-ops.js';
import { SOURCE_BYTES, type SourceType } from './ggml-blocks.js';

/** Two v128 locals the fp16 widening works in. */
export interface WidenScratch {
  h: number;
  a: number;
}

/** The four values at (local 0) + 4k values, as float32x4, onto the stack. */
export function loadValues(source: SourceType, k: number, s: WidenScratch): number[] {
  if (source === 'F32') return [...get(0), ...load(16 * k)];
  const halves = [...get(0), ...simd(V.load16x4U, 0x00, ...leb128(8 * k))];
  if (source === 'BF16') return [...halves, ...i32(16), ...simd(V.i32x4Shl)];
  const moved = [...get(s.a), ...i32(13), ...simd(V.i32x4Shl)];
  return [
    ...halves, ...tee(s.h), ...splat4(0x7fff), ...simd(V.and), ...set(s.a),
    ...moved, ...splat4(0x7f800000), ...simd(V.or),
    ...moved, ...splat4(0x77800000), ...simd(V.f32x4Mul),
    ...get(s.a), ...splat4(0x7bff), ...simd(V.i32x4GtS), ...simd(V.bitselect),
    ...get(s.h), ...splat4(0x8000), ...simd(V.and), ...i32(16), ...simd(V.i32x4Shl), ...simd(V.or),
  ];
}

/**
 *   (func (export "widen") (param $src i32) (param $n i32) (param $dst i32))
 * $n values of `source` type at $src (a multiple of 16) as float32 at $dst.
 */
export function widenBytes(source: SourceType): Uint8Array {
  const loc = new Locals(3);
  const s = { h: loc.v128(), a: loc.v128() };
  const body: number[] = [];
  for (let k = 0; k < 4; k++) body.push(...get(2), ...loadValues(source, k, s), ...store(16 * k));
  const code = [
    OP.block, OP.noResult, OP.loop, OP.noResult, ...get(1), OP.i32Eqz, OP.brIf, 1,
    ...body,
    ...get(0), ...i32(16 * SOURCE_BYTES[source]), OP.i32Add, ...set(0), ...get(2), ...i32(64), OP.i32Add, ...set(2),
    ...get(1), ...i32(16), OP.i32Sub, ...set(1), OP.br, 0, OP.end, OP.end, OP.end,
  ];
  return oneFunctionModule('widen', [0x00, 0x01], loc.types, code);
}
