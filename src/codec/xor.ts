/**
 * The XOR kernel: dst[i] ^= src[i] for i < length. The byte semantics of the format live here and
 * nowhere else; zero-padding of a short base is the caller's choice of `length`.
 *
 * The pipeline's buffers live in one shared WebAssembly memory, XORed by a tiny hand-assembled
 * WebAssembly SIMD function (measured ~6x the best JavaScript loop here). Because the memory is a
 * SharedArrayBuffer, reads, writes and the hash worker use it directly: no chunk is ever copied.
 */
import { leb128, oneFunctionModule, WASM_TYPE } from './wasm-binary.js';
import { get, i32, load, OP, set, simd, store, V } from './wasm-ops.js';

/** One-off XOR for callers without long-lived buffers (64-bit words when aligned, bytes otherwise). */
export function xorInto(dst: Uint8Array, src: Uint8Array, length: number = Math.min(dst.length, src.length)): void {
  if (length > dst.length || length > src.length) {
    throw new RangeError(`xor length ${length} exceeds buffer (${dst.length}, ${src.length})`);
  }
  let done = 0;
  if (dst.byteOffset % 8 === 0 && src.byteOffset % 8 === 0) {
    const n = Math.floor(length / 8);
    const d = new BigUint64Array(dst.buffer, dst.byteOffset, n);
    const s = new BigUint64Array(src.buffer, src.byteOffset, n);
    for (let i = 0; i < n; i++) d[i]! ^= s[i]!;
    done = n * 8;
  }
  for (let i = done; i < length; i++) dst[i]! ^= src[i]!;
}

/** Shared memory plus a kernel that XORs ranges of it, addressed by byte offsets. */
export interface XorMemory {
  readonly buffer: SharedArrayBuffer;
  readonly kind: 'wasm-simd' | 'javascript';
  xor(dstOffset: number, srcOffset: number, length: number): void;
}

/**
 * The module, in the WebAssembly binary format:
 *   (import "env" "memory" (memory 1 65536 shared))
 *   (func (export "xor") (param $dst i32) (param $src i32) (param $n i32) (local $i i32)
 *     (block (loop
 *       (br_if 1 (i32.ge_u (local.get $i) (local.get $n)))
 *       ;; four times, at offsets 0, 16, 32, 48:
 *       (v128.store (i32.add $dst $i) (v128.xor (v128.load (i32.add $dst $i)) (v128.load (i32.add $src $i))))
 *       (local.set $i (i32.add (local.get $i) (i32.const 64)))
 *       (br 0))))
 * $n must be a multiple of 64; the caller XORs the tail.
 */
function xorModuleBytes(): Uint8Array {
  // Alignment hint 2^4: the buffers are 16-byte aligned.
  const ALIGN16 = 4;
  const code = [OP.block, OP.noResult, OP.loop, OP.noResult, ...get(3), ...get(2), OP.i32GeU, OP.brIf, 1];
  for (const offset of [0, 16, 32, 48]) {
    code.push(...get(0), ...get(3), OP.i32Add, ...get(0), ...get(3), OP.i32Add, ...load(offset, ALIGN16));
    code.push(...get(1), ...get(3), OP.i32Add, ...load(offset, ALIGN16), ...simd(V.xor), ...store(offset, ALIGN16));
  }
  code.push(...get(3), ...i32(64), OP.i32Add, ...set(3), OP.br, 0, OP.end, OP.end, OP.end);
  return oneFunctionModule('xor', [0x03, 0x01, ...leb128(65536)], [WASM_TYPE.i32], code);
}

const WASM_PAGE = 65536;

/** Allocates `bytes` of shared memory with the fastest kernel available (`simd: false` forces JS). */
export function createXorMemory(bytes: number, options: { simd?: boolean } = {}): XorMemory {
  if (options.simd !== false && !process.env.METHARME_XOR_NO_SIMD) {
    try {
      const pages = Math.ceil(bytes / WASM_PAGE);
      const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
      const module = new WebAssembly.Module(xorModuleBytes());
      const instance = new WebAssembly.Instance(module, { env: { memory } });
      const wasmXor = instance.exports.xor as (dst: number, src: number, n: number) => void;
      const buffer = memory.buffer as unknown as SharedArrayBuffer;
      const bytesView = new Uint8Array(buffer);
      return {
        buffer,
        kind: 'wasm-simd',
        xor(dst, src, length) {
          const bulk = length - (length % 64);
          if (bulk > 0) wasmXor(dst, src, bulk);
          for (let i = bulk; i < length; i++) bytesView[dst + i]! ^= bytesView[src + i]!;
        },
      };
    } catch {
      // No WebAssembly SIMD or threads in this runtime: the JavaScript kernel below is correct, slower.
    }
  }
  const buffer = new SharedArrayBuffer(bytes);
  return {
    buffer,
    kind: 'javascript',
    xor(dst, src, length) {
      xorInto(new Uint8Array(buffer, dst, length), new Uint8Array(buffer, src, length), length);
    },
  };
}
