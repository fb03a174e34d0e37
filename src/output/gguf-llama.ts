/**
 * A Hugging Face LLaMA as llama.cpp wants it in a GGUF (shared/reference/gguf.md, sections 2-3):
 * the hyper-parameters from config.json with the exact types llama.cpp checks, the tokenizer from
 * tokenizer.model, the tensor names it looks up, which tensors are q/k (rows reverse-permuted) and
 * which stay F32 (the norms), and each tensor's type for the file type asked for.
 */
import { InputError } from '../errors.js';
import { GGML_TYPE, GGUF_ALIGNMENT, type GgmlType, type GgufValue } from './gguf-format.js';
import { Q5_0_BLOCK, Q8_0_BLOCK, QK_K } from './ggml-blocks.js';
import type { GgufTypeName } from './gguf-types.js';
import type { Vocabulary } from './gguf-vocabulary.js';

export interface LlamaConfig {
  dim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  vocab: number;
  context: number;
  rmsEps: number;
  ropeTheta: number;
  bos: number;
  eos: number;
  pad: number | undefined;
  /** rope_scaling of type linear: its factor, which llama.cpp applies. */
  ropeScale: number | undefined;
  /** The type of a rope_scaling convert writes nothing for (dynamic, yarn, ...), to be said. */
  ropeScalingLeftOut: string | undefined;
}


/** general.file_type (llama_ftype) of each. */
const FILE_TYPE: Record<Exclude<GgufTypeName, 'auto'>, number> = { f32: 0, f16: 1, q8_0: 7, q4_k_m: 15, bf16: 32 };
const TENSOR_TYPE: Record<Exclude<GgufTypeName, 'auto'>, GgmlType> = { f32: GGML_TYPE.F32, f16: GGML_TYPE.F16, q8_0: GGML_TYPE.Q8_0, q4_k_m: GGML_TYPE.Q4_K, bf16: GGML_TYPE.BF16 };

/** llama-quantize's use_more_bits: the layers of a Q4_K_M whose attn_v and ffn_down get Q6_K. */
const moreBits = (i: number, n: number) => i < Math.floor(n / 8) || i >= Math.floor((7 * n) / 8) || (i - Math.floor(n / 8)) % 3 === 2;

/** GGUF keeps these numbers as u32: a larger one cannot be written (it was an internal error). */
const U32_MAX = 0xffffffff;

function int(config: Record<string, unknown>, key: string, path: string, fallback?: number): number {
  const v = config[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0 || v > U32_MAX) {
    throw new InputError(`has no usable "${key}" (a positive whole number below 2^32)`, { file: path, hint: "use the model's own config.json" });
  }
  return v;
}

/**
 * rope_scaling as convert_hf_to_gguf's LlamaModel reads it: a linear one with a factor is written,
 * any other it leaves out (and this tool says so); what Python could not read stops the conversion.
 */
function ropeScaling(config: Record<string, unknown>, path: string): { ropeScale: number | undefined; ropeScalingLeftOut: string | undefined } {
  const raw = config.rope_scaling;
  // `hparams.get("rope_scaling") or {}`: null, false, 0, "", [] and {} are no scaling.
  const empty = raw === undefined || raw === null || raw === false || raw === 0 || raw === '' || (Array.isArray(raw) && raw.length === 0);
  if (empty) return { ropeScale: undefined, ropeScalingLeftOut: undefined };
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new InputError('has a "rope_scaling" that is not an object', { file: path, hint: "use the model's own config.json" });
  const s = raw as Record<string, unknown>;
  if (Object.keys(s).length === 0) return { ropeScale: undefined, ropeScalingLeftOut: undefined };
  const kind = 'rope_type' in s ? s.rope_type : s.type;
  if (kind !== 'linear' || !('factor' in s)) return { ropeScale: undefined, ropeScalingLeftOut: JSON.stringify(kind ?? null) };
  const factor = s.factor;
  if (typeof factor !== 'number' || !Number.isFinite(factor) || factor <= 0) {
    throw new InputError('has a linear "rope_scaling" without a usable "factor" (a positive number)', { file: path, hint: "use the model's own config.json" });
  }
  return { ropeScale: factor, ropeScalingLeftOut: undefined };
}

/** What a GGUF leaves out of config.json's rope_scaling, in words; undefined when nothing. */
export function ropeScalingWarning(c: LlamaConfig): string | undefined {
  if (c.ropeScalingLeftOut === undefined) return undefined;
  return `config.json's rope_scaling of type ${c.ropeScalingLeftOut} is not in the GGUF (convert_hf_to_gguf writes only a linear one for LLaMA): give llama.cpp the scaling when you run the model`;
}

/** config.json of a LLaMA; anything else is refused (this writer knows llama.cpp's `llama` arch only). */
export function llamaConfig(config: Record<string, unknown>, path: string): LlamaConfig {
  const architectures = Array.isArray(config.architectures) ? config.architectures : [];
  if (config.model_type !== 'llama' && !architectures.includes('LlamaForCausalLM')) {
    throw new InputError(`describes a ${String(config.model_type ?? architectures[0] ?? 'unknown')} model, which this GGUF writer cannot convert (LLaMA only)`, {
      file: path,
      hint: "use llama.cpp's convert_hf_to_gguf.py for other architectures",
    });
  }
  const dim = int(config, 'hidden_size', path);
  const heads = int(config, 'num_attention_heads', path);
  const kvHeads = int(config, 'num_key_value_heads', path, heads);
  if (dim % heads !== 0 || (dim / heads) % 2 !== 0 || kvHeads !== heads) {
    throw new InputError(`has ${heads} attention heads (${kvHeads} for keys and values) for hidden size ${dim}, which LLaMA-1's layout does not have`, { file: path, hint: "use the model's own config.json" });
  }
  const eps = config.rms_norm_eps;
  const theta = config.rope_theta ?? 10000;
  const pad = config.pad_token_id;
  return {
    dim,
    layers: int(config, 'num_hidden_layers', path),
    heads,
    kvHeads,
    intermediate: int(config, 'intermediate_size', path),
    vocab: int(config, 'vocab_size', path),
    context: int(config, 'max_position_embeddings', path, 2048),
    rmsEps: typeof eps === 'number' && eps > 0 ? eps : 1e-6,
    ropeTheta: typeof theta === 'number' && theta > 0 ? theta : 10000,
    bos: int(config, 'bos_token_id', path, 1),
    eos: int(config, 'eos_token_id', path, 2),
    // Old LLaMA configs say -1; a negative or missing id is left out, as convert does (and one GGUF cannot hold).
    pad: typeof pad === 'number' && Number.isSafeInteger(pad) && pad >= 0 && pad <= U32_MAX ? pad : undefined,
    ...ropeScaling(config, path),
  };
}

/** GGUF name of a HF tensor; undefined for the one left out (rotary inv_freq). */
export function ggufName(hf: string): string | undefined {
  const top: Record<string, string> = { 'model.embed_tokens.weight': 'token_embd.weight', 'model.norm.weight': 'output_norm.weight', 'lm_head.weight': 'output.weight' };
  if (top[hf]) return top[hf];
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hf);
  if (!m) return undefined;
  const layer: Record<string, string> = {
    'input_layernorm.weight': 'attn_norm.weight',
    'self_attn.q_proj.weight': 'attn_q.weight',
    'self_attn.k_proj.weight': 'attn_k.weight',
    'self_attn.v_proj.weight': 'attn_v.weight',
    'self_attn.o_proj.weight': 'attn_output.weight',
    'post_attention_layernorm.weight': 'ffn_norm.weight',
    'mlp.gate_proj.weight': 'ffn_gate.weight',
    'mlp.up_proj.weight': 'ffn_up.weight',
    'mlp.down_proj.weight': 'ffn_down.weight',
  };
  const name = layer[m[2]!];
  return name && `blk.${m[1]}.${name}`;
}

/** Every HF tensor a LLaMA-1 of this config must have, with its shape (inv_freq aside). */
export function expectedTensors(c: LlamaConfig): Map<string, number[]> {
  const out = new Map<string, number[]>([
    ['model.embed_tokens.weight', [c.vocab, c.dim]],
    ['model.norm.weight', [c.dim]],
    ['lm_head.weight', [c.vocab, c.dim]],
  ]);
  for (let i = 0; i < c.layers; i++) {
    const p = `model.layers.${i}.`;
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) out.set(`${p}self_attn.${proj}.weight`, [c.dim, c.dim]);
    out.set(`${p}mlp.gate_proj.weight`, [c.intermediate, c.dim]);
    out.set(`${p}mlp.up_proj.weight`, [c.intermediate, c.dim]);
    out.set(`${p}mlp.down_proj.weight`, [c.dim, c.intermediate]);
    out.set(`${p}input_layernorm.weight`, [c.dim]);
    out.set(`${p}post_attention_layernorm.weight`, [c.dim]);
  }
  return out;
}

/** How many values the tensors of expectedTensors(c) hold, counted without listing them. */
export function weightValues(c: LlamaConfig): number {
  const layer = 4 * c.dim * c.dim + 3 * c.intermediate * c.dim + 2 * c.dim;
  return 2 * c.vocab * c.dim + c.dim + c.layers * layer;
}

export const isQk = (hf: string) => /\.self_attn\.[qk]_proj\.weight$/.test(hf);

/** The type `auto` means for weights of this dtype: the same bits (BF16, F16), F16 for F32 (as convert does). */
export function resolveType(asked: GgufTypeName, sourceDtype: string): Exclude<GgufTypeName, 'auto'> {
  if (asked !== 'auto') return asked;
  return sourceDtype === 'BF16' ? 'bf16' : 'f16';
}

/** The ggml type most of a GGUF of `name` is (Q4_K_M: Q4_K), for what its conversions need ready. */
export function mainGgmlType(name: Exclude<GgufTypeName, 'auto'>): GgmlType {
  return { f32: GGML_TYPE.F32, f16: GGML_TYPE.F16, bf16: GGML_TYPE.BF16, q8_0: GGML_TYPE.Q8_0, q4_k_m: GGML_TYPE.Q4_K }[name];
}

/** Values per block of each type (a row must hold whole blocks). */
const BLOCK_VALUES: Record<GgmlType, number> = {
  [GGML_TYPE.F32]: 1,
  [GGML_TYPE.F16]: 1,
  [GGML_TYPE.BF16]: 1,
  [GGML_TYPE.Q5_0]: Q5_0_BLOCK,
  [GGML_TYPE.Q8_0]: Q8_0_BLOCK,
  [GGML_TYPE.Q4_K]: QK_K,
  [GGML_TYPE.Q6_K]: QK_K,
};

/**
 * What llama-quantize writes instead when a tensor's rows are not whole blocks of the K-quant it
 * picked (llama-quant.cpp, convert_incompatible_tensor): Q4_K -> Q5_0, Q6_K -> Q8_0, and F16 where
 * those do not fit either. A Q8_0 that does not fit is F16, as convert_hf_to_gguf falls back.
 */
const FALLBACK: Partial<Record<GgmlType, GgmlType>> = { [GGML_TYPE.Q4_K]: GGML_TYPE.Q5_0, [GGML_TYPE.Q6_K]: GGML_TYPE.Q8_0 };

/** ggml's names of the types, as llama.cpp prints them. */
export const GGML_TYPE_NAME: Record<GgmlType, string> = {
  [GGML_TYPE.F32]: 'F32',
  [GGML_TYPE.F16]: 'F16',
  [GGML_TYPE.BF16]: 'BF16',
  [GGML_TYPE.Q5_0]: 'Q5_0',
  [GGML_TYPE.Q8_0]: 'Q8_0',
  [GGML_TYPE.Q4_K]: 'Q4_K',
  [GGML_TYPE.Q6_K]: 'Q6_K',
};

/**
 * A tensor's type: norms (1-D) F32; for Q4_K_M what llama-quantize picks without an importance
 * matrix (Q6_K for the output and for attn_v and ffn_down of the layers use_more_bits names, Q4_K
 * elsewhere). Rows that are not whole blocks of the type fall back as llama-quantize falls back
 * (`fellBack`, said by the caller: fallbackWarning).
 */
export function tensorType(hf: string, shape: readonly number[], type: Exclude<GgufTypeName, 'auto'>, layers: number): { type: GgmlType; fellBack: boolean } {
  if (shape.length === 1) return { type: GGML_TYPE.F32, fellBack: false };
  let wanted = TENSOR_TYPE[type];
  if (type === 'q4_k_m') {
    const layer = /^model\.layers\.(\d+)\.(self_attn\.v_proj|mlp\.down_proj)\.weight$/.exec(hf);
    if (hf === 'lm_head.weight' || (layer && moreBits(Number(layer[1]), layers))) wanted = GGML_TYPE.Q6_K;
  }
  const cols = shape.at(-1)!;
  if (cols % BLOCK_VALUES[wanted] === 0) return { type: wanted, fellBack: false };
  const instead = FALLBACK[wanted];
  return { type: instead !== undefined && cols % BLOCK_VALUES[instead] === 0 ? instead : GGML_TYPE.F16, fellBack: true };
}

/** The one warning for tensors that fell back: how many, to which types, and the first few names. */
export function fallbackWarning(fellBack: readonly { name: string; type: GgmlType }[], asked: string): string {
  const counts = new Map<string, number>();
  for (const t of fellBack) counts.set(GGML_TYPE_NAME[t.type], (counts.get(GGML_TYPE_NAME[t.type]) ?? 0) + 1);
  const into = [...counts].map(([name, n]) => `${n} as ${name}`).join(', ');
  const names = fellBack.slice(0, 3).map((t) => t.name).join(', ');
  return `${fellBack.length} tensors have rows that are not whole blocks of ${asked} and are written as llama-quantize falls back (${into}): ${names}${fellBack.length > 3 ? ', ...' : ''}`;
}

export function fileType(type: Exclude<GgufTypeName, 'auto'>): number {
  return FILE_TYPE[type];
}

export interface Provenance {
  name: string;
  /** What the weights were read from, and what proved them. */
  description: string;
}

export function llamaMetadata(c: LlamaConfig, vocab: Vocabulary, type: Exclude<GgufTypeName, 'auto'>, provenance: Provenance, chatTemplate: string): [string, GgufValue][] {
  const u32 = (value: number): GgufValue => ({ type: 'u32', value });
  const f32 = (value: number): GgufValue => ({ type: 'f32', value });
  const kv: [string, GgufValue][] = [
    ['general.architecture', { type: 'str', value: 'llama' }],
    ['general.name', { type: 'str', value: provenance.name }],
    ['general.description', { type: 'str', value: provenance.description }],
    ['general.file_type', u32(fileType(type))],
    ['general.alignment', u32(GGUF_ALIGNMENT)],
    ['llama.context_length', u32(c.context)],
    ['llama.embedding_length', u32(c.dim)],
    ['llama.block_count', u32(c.layers)],
    ['llama.feed_forward_length', u32(c.intermediate)],
    ['llama.attention.head_count', u32(c.heads)],
    ['llama.attention.head_count_kv', u32(c.kvHeads)],
    ['llama.rope.dimension_count', u32(c.dim / c.heads)],
    ['llama.rope.freq_base', f32(c.ropeTheta)],
    ['llama.attention.layer_norm_rms_epsilon', f32(c.rmsEps)],
    ['llama.vocab_size', u32(vocab.count)],
    ['tokenizer.ggml.model', { type: 'str', value: 'llama' }],
    ['tokenizer.ggml.pre', { type: 'str', value: 'default' }],
    ['tokenizer.ggml.tokens', { type: 'str[]', value: vocab.tokens }],
    ['tokenizer.ggml.scores', { type: 'f32[]', value: vocab.scores }],
    ['tokenizer.ggml.token_type', { type: 'i32[]', value: vocab.types }],
    ['tokenizer.ggml.bos_token_id', u32(c.bos)],
    ['tokenizer.ggml.eos_token_id', u32(c.eos)],
    ['tokenizer.ggml.unknown_token_id', u32(0)],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: true }],
    ['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }],
    ['tokenizer.chat_template', { type: 'str', value: chatTemplate }],
  ];
  if (c.pad !== undefined) kv.push(['tokenizer.ggml.padding_token_id', u32(c.pad)]);
  if (c.ropeScale !== undefined) kv.push(['llama.rope.scaling.type', { type: 'str', value: 'linear' }], ['llama.rope.scaling.factor', f32(c.ropeScale)]);
  if (type === 'q8_0' || type === 'q4_k_m') kv.push(['general.quantization_version', u32(2)]);
  return kv;
}
