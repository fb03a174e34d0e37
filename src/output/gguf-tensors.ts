/**
 * One tensor's bytes as a GGUF holds them, made from the checkpoint's bytes a block of rows at a
 * time (half a MiB, or one attention head of q/k rows): q/k rows reverse-permuted back to llama.cpp's
 * pairwise rotary layout (`out[h*hd + 2i + j] = in[h*hd + j*hd/2 + i]`, gguf.md 3.3), then the
 * values kept bit for bit, or converted exactly (gguf-numbers.ts).
 */
import { GGML_TYPE, type GgmlType } from './gguf-format.js';
import { Q4_K_BYTES, Q5_0_BLOCK, Q5_0_BYTES, Q6_K_BYTES, Q8_0_BLOCK, Q8_0_BYTES, QK_K, sourceBytes, type SourceType } from './ggml-blocks.js';
import { f16ToF32, f32ToBf16, f32ToF16, quantizeQ5_0, quantizeQ8_0 } from './gguf-numbers.js';
import { q8Kernel } from './q8-simd.js';
import { quantizeKquantRows, quantizeQ4K, quantizeQ6K } from './gguf-kquants.js';
import { kquantKernel } from './kquant-simd.js';

/**
 * Measured on a 1 GiB Q8_0 decode here: 1 MiB blocks held 8 MB more at the peak, 256 KiB ones cost
 * more hand-offs to the workers (each wakes a thread), for the same time within the noise.
 */
const BLOCK_BYTES = 512 << 10;

let f16Table: Float32Array | undefined;
function f16Values(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16ToF32(h);
  }
  return f16Table;
}

/** Bytes per row of `cols` values of a ggml type. */
export function rowBytes(type: GgmlType, cols: number): number {
  if (type === GGML_TYPE.Q8_0) return (cols / Q8_0_BLOCK) * Q8_0_BYTES;
  if (type === GGML_TYPE.Q5_0) return (cols / Q5_0_BLOCK) * Q5_0_BYTES;
  if (type === GGML_TYPE.Q4_K) return (cols / QK_K) * Q4_K_BYTES;
  if (type === GGML_TYPE.Q6_K) return (cols / QK_K) * Q6_K_BYTES;
  return cols * (type === GGML_TYPE.F32 ? 4 : 2);
}

const SAME: Record<string, GgmlType> = { F16: GGML_TYPE.F16, BF16: GGML_TYPE.BF16, F32: GGML_TYPE.F32 };

/** Scratch for the float32 values of one block, grown as needed and reused: conversions hold one block. */
let scratch = new Float32Array(0);

function toFloats(src: Buffer, dtype: string): Float32Array {
  const n = src.length / sourceBytes(dtype)!;
  if (scratch.length < n) scratch = new Float32Array(n);
  const out = scratch.subarray(0, n);
  if (dtype === 'F32') {
    for (let i = 0; i < n; i++) out[i] = src.readFloatLE(i * 4);
    return out;
  }
  // Aligned 16-bit views where the bytes allow (pooled blocks are), reads otherwise.
  const halves = src.byteOffset % 2 === 0 ? new Uint16Array(src.buffer, src.byteOffset, n) : Uint16Array.from({ length: n }, (_, i) => src.readUInt16LE(i * 2));
  if (dtype === 'BF16') {
    const bits = new Uint32Array(out.buffer, out.byteOffset, n);
    for (let i = 0; i < n; i++) bits[i] = halves[i]! << 16;
  } else {
    const table = f16Values();
    for (let i = 0; i < n; i++) out[i] = table[halves[i]!]!;
  }
  return out;
}

/** Whether `dtype` values go into a tensor of `type` bit for bit. */
export const keepsBits = (dtype: string, type: GgmlType): boolean => SAME[dtype] === type;

/** Whole rows of a tensor's values (`dtype` bytes) in a ggml type; into `into` when given (its size must fit). */
export function convertRows(src: Buffer, dtype: string, type: GgmlType, cols: number, into?: Buffer): Buffer {
  if (SAME[dtype] === type) {
    if (!into) return src;
    src.copy(into);
    return into.subarray(0, src.length);
  }
  const bytes = rowBytes(type, cols) * (src.length / sourceBytes(dtype)! / cols);
  const out = into ? into.subarray(0, bytes) : Buffer.alloc(bytes);
  // Widened in WebAssembly: no float32 copy of the rows here.
  const q8 = type === GGML_TYPE.Q8_0 ? q8Kernel() : undefined;
  if (q8) {
    q8.quantize(src, dtype as SourceType, out, 0);
    return out;
  }
  const kind = type === GGML_TYPE.Q4_K ? 'q4k' : type === GGML_TYPE.Q6_K ? 'q6k' : undefined;
  const kquant = kind && kquantKernel();
  if (kind && kquant) {
    quantizeKquantRows(kquant, kind, src, dtype as SourceType, out, 0);
    return out;
  }
  const values = toFloats(src, dtype);
  if (type === GGML_TYPE.F32) for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i]!, i * 4);
  else if (type === GGML_TYPE.F16) for (let i = 0; i < values.length; i++) out.writeUInt16LE(f32ToF16(values[i]!), i * 2);
  else if (type === GGML_TYPE.BF16) for (let i = 0; i < values.length; i++) out.writeUInt16LE(f32ToBf16(values[i]!), i * 2);
  else if (type === GGML_TYPE.Q4_K) quantizeQ4K(values, out, 0);
  else if (type === GGML_TYPE.Q6_K) quantizeQ6K(values, out, 0);
  else if (type === GGML_TYPE.Q5_0) quantizeQ5_0(values, out, 0);
  else quantizeQ8_0(values, out, 0);
  return out;
}

/** Makes this thread's WebAssembly kernels for `type` now, rather than at its first block. */
export function warmKernels(type: GgmlType): void {
  if (type === GGML_TYPE.Q8_0) q8Kernel();
  else if (type === GGML_TYPE.Q4_K || type === GGML_TYPE.Q6_K) kquantKernel();
}

/** One head's q/k rows from the rotate-half layout back to llama.cpp's pairs; into `into` when given. */
export function unpermuteHead(src: Buffer, headDim: number, rowBytes: number, into?: Buffer): Buffer {
  const out = into ? into.subarray(0, src.length) : Buffer.alloc(src.length);
  for (let i = 0; i < headDim / 2; i++) {
    for (let j = 0; j < 2; j++) src.copy(out, (2 * i + j) * rowBytes, (j * (headDim / 2) + i) * rowBytes, (j * (headDim / 2) + i + 1) * rowBytes);
  }
  return out;
}

/** The rows and values per row of a tensor (a 1-D tensor is one row). */
export function rowsOf(shape: readonly number[]): { rows: number; cols: number } {
  if (shape.length === 1) return { rows: 1, cols: shape[0]! };
  return { rows: shape[0]!, cols: shape.slice(1).reduce((n, d) => n * d, 1) };
}

/** Rows converted at a time: one head of q/k rows, or about BLOCK_BYTES of them. */
export function blockRows(t: Pick<TensorPlan, 'permuteHead'>, srcRowBytes: number): number {
  return t.permuteHead ?? Math.max(1, Math.floor(BLOCK_BYTES / srcRowBytes));
}


export interface TensorPlan {
  dtype: string;
  shape: readonly number[];
  type: GgmlType;
  /** Set for q/k: the head size whose rows are reverse-permuted. */
  permuteHead: number | undefined;
}
