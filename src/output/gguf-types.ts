/**
 * The GGUF types a user can ask for, apart from the writer so that the command line and planning
 * can name them without loading the GGUF room.
 */

/** What a GGUF can be asked to hold: `auto` is the checkpoint's own dtype (lossless). */
export const GGUF_TYPES = ['auto', 'f32', 'f16', 'bf16', 'q8_0', 'q4_k_m'] as const;
export type GgufTypeName = (typeof GGUF_TYPES)[number];
