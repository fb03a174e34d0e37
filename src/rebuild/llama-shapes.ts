/**
 * The tensors of a 2023 Hugging Face conversion of LLaMA-1, in state-dict order (module registration
 * order of transformers' modeling_llama at d04ec99b): the embedding, each layer's attention (q, k, v,
 * o, the rotary inv_freq buffer), MLP (gate, down, up) and norms, the final norm, the LM head.
 * Weights are fp16; inv_freq is fp32 (shared/reference/llama-conversion.md, sections 1 and 2).
 */

export interface LlamaDims {
  dim: number;
  layers: number;
  heads: number;
  vocab: number;
  /** The MLP's hidden size: `ceil(dim * 8 / 3)` rounded up to a multiple of 256 (compute_intermediate_size). */
  intermediate: number;
}

/** Meta's params.json dims for the sizes the releases were made from, and 65B. */
export const LLAMA_DIMS: Readonly<Record<'7B' | '13B' | '30B' | '65B', LlamaDims>> = {
  '7B': llamaDims(4096, 32, 32),
  '13B': llamaDims(5120, 40, 40),
  '30B': llamaDims(6656, 60, 52),
  '65B': llamaDims(8192, 80, 64),
};

export function llamaDims(dim: number, layers: number, heads: number, vocab = 32000): LlamaDims {
  return { dim, layers, heads, vocab, intermediate: Math.floor((Math.ceil((dim * 8) / 3) + 255) / 256) * 256 };
}

export type TensorDtype = 'F16' | 'F32';

export interface TensorShape {
  name: string;
  dtype: TensorDtype;
  shape: number[];
}

export const DTYPE_SIZE: Readonly<Record<TensorDtype, number>> = { F16: 2, F32: 4 };

export function byteSize(t: TensorShape): number {
  return t.shape.reduce((n, d) => n * d, 1) * DTYPE_SIZE[t.dtype];
}

/** Every tensor the 2023 conversion saves, in the order it saves them. */
export function hfStateDict(d: LlamaDims): TensorShape[] {
  const f16 = (name: string, ...shape: number[]): TensorShape => ({ name, dtype: 'F16', shape });
  const headDim = d.dim / d.heads;
  const out: TensorShape[] = [f16('model.embed_tokens.weight', d.vocab, d.dim)];
  for (let i = 0; i < d.layers; i++) {
    const p = `model.layers.${i}`;
    out.push(
      f16(`${p}.self_attn.q_proj.weight`, d.dim, d.dim),
      f16(`${p}.self_attn.k_proj.weight`, d.dim, d.dim),
      f16(`${p}.self_attn.v_proj.weight`, d.dim, d.dim),
      f16(`${p}.self_attn.o_proj.weight`, d.dim, d.dim),
      { name: `${p}.self_attn.rotary_emb.inv_freq`, dtype: 'F32', shape: [headDim / 2] },
      f16(`${p}.mlp.gate_proj.weight`, d.intermediate, d.dim),
      f16(`${p}.mlp.down_proj.weight`, d.dim, d.intermediate),
      f16(`${p}.mlp.up_proj.weight`, d.intermediate, d.dim),
      f16(`${p}.input_layernorm.weight`, d.dim),
      f16(`${p}.post_attention_layernorm.weight`, d.dim),
    );
  }
  out.push(f16('model.norm.weight', d.dim), f16('lm_head.weight', d.vocab, d.dim));
  return out;
}
