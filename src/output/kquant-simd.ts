/**
 * Q4_K and Q6_K in WebAssembly, per thread: the search (kquant-search-wasm.ts), then the block's
 * scales coded and its values requantized and packed (kquant-finish-wasm.ts), over one memory. In
 * JavaScript alone (gguf-kquants.ts's portable path) a Q4_K_M GGUF took 37 times a plain decode.
 */
import { readFileSync } from 'node:fs';
import { KQUANT_INPUT, q4kSearchBytes, q6kSearchBytes, RESULT_BYTES } from './kquant-search-wasm.js';
import { Q4_K_BYTES, Q6_K_BYTES, QK_K, SOURCE_BYTES, type SourceType } from './ggml-blocks.js';
import { widenBytes } from './widen-wasm.js';
import { q4kFinishBytes, q6kFinishBytes } from './kquant-finish-wasm.js';

export type KquantKind = 'q4k' | 'q6k';

/** Bytes of one output block of each kind. */
export const KQUANT_BLOCK_BYTES: Record<KquantKind, number> = { q4k: Q4_K_BYTES, q6k: Q6_K_BYTES };

export interface KquantKernel {
  /**
   * `kind` blocks of the values of `source` type in `src` (whole blocks of 256, widened to float32
   * here): a view of the kernel's memory, good until its next call.
   */
  quantize(kind: KquantKind, src: Uint8Array, source: SourceType): Uint8Array;
}

/**
 * The kernel's modules, by the name of the file `npm run build` writes each to (scripts/make-kernels.mjs).
 * Assembling them costs little time but leaves each thread's memory about 15 MB larger (tens of
 * thousands of short-lived arrays): read from the files, a Q4_K_M decode of 1 GiB peaked at 135 MB
 * rather than 152-169 MB.
 */
export const KQUANT_MODULES = {
  'q4k-search': q4kSearchBytes,
  'q6k-search': q6kSearchBytes,
  'q4k-finish': q4kFinishBytes,
  'q6k-finish': q6kFinishBytes,
  'widen-f16': () => widenBytes('F16'),
  'widen-bf16': () => widenBytes('BF16'),
} as const;

/**
 * A module's bytes from its file in `dir` (beside this one), or assembled here where there is none
 * (running from src/) or it is not a valid module (an install cut short): the kernel is never lost to
 * a bad file, which would leave the JavaScript quantizers, ten times slower.
 */
export function moduleBytes(name: keyof typeof KQUANT_MODULES, dir = new URL('./kernels/', import.meta.url)): Uint8Array {
  try {
    const bytes = readFileSync(new URL(`${name}.wasm`, dir));
    if (WebAssembly.validate(bytes)) return bytes;
  } catch {
    // No file: assembled below.
  }
  return KQUANT_MODULES[name]();
}

type Run = (src: number, blocks: number, dst: number) => void;
let kernel: KquantKernel | null | undefined;

/** This thread's kernel; none where WebAssembly SIMD is not available (or METHARME_XOR_NO_SIMD is set). */
export function kquantKernel(): KquantKernel | undefined {
  if (kernel === undefined) kernel = process.env.METHARME_XOR_NO_SIMD ? null : makeKernel();
  return kernel ?? undefined;
}

function makeKernel(): KquantKernel | null {
  let memory: WebAssembly.Memory;
  const searches = {} as Record<KquantKind, Run>;
  const finishes = {} as Record<KquantKind, Run>;
  const widens = {} as Record<SourceType, Run>;
  try {
    memory = new WebAssembly.Memory({ initial: 1 });
    const instance = (bytes: Uint8Array, name: string) =>
      new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports[name] as Run;
    searches.q4k = instance(moduleBytes('q4k-search'), 'q4k');
    searches.q6k = instance(moduleBytes('q6k-search'), 'q6k');
    finishes.q4k = instance(moduleBytes('q4k-finish'), 'q4k');
    finishes.q6k = instance(moduleBytes('q6k-finish'), 'q6k');
    widens.F16 = instance(moduleBytes('widen-f16'), 'widen');
    widens.BF16 = instance(moduleBytes('widen-bf16'), 'widen');
  } catch {
    // No WebAssembly SIMD in this runtime: the JavaScript quantizers give the same bytes.
    return null;
  }
  const made: KquantKernel = {
    quantize(kind, src, source) {
      const n = src.length / SOURCE_BYTES[source];
      const count = n / QK_K;
      const dst = KQUANT_INPUT + 4 * n;
      const out = dst + count * RESULT_BYTES;
      // The source bytes after the blocks, when they need widening.
      const raw = out + count * KQUANT_BLOCK_BYTES[kind];
      const need = raw + (source === 'F32' ? 0 : src.length);
      if (memory.buffer.byteLength < need) memory.grow(Math.ceil((need - memory.buffer.byteLength) / 65536));
      if (source === 'F32') {
        new Uint8Array(memory.buffer, KQUANT_INPUT, src.length).set(src);
      } else {
        new Uint8Array(memory.buffer, raw, src.length).set(src);
        widens[source](raw, n, KQUANT_INPUT);
      }
      searches[kind](KQUANT_INPUT, count, dst);
      finishes[kind](KQUANT_INPUT, count, dst);
      return new Uint8Array(memory.buffer, out, count * KQUANT_BLOCK_BYTES[kind]);
    },
  };
  // Each function run twice on a block now: V8 compiles it with its optimizing tier in the
  // background after a first run and uses that from the next, so the first rows do not run in
  // the baseline tier, 5-7 times slower (3 ms a function's first call of 64 blocks, per thread).
  for (const kind of ['q4k', 'q6k'] as const) for (const source of ['F16', 'BF16'] as const) for (let i = 0; i < 2; i++) made.quantize(kind, new Uint8Array(QK_K * SOURCE_BYTES[source]), source);
  return made;
}
