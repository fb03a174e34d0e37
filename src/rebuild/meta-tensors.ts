/**
 * Tensor values of the 2023 conversion computed from Meta's original release (`params.json`,
 * `consolidated.NN.pth`, model parallel 1, 2, 4 or 8), as convert_llama_weights_to_hf.py at
 * d04ec99b made them (shared/reference/llama-conversion.md 1.2-1.5): Meta's fp16 bits rearranged.
 * q and k rows are de-interleaved within each head (output row h*hd + j*hd/2 + i is input row
 * h*hd + 2i + j); shards are concatenated along dim 0 (wq, wk, wv, w1, w3, output) or dim 1 (wo, w2,
 * tok_embeddings); norms come from shard 0. Bytes are read row by row, at any offset.
 */
import { InputError } from '../errors.js';
import type { Located, LocatedTensors } from './located-tensors.js';
import type { TensorShape } from './llama-shapes.js';
import type { TensorReader } from './rebuilt-shard.js';

/** Rows concatenated along dim 1 are read this many bytes of rows at a time. */
const SIDE_BY_SIDE_BYTES = 4 << 20;

interface Rule {
  /** The tensor's name in Meta's files. */
  meta: string;
  cat: 0 | 1 | 'first';
  permute: boolean;
}

/** The Meta tensor and the rule behind each HF name; inv_freq is computed and has none. */
function ruleOf(name: string): Rule | undefined {
  const top: Record<string, Rule> = {
    'model.embed_tokens.weight': { meta: 'tok_embeddings.weight', cat: 1, permute: false },
    'model.norm.weight': { meta: 'norm.weight', cat: 'first', permute: false },
    'lm_head.weight': { meta: 'output.weight', cat: 0, permute: false },
  };
  if (top[name]) return top[name];
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(name);
  if (!m) return undefined;
  const layer: Record<string, [string, 0 | 1 | 'first', boolean]> = {
    'self_attn.q_proj.weight': ['attention.wq.weight', 0, true],
    'self_attn.k_proj.weight': ['attention.wk.weight', 0, true],
    'self_attn.v_proj.weight': ['attention.wv.weight', 0, false],
    'self_attn.o_proj.weight': ['attention.wo.weight', 1, false],
    'mlp.gate_proj.weight': ['feed_forward.w1.weight', 0, false],
    'mlp.down_proj.weight': ['feed_forward.w2.weight', 1, false],
    'mlp.up_proj.weight': ['feed_forward.w3.weight', 0, false],
    'input_layernorm.weight': ['attention_norm.weight', 'first', false],
    'post_attention_layernorm.weight': ['ffn_norm.weight', 'first', false],
  };
  const r = layer[m[2]!];
  return r && { meta: `layers.${m[1]}.${r[0]}`, cat: r[1], permute: r[2] };
}

export class MetaTensors implements TensorReader {
  /**
   * `shards`: the located tensors of consolidated.00, .01, ... in order; `headDim`: dim / n_heads;
   * `invFreq`: the recipe's inv_freq bytes.
   */
  /** The q/k head last read, and a block of side-by-side rows: the only bytes held. */
  private head: { key: string; rows: Buffer } | undefined;
  private block = Buffer.alloc(0);

  constructor(
    private readonly shards: readonly LocatedTensors[],
    private readonly headDim: number,
    private readonly invFreq: Buffer,
  ) {}

  /** Each Meta tensor the HF tensor is made of, one per shard (or shard 0 only). */
  private parts(name: string): { rule: Rule; parts: Located[] } {
    const rule = ruleOf(name);
    if (!rule) throw new InputError(`has no Meta tensor for "${name}"`);
    const count = rule.cat === 'first' ? 1 : this.shards.length;
    const parts: Located[] = [];
    for (let s = 0; s < count; s++) {
      const found = this.shards[s]!.get(rule.meta);
      if (!found || found.dtype !== 'F16') throw new InputError(`consolidated.${String(s).padStart(2, '0')}.pth has no fp16 tensor "${rule.meta}", which "${name}" is made of`);
      parts.push(found);
    }
    return { rule, parts };
  }

  /** Says, before any byte is read, why a tensor of the 2023 layout cannot be made from Meta's files. */
  check(wanted: readonly TensorShape[]): void {
    for (const t of wanted) {
      if (t.name.endsWith('.rotary_emb.inv_freq')) continue;
      const { rule, parts } = this.parts(t.name);
      const shape = [...parts[0]!.shape];
      if (rule.cat !== 'first') shape[rule.cat] = parts.reduce((n, p) => n + (p.shape[rule.cat as 0 | 1] ?? 0), 0);
      if (shape.join() !== t.shape.join()) {
        throw new InputError(`Meta's "${rule.meta}" makes "${t.name}" of shape ${JSON.stringify(shape)}, where the base needs ${JSON.stringify(t.shape)}`, { hint: 'point the base at the LLaMA size the release was made from' });
      }
    }
  }

  async read(name: string, offset: number, buf: Buffer, length: number): Promise<void> {
    if (name.endsWith('.rotary_emb.inv_freq')) {
      this.invFreq.copy(buf, 0, offset, offset + length);
      return;
    }
    const { rule, parts } = this.parts(name);
    const owner = rule.cat === 'first' ? [this.shards[0]!] : this.shards;
    const first = parts[0]!;
    if (first.shape.length === 1) return owner[0]!.readLocated(first, offset, buf, length);
    const cols = rule.cat === 1 ? parts.reduce((n, p) => n + p.shape[1]!, 0) : first.shape[1]!;
    const rowBytes = cols * 2;
    const shardRows = first.shape[0]!;
    // Whole runs at a time: a read per row cost ten times the decode itself (npm run bench, Meta's layout).
    for (let done = 0; done < length; ) {
      const at = offset + done;
      const row = Math.floor(at / rowBytes);
      const inRow = at - row * rowBytes;
      if (rule.cat === 1) {
        done += await this.readSideBySide(owner, parts, row, inRow, buf.subarray(done), length - done, rowBytes);
        continue;
      }
      const s = Math.floor(row / shardRows);
      const local = row - s * shardRows;
      if (!rule.permute) {
        // Rows of one shard follow each other: the rest of this shard's rows is one run.
        const take = Math.min(length - done, (shardRows - local) * rowBytes - inRow);
        await owner[s]!.readLocated(parts[s]!, local * rowBytes + inRow, buf.subarray(done), take);
        done += take;
        continue;
      }
      // q/k rows are de-interleaved within each head: the head's rows are read once and reordered.
      const head = Math.floor(local / this.headDim);
      const rows = await this.headRows(owner[s]!, parts[s]!, `${name}/${s}/${head}`, head, rowBytes);
      const k = local - head * this.headDim;
      const half = this.headDim / 2;
      const source = 2 * (k % half) + Math.floor(k / half);
      const take = Math.min(length - done, rowBytes - inRow);
      rows.copy(buf, done, source * rowBytes + inRow, source * rowBytes + inRow + take);
      done += take;
    }
  }

  /** One head's rows of a q/k tensor in Meta's order, kept while its rows are asked for. */
  private async headRows(shard: LocatedTensors, part: Located, key: string, head: number, rowBytes: number): Promise<Buffer> {
    if (this.head?.key === key) return this.head.rows;
    const rows = this.head && this.head.rows.length === this.headDim * rowBytes ? this.head.rows : Buffer.alloc(this.headDim * rowBytes);
    await shard.readLocated(part, head * this.headDim * rowBytes, rows, rows.length);
    this.head = { key, rows };
    return rows;
  }

  /**
   * Rows whose columns are the shards' rows side by side (concatenated along dim 1): a block of
   * rows is read from each shard in one run, then interleaved. The bytes given.
   */
  private async readSideBySide(owner: readonly LocatedTensors[], parts: readonly Located[], row: number, inRow: number, out: Buffer, length: number, rowBytes: number): Promise<number> {
    const width = parts[0]!.shape[1]! * 2;
    const totalRows = parts[0]!.shape[0]!;
    const rows = Math.min(totalRows - row, Math.max(1, Math.floor(SIDE_BY_SIDE_BYTES / rowBytes)), Math.ceil((inRow + length) / rowBytes));
    if (this.block.length < rows * width) this.block = Buffer.alloc(rows * width);
    for (let s = 0; s < parts.length; s++) {
      await owner[s]!.readLocated(parts[s]!, row * width, this.block, rows * width);
      for (let r = 0; r < rows; r++) {
        // Where shard s's piece of row r lands in the wanted range.
        const from = r * rowBytes + s * width - inRow;
        const lo = Math.max(0, from);
        const hi = Math.min(length, from + width);
        if (lo < hi) this.block.copy(out, lo, r * width + (lo - from), r * width + (hi - from));
      }
    }
    return Math.min(length, rows * rowBytes - inRow);
  }

  async close(): Promise<void> {
    for (const s of this.shards) await s.close();
  }
}
