/**
 * The GGUF types a user can ask for, apart from the writer so that the command line and planning
 * can name them without loading the GGUF room.
 */

/** What a GGUF can be asked to hold: `auto` is the checkpoint's own dtype (lossless). */
export const GGUF_TYPES = ['auto', 'f32', 'f16', 'bf16', 'q8_0', 'q4_k_m'] as const;
export type GgufTypeName = (typeof GGUF_TYPES)[number];

/** The type name llama.cpp users see in file names: Q8_0, BF16, Q4_K_M. */
export const typeLabel = (t: Exclude<GgufTypeName, 'auto'>) => t.toUpperCase();

/** A GGUF's name as llama.cpp users expect it: the model and the type (metharme-13b-Q8_0.gguf). */
export const ggufFileName = (model: string, type: Exclude<GgufTypeName, 'auto'>) => `${model}-${typeLabel(type)}.gguf`;
