/**
 * What a GGUF's metadata is made from, the same for `gguf <dir>` and `decode --gguf`: a model
 * folder's config.json, tokenizer.model and added_tokens.json, each read bounded and refused,
 * naming the file, when it is not what it should be.
 */
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { readInput } from '../input-files.js';
import { llamaConfig, vocabulary, type LlamaConfig, type Vocabulary } from '../output/gguf-llama.js';
import { lstatOrUndefined } from '../output/temp-file.js';
import { readPieceTable } from '../release/sentencepiece.js';

const SMALL_BYTES = 64 << 20;

/** A JSON object file; undefined when absent. */
export async function readJsonObject(path: string): Promise<Record<string, unknown> | undefined> {
  if (!(await lstatOrUndefined(path))) return undefined;
  const { bytes } = await readInput(path, SMALL_BYTES);
  try {
    const v = JSON.parse(bytes.toString('utf8')) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // refused below
  }
  throw new InputError('is not a JSON object', { file: path, hint: "use the model's own file" });
}

export interface ModelFiles {
  /** config.json as it is (torch_dtype and all), and as a LLaMA's dims. */
  raw: Record<string, unknown>;
  config: LlamaConfig;
  configPath: string;
  vocab: Vocabulary;
}

/** config.json, tokenizer.model and added_tokens.json of `dir`; `missing` says why a required one is absent. */
export async function readModelFiles(dir: string, missing: (name: string) => InputError): Promise<ModelFiles> {
  const configPath = join(dir, 'config.json');
  const raw = await readJsonObject(configPath);
  if (!raw) throw missing('config.json');
  const config = llamaConfig(raw, configPath);
  const tokenizerPath = join(dir, 'tokenizer.model');
  if (!(await lstatOrUndefined(tokenizerPath))) throw missing('tokenizer.model');
  const pieces = readPieceTable((await readInput(tokenizerPath, SMALL_BYTES)).bytes, tokenizerPath);
  const added = new Map<number, string>();
  for (const [token, id] of Object.entries((await readJsonObject(join(dir, 'added_tokens.json'))) ?? {})) if (typeof id === 'number') added.set(id, token);
  return { raw, config, configPath, vocab: vocabulary(pieces, added, config.vocab) };
}
