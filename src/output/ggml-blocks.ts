/**
 * Sizes of ggml's quantized blocks (ggml-common.h: block_q8_0, block_q5_0, block_q4_K, block_q6_K) and
 * of the checkpoint values a GGUF is made from: one place for the facts the quantizers, their
 * WebAssembly kernels and the tensor layout share.
 */
export const Q8_0_BLOCK = 32;
/** fp16 d, then 32 int8. */
export const Q8_0_BYTES = 34;
export const Q5_0_BLOCK = 32;
/** fp16 d, 4 bytes of fifth bits, 16 bytes of nibbles. */
export const Q5_0_BYTES = 22;
/** Values of a K-quant super-block. */
export const QK_K = 256;
/** fp16 d and dmin, 12 bytes of 6-bit scales and mins, 128 of nibbles. */
export const Q4_K_BYTES = 144;
/** 128 bytes of low nibbles, 64 of high bit pairs, 16 int8 scales, fp16 d. */
export const Q6_K_BYTES = 210;

/** The checkpoint value types a GGUF converts. */
export type SourceType = 'F32' | 'F16' | 'BF16';
/** Bytes of one value of each. */
export const SOURCE_BYTES: Record<SourceType, number> = { F32: 4, F16: 2, BF16: 2 };

/** Bytes of one value of a checkpoint's `dtype`; undefined for a type a GGUF does not convert. */
export const sourceBytes = (dtype: string): number | undefined => (SOURCE_BYTES as Readonly<Record<string, number>>)[dtype];
