/**
 * What a rebuilt base file is made from, and how a message names it: apart from the rebuild itself,
 * so that planning and diagnoses can name rebuilt files without loading the rebuild's room.
 */
import type { TensorShape } from './llama-shapes.js';
import type { SourceFolder } from './source-folder.js';

/** Where the tensors come from, and which of the folder's files hold them. */
export interface TensorOrigin {
  /** Meta's original release (params.json, consolidated.NN.pth), or a Hugging Face conversion. */
  kind: 'meta' | 'safetensors' | 'torch';
  files: string[];
}

/** What the tensors come from, in words: "Meta's original release (consolidated.00.pth, consolidated.01.pth)". */
export function originText(origin: TensorOrigin): string {
  const kind = { meta: "Meta's original release", safetensors: 'a safetensors conversion', torch: 'a torch .bin conversion of another layout' }[origin.kind];
  const shown = origin.files.length > 4 ? [...origin.files.slice(0, 3), `and ${origin.files.length - 3} more`] : origin.files;
  return `${kind} (${shown.join(', ')})`;
}

/** A rebuilt file in words, where a path would name a file on disk. */
export function rebuiltText(name: string, input: RebuildInput): string {
  return input.kind === 'shard' ? `${name} as rebuilt from ${originText(input.origin)} in ${input.dir}` : `${name} as the 2023 recipe makes it`;
}

/** One base file to rebuild: a shard from the folder's tensors, or a small file whose bytes are known. */
export type RebuildInput =
  | { kind: 'shard'; folder: SourceFolder; dir: string; origin: TensorOrigin; headDim: number; archive: string; tensors: TensorShape[]; size: number }
  | { kind: 'bytes'; data: Buffer; size: number };
