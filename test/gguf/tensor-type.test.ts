/**
 * Each tensor's type as llama-quantize picks it without an importance matrix, and its fallbacks where
 * rows are not whole blocks (llama-quant.cpp: Q4_K -> Q5_0, Q6_K -> Q8_0, then F16;
 * shared/reference/gguf.md 4.8).
 */
import { describe, expect, it } from 'vitest';
import { GGML_TYPE } from '../../src/output/gguf-format.js';
import { expectedTensors, fallbackWarning, tensorType, weightValues, type LlamaConfig } from '../../src/output/gguf-llama.js';

const typeOf = (name: string, shape: number[], type: Parameters<typeof tensorType>[2] = 'q4_k_m', layers = 40) => tensorType(name, shape, type, layers);

describe('tensor types', () => {
  it('Q4_K_M: Q6_K for the output and for attn_v and ffn_down of the layers use_more_bits names (13B: 20 of 40), Q4_K elsewhere, norms F32', () => {
    const more = Array.from({ length: 40 }, (_, i) => i).filter((i) => typeOf(`model.layers.${i}.self_attn.v_proj.weight`, [5120, 5120]).type === GGML_TYPE.Q6_K);
    expect(more).toEqual([0, 1, 2, 3, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31, 34, 35, 36, 37, 38, 39]);
    const down = Array.from({ length: 40 }, (_, i) => i).filter((i) => typeOf(`model.layers.${i}.mlp.down_proj.weight`, [5120, 13824]).type === GGML_TYPE.Q6_K);
    expect(down).toEqual(more);
    expect(typeOf('lm_head.weight', [32000, 5120])).toEqual({ type: GGML_TYPE.Q6_K, fellBack: false });
    expect(typeOf('model.embed_tokens.weight', [32000, 5120])).toEqual({ type: GGML_TYPE.Q4_K, fellBack: false });
    expect(typeOf('model.layers.5.self_attn.v_proj.weight', [5120, 5120])).toEqual({ type: GGML_TYPE.Q4_K, fellBack: false });
    expect(typeOf('model.layers.0.input_layernorm.weight', [5120])).toEqual({ type: GGML_TYPE.F32, fellBack: false });
  });

  it('rows that are not whole 256-value blocks fall back as llama-quantize does: Q4_K to Q5_0, Q6_K to Q8_0, and F16 where 32 does not divide them', () => {
    expect(typeOf('model.layers.5.self_attn.q_proj.weight', [64, 64])).toEqual({ type: GGML_TYPE.Q5_0, fellBack: true });
    expect(typeOf('lm_head.weight', [400, 64])).toEqual({ type: GGML_TYPE.Q8_0, fellBack: true });
    expect(typeOf('model.layers.0.self_attn.v_proj.weight', [96, 96])).toEqual({ type: GGML_TYPE.Q8_0, fellBack: true });
    expect(typeOf('model.layers.5.self_attn.q_proj.weight', [48, 48])).toEqual({ type: GGML_TYPE.F16, fellBack: true });
    expect(typeOf('lm_head.weight', [400, 48])).toEqual({ type: GGML_TYPE.F16, fellBack: true });
  });

  it('Q8_0 rows that are not whole 32-value blocks are F16 (as convert_hf_to_gguf falls back); lossless types never fall back', () => {
    expect(typeOf('model.embed_tokens.weight', [400, 48], 'q8_0')).toEqual({ type: GGML_TYPE.F16, fellBack: true });
    expect(typeOf('model.embed_tokens.weight', [400, 64], 'q8_0')).toEqual({ type: GGML_TYPE.Q8_0, fellBack: false });
    expect(typeOf('model.embed_tokens.weight', [400, 48], 'bf16')).toEqual({ type: GGML_TYPE.BF16, fellBack: false });
  });

  it('the warning counts each fallback type and names the first tensors', () => {
    const text = fallbackWarning(
      [
        { name: 'a', type: GGML_TYPE.Q5_0 },
        { name: 'b', type: GGML_TYPE.Q5_0 },
        { name: 'c', type: GGML_TYPE.Q8_0 },
        { name: 'd', type: GGML_TYPE.F16 },
      ],
      'Q4_K_M',
    );
    expect(text).toBe('4 tensors have rows that are not whole blocks of Q4_K_M and are written as llama-quantize falls back (2 as Q5_0, 1 as Q8_0, 1 as F16): a, b, c, ...');
  });

  it('weightValues counts the values of every tensor expectedTensors lists (7B, 13B, 30B and the fixtures), without listing them', () => {
    const base = { heads: 1, kvHeads: 1, context: 2048, rmsEps: 1e-6, ropeTheta: 10000, bos: 1, eos: 2, pad: undefined, ropeScale: undefined, ropeScalingLeftOut: undefined };
    const sizes = [
      { dim: 4096, layers: 32, intermediate: 11008, vocab: 32000 },
      { dim: 5120, layers: 40, intermediate: 13824, vocab: 32000 },
      { dim: 6656, layers: 60, intermediate: 17920, vocab: 32016 },
      { dim: 64, layers: 2, intermediate: 256, vocab: 400 },
    ];
    for (const size of sizes) {
      const c: LlamaConfig = { ...base, ...size };
      const listed = [...expectedTensors(c).values()].reduce((sum, shape) => sum + shape.reduce((a, b) => a * b, 1), 0);
      expect(weightValues(c), JSON.stringify(size)).toBe(listed);
    }
    // LLaMA-7B's 6.74 billion values (its model card's "7B").
    expect(weightValues({ ...base, ...sizes[0]! })).toBe(6_738_415_616);
  });
});
