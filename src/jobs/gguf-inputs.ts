/**
 * What a GGUF's metadata is made from, the same for `gguf <dir>` and `decode --gguf`: a model
 * folder's config.json, tokenizer.model, added_tokens.json and tokenizer_config.json (MODEL_FILES),
 * each read bounded and refused, naming the file, when it is not what it should be.
 */
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { readInput } from '../input-files.js';
import { formatBytes } from '../format.js';
import { llamaConfig, weightValues, type LlamaConfig } from '../output/gguf-llama.js';
import { addedTokensDecoder, addedTokensJson, repeatedToken, vocabulary, type Vocabulary } from '../output/gguf-vocabulary.js';
import { lstatOrUndefined } from '../output/temp-file.js';
import { readPieceTable } from '../release/sentencepiece.js';

const SMALL_BYTES = 64 << 20;

/** The small files a GGUF's metadata is read from, beside the shards. */
export const MODEL_FILES = ['config.json', 'tokenizer.model', 'added_tokens.json', 'tokenizer_config.json'] as const;

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

/**
 * config.json's sizes held to the shards that hold the weights, before anything is sized by them (a
 * vocabulary of vocab_size tokens, a list of num_hidden_layers layers' tensors): a LLaMA of those
 * sizes stores every value in at least 2 bytes, so a correct config never says more than its shards
 * hold. One that said vocab_size 100000000 made the writer allocate until it ran out of memory.
 */
function refuseOversized(config: LlamaConfig, configPath: string, shardBytes: number, shards: number): void {
  const values = weightValues(config);
  if (2 * values <= shardBytes) return;
  const sizes = `vocab_size ${config.vocab}, hidden_size ${config.dim}, intermediate_size ${config.intermediate}, num_hidden_layers ${config.layers}`;
  throw new InputError(`describes a LLaMA of ${values.toPrecision(3)} values (${sizes}): at least ${formatBytes(2 * values)}, more than its ${shards} shard${shards === 1 ? '' : 's'} hold (${formatBytes(shardBytes)})`, {
    file: configPath,
    hint: "use the model's own config.json",
  });
}

/**
 * The MODEL_FILES of `dir`; `missing` says why a required one is absent. `shards`: how many
 * checkpoint shards hold the weights, and their bytes.
 */
export async function readModelFiles(dir: string, missing: (name: string) => InputError, shards: { count: number; bytes: number }): Promise<ModelFiles> {
  const configPath = join(dir, 'config.json');
  const raw = await readJsonObject(configPath);
  if (!raw) throw missing('config.json');
  const config = llamaConfig(raw, configPath);
  refuseOversized(config, configPath, shards.bytes, shards.count);
  const tokenizerPath = join(dir, 'tokenizer.model');
  if (!(await lstatOrUndefined(tokenizerPath))) throw missing('tokenizer.model');
  const pieces = readPieceTable((await readInput(tokenizerPath, SMALL_BYTES)).bytes, tokenizerPath);
  if (pieces.count > config.vocab) {
    // convert_hf_to_gguf fails here too, on a token id past its list.
    throw new InputError(`has ${pieces.count} pieces, more than config.json's vocab_size (${config.vocab}): llama.cpp loads no GGUF with more tokens than embeddings`, {
      file: tokenizerPath,
      hint: 'use the tokenizer.model and config.json of one model',
    });
  }
  // In convert's order: a later file's token replaces an earlier one's.
  const addedPath = join(dir, 'added_tokens.json');
  const addedJson = await readJsonObject(addedPath);
  const tokenizerConfigPath = join(dir, 'tokenizer_config.json');
  const tokenizerConfig = await readJsonObject(tokenizerConfigPath);
  const added = [...(addedJson ? addedTokensJson(addedJson, addedPath) : []), ...(tokenizerConfig ? addedTokensDecoder(tokenizerConfig, tokenizerConfigPath) : [])];
  const vocab = vocabulary(pieces, added, config.vocab);
  const twice = repeatedToken(vocab);
  if (twice) {
    const text = JSON.stringify(twice.text);
    // The file whose token has the text now: the last to give either id.
    const giver = [...added].reverse().find((t) => t.id === twice.id || t.id === twice.other);
    if (giver) {
      const other = giver.id === twice.id ? twice.other : twice.id;
      throw new InputError(`gives token ${giver.id} the text ${text}, which token ${other} has too: llama.cpp loads no GGUF with a token twice`, { file: giver.file, hint: 'give each added token its own text' });
    }
    throw new InputError(`has a piece ${text} (token ${twice.other}), the text convert gives padding token ${twice.id} up to config.json's vocab_size: llama.cpp loads no GGUF with a token twice`, {
      file: tokenizerPath,
      hint: 'use the tokenizer.model and config.json of one model',
    });
  }
  return { raw, config, configPath, vocab };
}
