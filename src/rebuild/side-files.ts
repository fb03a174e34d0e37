/**
 * The JSON side files of the 2023 base conversions whose bytes are known
 * (shared/reference/llama-conversion.md, section 8): each is Python's
 * `json.dumps(obj, indent=2, sort_keys=True) + "\n"` of what that transformers version saved, and
 * each reproduces a published digest (the tests hold them to it). The Pygmalion llama-hf set was
 * made on 4.28.0.dev0 with a tokenizer max length of 2048; OpenAssistant's llama-30b-hf on
 * d04ec99b (4.29.0.dev0) with the tokenizer's default max length. Files whose bytes nobody has
 * reproduced (the 7B/13B config.json, tokenizer.json) are not made up.
 */
import { LLAMA_DIMS, type LlamaDims } from './llama-shapes.js';

/** A number written as Python writes it, where JavaScript would write it otherwise (1e-06, 1e30 as an int). */
class PyNumber {
  constructor(readonly text: string) {}
}

type PyValue = string | number | boolean | null | PyNumber | PyValue[] | { [key: string]: PyValue };

/** Python's json.dumps(value, indent=2, sort_keys=True) for the values these files hold. */
function pyJson(value: PyValue, depth = 0): string {
  if (value instanceof PyNumber) return value.text;
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const pad = '  '.repeat(depth + 1);
  const close = '  '.repeat(depth);
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((v) => pad + pyJson(v, depth + 1)).join(',\n')}\n${close}]`;
  }
  const keys = Object.keys(value).sort();
  if (keys.length === 0) return '{}';
  return `{\n${keys.map((k) => `${pad}${JSON.stringify(k)}: ${pyJson(value[k]!, depth + 1)}`).join(',\n')}\n${close}}`;
}

const pyFile = (value: PyValue) => Buffer.from(`${pyJson(value)}\n`, 'utf8');

function token(content: string, typed: boolean): { [key: string]: PyValue } {
  return { ...(typed ? { __type: 'AddedToken' } : {}), content, lstrip: false, normalized: true, rstrip: false, single_word: false };
}

function generationConfig(version: string): Buffer {
  return pyFile({ _from_model_config: true, bos_token_id: 1, eos_token_id: 2, pad_token_id: 0, transformers_version: version });
}

function specialTokensMap(): Buffer {
  return pyFile({ bos_token: token('<s>', false), eos_token: token('</s>', false), unk_token: token('<unk>', false) });
}

function tokenizerConfig(maxLength: PyNumber | number): Buffer {
  return pyFile({
    add_bos_token: true,
    add_eos_token: false,
    bos_token: token('<s>', true),
    clean_up_tokenization_spaces: false,
    eos_token: token('</s>', true),
    model_max_length: maxLength,
    pad_token: null,
    sp_model_kwargs: {},
    tokenizer_class: 'LlamaTokenizer',
    unk_token: token('<unk>', true),
  });
}

function modelConfig(d: LlamaDims, version: string): Buffer {
  return pyFile({
    architectures: ['LlamaForCausalLM'],
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: 'silu',
    hidden_size: d.dim,
    initializer_range: new PyNumber('0.02'),
    intermediate_size: d.intermediate,
    max_position_embeddings: 2048,
    model_type: 'llama',
    num_attention_heads: d.heads,
    num_hidden_layers: d.layers,
    pad_token_id: 0,
    rms_norm_eps: new PyNumber('1e-06'),
    tie_word_embeddings: false,
    torch_dtype: 'float16',
    transformers_version: version,
    use_cache: true,
    vocab_size: d.vocab,
  });
}

/** The built-in base conversions a rebuild can aim at, by their LLaMA size. */
export const BASE_TARGETS = { 'llama-7b-hf': LLAMA_DIMS['7B'], 'llama-13b-hf': LLAMA_DIMS['13B'], 'llama-30b-hf': LLAMA_DIMS['30B'] } as const;
export type BaseTarget = keyof typeof BASE_TARGETS;

export function isBaseTarget(name: string | undefined): name is BaseTarget {
  return name !== undefined && Object.hasOwn(BASE_TARGETS, name);
}

/** The built-in base conversion of LLaMA of these dims, if one is. */
export function targetOfDims(d: LlamaDims): BaseTarget | undefined {
  const same = (a: LlamaDims) => a.dim === d.dim && a.layers === d.layers && a.heads === d.heads && a.vocab === d.vocab && a.intermediate === d.intermediate;
  return (Object.keys(BASE_TARGETS) as BaseTarget[]).find((name) => same(BASE_TARGETS[name]));
}

/** The side files of `target` whose bytes are known, by file name. */
export function sideFiles(target: BaseTarget): Map<string, Buffer> {
  if (target === 'llama-30b-hf') {
    return new Map([
      ['config.json', modelConfig(BASE_TARGETS[target], '4.29.0.dev0')],
      ['generation_config.json', generationConfig('4.29.0.dev0')],
      ['special_tokens_map.json', specialTokensMap()],
      ['tokenizer_config.json', tokenizerConfig(new PyNumber('1000000000000000019884624838656'))],
    ]);
  }
  return new Map([
    ['generation_config.json', generationConfig('4.28.0.dev0')],
    ['special_tokens_map.json', specialTokensMap()],
    ['tokenizer_config.json', tokenizerConfig(2048)],
  ]);
}
